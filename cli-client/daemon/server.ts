// The daemon: one client for the home, receiving all the time (it holds the receiver claim), and
// JSON-RPC on standard input/output and on a Unix socket in the home. Every client (stdin/stdout and
// each socket connection) gets every message, group event and warning as a notification; calls are
// answered on the connection they came on. Bad input is answered with an error, never fatal.

import { chmod, unlink } from "node:fs/promises";
import { type Server, type Socket, createServer } from "node:net";
import { z } from "zod";
import { describeError } from "../../client/errors.js";
import type { Reception, TelepoundClient } from "../../client/telepound-client.js";
import { Printer, eventData, messageData, whenFlushed } from "../output.js";
import { Feed } from "./feed.js";
import { METHODS, checkParams } from "./methods.js";
import {
  LineReader,
  MAX_LINE_BYTES,
  type RpcError,
  type RpcRequest,
  RpcErrorCode,
  errorLine,
  notificationLine,
  parseLine,
  resultLine,
} from "./protocol.js";
import { CommandRunner, RecordingPrinter } from "./requests.js";
import { readGlobals } from "./thin-client.js";

/** The method the thin CLI path (daemon/thin-client.ts) calls: a whole `telepound …` command line. */
export const CLI_METHOD = "cli";

const cliParams = z.strictObject({
  argv: z.array(z.string()).max(10_000),
  /** Human output in colour (the caller's terminal wants it). */
  colors: z.boolean().optional(),
  stdin: z.string().optional(),
  server: z.string().optional(),
});

export interface DaemonOptions {
  client: TelepoundClient;
  socketPath: string;
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  /** One line about each call (never its content) and the daemon's own state, for its operator. */
  log: (line: string) => void;
}

/** One connected client: stdin/stdout or a socket connection. */
class Peer {
  /** Gets notifications; a connection that made a CLI call gets only that call's output. */
  subscribed = true;
  /** Ended when the connection closes: a `listen` through the daemon stops then. */
  readonly gone = new AbortController();
  inFlight = 0;
  private open = true;

  constructor(
    readonly name: string,
    private readonly write: (line: string) => void,
    readonly onIdle: () => void = () => undefined,
  ) {}

  send(line: string): void {
    if (this.open) this.write(`${line}\n`);
  }

  close(): void {
    this.open = false;
    this.gone.abort();
  }
}

export class Daemon {
  readonly feed = new Feed();
  private readonly runner: CommandRunner;
  private readonly peers = new Set<Peer>();
  private readonly sockets = new Set<Socket>();
  private socketServer: Server | null = null;
  private connections = 0;
  private reception: Reception | null = null;

  private constructor(private readonly options: DaemonOptions) {
    this.runner = new CommandRunner({ client: options.client, feed: this.feed });
  }

