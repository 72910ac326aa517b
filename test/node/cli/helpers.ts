// Test helpers for the CLI: a stub Telepound server (HTTP routes + /v1/connect WebSocket) on 127.0.0.1
// port 0, in-memory output sinks, and a fake process io for runCli.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import type { CliIo } from "../../../cli-client/context.js";
import { runCli } from "../../../cli-client/cli.js";
import { PROTOCOL_VERSION } from "../../../protocol/version.js";

export type HttpHandler = (
  request: IncomingMessage,
  body: string,
  /** The same body as bytes (file parts are binary). */
  bytes: Buffer,
) => HttpAnswer | Promise<HttpAnswer>;

export interface HttpAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  raw?: Uint8Array;
}

export interface StubSocket {
  ws: WebSocket;
  request: IncomingMessage;
  /** Every text frame the client sent, parsed. */
  texts: unknown[];
  /** Every binary frame the client sent. */
  binaries: Uint8Array[];
  /** Resolves with the next frame the client sends (text parsed, binary as bytes). */
  next(): Promise<unknown>;
}

export interface StubServer {
  url: string;
  http: Map<string, HttpHandler>;
  /** Called for each accepted WebSocket; return nothing to accept, or a status to refuse the upgrade. */
  onUpgrade: (
    request: IncomingMessage,
  ) => { status: number; body?: unknown; headers?: Record<string, string> } | null;
  onSocket: (socket: StubSocket) => void;
  sockets: StubSocket[];
  close(): Promise<void>;
}

export async function startStubServer(): Promise<StubServer> {
  const wss = new WebSocketServer({ noServer: true });
  const http: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", async () => {
      const bytes = Buffer.concat(chunks);
      const key = `${request.method} ${new URL(request.url ?? "/", "http://x").pathname}`;
      const handler = stub.http.get(key);
      const answer: HttpAnswer = handler
        ? await handler(request, bytes.toString("utf8"), bytes)
        : { status: 404, body: { error: { code: "not_found", message: key } } };
      if (answer.raw) {
        response.writeHead(answer.status, {
          "content-type": "application/octet-stream",
          "content-length": String(answer.raw.length),
          ...answer.headers,
        });
        response.end(answer.raw);
        return;
      }
      response.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
      response.end(answer.body === undefined ? "" : JSON.stringify(answer.body));
    });
  });
  const stub: StubServer = {
    url: "",
    http: new Map(),
    onUpgrade: () => null,
    onSocket: () => undefined,
    sockets: [],
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((done) => wss.close(() => done()));
      http.closeAllConnections();
      await new Promise<void>((done) => http.close(() => done()));
    },
  };
  http.on("upgrade", (request, socket, head) => {
    const refusal = stub.onUpgrade(request);
    if (refusal) {
      const body = JSON.stringify(refusal.body ?? {});
      const headers = Object.entries({ "content-type": "application/json", ...refusal.headers })
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join("");
      socket.end(
        `HTTP/1.1 ${refusal.status} Refused\r\n${headers}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const waiters: Array<(frame: unknown) => void> = [];
      const backlog: unknown[] = [];
      const stubSocket: StubSocket = {
        ws,
        request,
        texts: [],
        binaries: [],
        next: () =>
          new Promise((resolve) => (backlog.length ? resolve(backlog.shift()) : waiters.push(resolve))),
      };
      ws.on("message", (data: Buffer, isBinary) => {
        const frame = isBinary ? new Uint8Array(data) : JSON.parse(data.toString("utf8"));
        if (isBinary) stubSocket.binaries.push(frame as Uint8Array);
        else stubSocket.texts.push(frame);
        const waiter = waiters.shift();
        if (waiter) waiter(frame);
        else backlog.push(frame);
      });
      stub.sockets.push(stubSocket);
      stub.onSocket(stubSocket);
    });
  });
  // Signup and login ask first which protocol the server speaks; a test may answer otherwise.
  stub.http.set("GET /v1/health", () => ({
    status: 200,
    body: { ok: true, protocol: PROTOCOL_VERSION, shards: 1 },
  }));
  await new Promise<void>((done) => http.listen(0, "127.0.0.1", done));
  const address = http.address();
  if (!address || typeof address === "string") throw new Error("no address");
  stub.url = `http://127.0.0.1:${address.port}`;
  return stub;
}

/**
 * The standard opening a real server sends: welcome, then (for receiving sockets) the backlog and synced.
 * `sessions`: the account's live session count it announces (1 unless a test gives more; null: a server
 * that does not count them).
 */
export function sendWelcome(ws: WebSocket, user = "alice", sessions: number | null = 1): void {
  ws.send(
    JSON.stringify({
      type: "welcome",
      user,
      shard: "shard-0",
      serverTime: Date.now(),
      ...(sessions === null ? {} : { sessions }),
    }),
  );
}

export interface Sink {
  write(text: string): boolean;
  text(): string;
  lines(): string[];
}

export function sink(): Sink {
  let buffer = "";
  return {
    // Like a stream's write: the callback (last argument) runs once the text is "written".
    write(text: string, ...rest: unknown[]) {
      buffer += text;
      const callback = rest.at(-1);
      if (typeof callback === "function") queueMicrotask(() => callback());
      return true;
    },
    text: () => buffer,
    lines: () => buffer.split("\n").filter((line) => line !== ""),
  };
}

export interface FakeIo extends CliIo {
  out: Sink;
  err: Sink;
}

/** Process io for runCli: no TTY, stdin holding `input` then ended, output collected. */
export function fakeIo(env: NodeJS.ProcessEnv = {}, input = ""): FakeIo {
  const out = sink();
  const err = sink();
  const stdin = new PassThrough();
  stdin.end(input);
  return {
    stdin,
    stdout: out as unknown as NodeJS.WritableStream,
    stderr: err as unknown as NodeJS.WritableStream,
    env,
    out,
    err,
  };
}

export async function tempDir(prefix = "telepound-cli-"): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  // Retried: a file the CLI's last write left being closed can make the folder briefly not empty.
  return { path, remove: () => rm(path, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 }) };
}

export function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = () => {
      if (condition()) return resolve();
      if (Date.now() > deadline) return reject(new Error("condition not met in time"));
      setTimeout(check, 5);
    };
    check();
  });
}

/** Runs the CLI in-process on fake streams: its exit code and everything it printed. */
export async function runCaptured(argv: string[], io: FakeIo = fakeIo()) {
  const code = await runCli(argv, io);
  return { code, stdout: io.out.text(), stderr: io.err.text(), io };
}