  /**
   * Claims the home's receiver, starts receiving (what arrives is notified and recorded in the history
   * before it is acknowledged), then listens on the socket and on stdin.
   */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const daemon = new Daemon(options);
    const me = await options.client.session();
    daemon.subscribe();
    daemon.reception = await options.client.receive({
      command: "daemon",
      mode: "live",
      // The notification was written to stdout: it must have left the process before the ack.
      flushed: () => whenFlushed(options.stdout),
    });
    try {
      await daemon.listen();
    } catch (error) {
      await daemon.reception.finish().catch(() => undefined);
      throw error;
    }
    daemon.attachStdio();
    options.log(`receiving for ${me.username}; socket ${options.socketPath}`);
    return daemon;
  }

  /** Rejects when receiving cannot go on (the session ended, …); resolves after `stop()`. */
  get ended(): Promise<void> {
    return this.reception!.ended;
  }

  stop(): void {
    this.reception?.stop();
  }

  /** Stops listening (the socket file goes), ends every connection, finishes receiving. */
  async close(): Promise<void> {
    const server = this.socketServer;
    this.socketServer = null;
    for (const peer of this.peers) peer.close();
    // server.close waits for every connection to end: a client that stays connected must not keep it.
    for (const socket of this.sockets) socket.destroy();
    if (server) {
      await new Promise<void>((done) => server.close(() => done()));
      await unlink(this.options.socketPath).catch(() => undefined);
    }
    await this.reception?.finish();
  }

  /** What the core receives goes into the feed and to every subscribed client. */
  private subscribe(): void {
    const { events } = this.options.client;
    events.on("message", (message) => {
      this.feed.push({ kind: "message", message });
      this.broadcast(notificationLine("message", messageData(message)));
    });
    events.on("groupEvent", (event) => {
      this.feed.push({ kind: "event", event });
      this.broadcast(notificationLine("event", eventData(event)));
    });
    events.on("warning", (warning) => {
      this.feed.push({ kind: "warning", warning });
      this.broadcast(notificationLine("warning", { message: warning.message }));
    });
    events.on("keyChange", ({ user, message }) => {
      this.feed.push({ kind: "warning", warning: { message } });
      this.broadcast(notificationLine("warning", { message, user }));
    });
  }

  private broadcast(line: string): void {
    for (const peer of this.peers) if (peer.subscribed) peer.send(line);
  }

  private async listen(): Promise<void> {
    const { socketPath } = this.options;
    // Only the process that holds the receiver claim listens here: a socket file left is a dead daemon's.
    await unlink(socketPath).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
    const server = createServer({ allowHalfOpen: true }, (socket) => this.attachSocket(socket));
    // The socket is created owner-only: the umask applies while the file is made (bind is synchronous).
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((done, fail) => {
        server.once("error", fail);
        server.listen(socketPath, () => {
          server.off("error", fail);
          done();
        });
      });
    } finally {
      process.umask(umask);
    }
    await chmod(socketPath, 0o600);
    server.on("error", (error) => this.options.log(`socket error: ${error.message}`));
    this.socketServer = server;
  }

  private attachSocket(socket: Socket): void {
    this.connections += 1;
    this.sockets.add(socket);
    let ended = false;
    const finishIfDone = () => {
      if (ended && peer.inFlight === 0) socket.end();
    };
    const peer = new Peer(
      `socket#${this.connections}`,
      (line) => {
        if (socket.writable) socket.write(line);
      },
      finishIfDone,
    );
    this.peers.add(peer);
    const reader = this.reader(peer);
    socket.on("data", (chunk: Buffer) => reader.push(chunk));
    // A client may send its calls and then end its side: the answers still go out, then the socket ends.
    socket.on("end", () => {
      reader.end();
      ended = true;
      finishIfDone();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.sockets.delete(socket);
      peer.close();
      this.peers.delete(peer);
    });
  }

  private attachStdio(): void {
    const { stdin, stdout } = this.options;
    const peer = new Peer("stdio", (line) => stdout.write(line));
    this.peers.add(peer);
    const reader = this.reader(peer);
    stdin.on("data", (chunk: Buffer | string) => reader.push(Buffer.from(chunk)));
    // The end of stdin does not end the daemon: socket clients may still use it (stop it with a signal).
    stdin.on("end", () => reader.end());
    stdin.on("error", () => undefined);
  }

  private reader(peer: Peer): LineReader {
    return new LineReader(
      (line) => void this.handleLine(peer, line),
      () =>
        peer.send(
          errorLine(null, {
            code: RpcErrorCode.invalidRequest,
            message: `invalid request: the line is longer than ${MAX_LINE_BYTES} bytes`,
          }),
        ),
    );
  }

  /** Answers one line; whatever goes wrong is an error response, never an exception. */
  async handleLine(peer: Peer, line: string): Promise<void> {
    const parsed = parseLine(line);
    if ("error" in parsed) {
      peer.send(errorLine(parsed.id, parsed.error));
      return;
    }
    const { request } = parsed;
    peer.inFlight += 1;
    try {
      const outcome = await this.call(peer, request);
      if (request.id === undefined) return;
      peer.send(
        "error" in outcome ? errorLine(request.id, outcome.error) : resultLine(request.id, outcome.result),
      );
    } catch (error) {
      // A bug of ours: the caller still gets an answer, and the daemon carries on.
      const { exitCode, message } = describeError(error);
      this.options.log(`${peer.name} ${request.method}: unexpected failure: ${message}`);
      if (request.id !== undefined) {
        peer.send(errorLine(request.id, applicationError(exitCode, message)));
      }
    } finally {
      peer.inFlight -= 1;
      peer.onIdle();
    }
  }

  private async call(peer: Peer, request: RpcRequest): Promise<{ result: unknown } | { error: RpcError }> {
    if (request.method === CLI_METHOD) return this.callCli(peer, request);
    const method = Object.hasOwn(METHODS, request.method) ? METHODS[request.method] : undefined;
    if (!method) {
      return { error: { code: RpcErrorCode.methodNotFound, message: `method not found: ${request.method}` } };
    }
    const checked = checkParams(method, request.params);
    if (!checked.ok) {
      return { error: { code: RpcErrorCode.invalidParams, message: `invalid params: ${checked.reason}` } };
    }
    const printer = new RecordingPrinter();
    let stderr = "";
    const exitCode = await this.runner.run({
      argv: method.argv(checked.params),
      printer: () => printer,
      stdout: () => undefined,
      stderr: (text) => (stderr += text),
      signal: peer.gone.signal,
    });
    for (const message of printer.warnings) peer.send(notificationLine("warning", { message }));
    this.options.log(`${peer.name} ${request.method} ${exitCode === 0 ? "ok" : `exit ${exitCode}`}`);
    if (exitCode === 0) {
      return { result: method.result === "all" ? printer.results : (printer.results[0] ?? null) };
    }
    const failure = printer.failure ?? { exitCode, message: stderr.trim() || `exit ${exitCode}` };
    return { error: applicationError(failure.exitCode, failure.message) };
  }

  /** A whole command line, as the CLI would run it: its output streamed back, then its exit code. */
  private async callCli(peer: Peer, request: RpcRequest): Promise<{ result: unknown } | { error: RpcError }> {
    const parsed = cliParams.safeParse(request.params);
    if (!parsed.success) {
      return { error: { code: RpcErrorCode.invalidParams, message: "invalid params: cli takes argv" } };
    }
    peer.subscribed = false;
    const { argv, colors, stdin, server } = parsed.data;
    const output = (stream: "stdout" | "stderr") => (text: string) =>
      peer.send(notificationLine("cli.output", { stream, text }));
    const exitCode = await this.runner.run({
      argv,
      printer: (json, io) =>
        new Printer(json, { stdout: io.stdout, stderr: io.stderr }, colors === true && !json),
      stdout: output("stdout"),
      stderr: output("stderr"),
      ...(stdin === undefined ? {} : { stdin }),
      ...(server === undefined ? {} : { server }),
      signal: peer.gone.signal,
    });
    this.options.log(`${peer.name} cli ${commandWords(argv)} exit ${exitCode}`);
    return { result: { exitCode } };
  }
}

function applicationError(exitCode: number, message: string): RpcError {
  return { code: RpcErrorCode.application, message, data: { exitCode, message } };
}

/** "send", "group add": the command of a command line, for the log (never its arguments). */
function commandWords(argv: readonly string[]): string {
  const { command, rest } = readGlobals(argv);
  return command === "group" || (command === "devices" && rest[0] === "revoke")
    ? `${command} ${rest[0] ?? ""}`.trim()
    : (command ?? "");
}
