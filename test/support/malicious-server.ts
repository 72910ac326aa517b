// A malicious server for attack tests: a proxy that the real CLI talks to instead of `wrangler dev`, able to
// rewrite, drop, replay and invent any HTTP answer or WebSocket frame. Tests set a scenario on it, run the
// CLI through it, and show that the client refuses what the operator of a real server could do.
//
// It plays the server's operator, not a network attacker: it sits where the Worker sits, sees every frame in
// the clear (TLS would end there too) and answers with whatever it likes.

import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { Duplex } from "node:stream";
import WebSocket, { WebSocketServer } from "ws";

/** One HTTP request as the client sent it. */
export interface ProxiedRequest {
  method: string;
  /** Path and query, e.g. `/v1/groups/team`. */
  path: string;
  headers: Headers;
  body: Uint8Array<ArrayBuffer>;
}

export type Frame = string | Uint8Array;

/** One WebSocket the client opened through the proxy, with its upstream twin. */
export interface ProxiedSocket {
  readonly path: string;
  /** Frames seen so far, in order, as they arrived (before any rewrite). */
  readonly fromClient: Frame[];
  readonly fromServer: Frame[];
  /** Sends a frame of the proxy's own making to the client, as if the server sent it. */
  toClient(frame: Frame): void;
  /** Sends a frame to the real server, as if the client sent it. */
  toServer(frame: Frame): void;
  close(code?: number): void;
}

/**
 * What the operator does. Every hook is optional; a missing one forwards unchanged. A frame hook returns
 * the frames to pass on instead of the one it got: `[]` drops it, `[frame, frame]` replays it.
 */
export interface Scenario {
  /** Called for every HTTP request; `forward` sends it (possibly changed) to the real server. */
  http?(request: ProxiedRequest, forward: (request?: ProxiedRequest) => Promise<Response>): Promise<Response>;
  toClient?(frame: Frame, socket: ProxiedSocket): Frame[] | Promise<Frame[]>;
  toServer?(frame: Frame, socket: ProxiedSocket): Frame[] | Promise<Frame[]>;
  onSocket?(socket: ProxiedSocket): void;
}

export interface MaliciousServer {
  readonly url: string;
  /** Replaces the scenario; an empty one makes the proxy honest. */
  play(scenario: Scenario): void;
  /** Every socket opened through the proxy so far. */
  readonly sockets: ProxiedSocket[];
  /** Every HTTP request so far, in order. */
  readonly requests: ProxiedRequest[];
  stop(): Promise<void>;
}

export async function startMaliciousServer(upstream: string): Promise<MaliciousServer> {
  let scenario: Scenario = {};
  const sockets: ProxiedSocket[] = [];
  const requests: ProxiedRequest[] = [];
  const upstreamUrl = new URL(upstream);

  const forward = async (request: ProxiedRequest): Promise<Response> => {
    const headers = new Headers(request.headers);
    headers.delete("host");
    headers.delete("content-length");
    headers.delete("connection");
    return fetch(new URL(request.path, upstreamUrl), {
      method: request.method,
      headers,
      body: request.method === "GET" || request.method === "HEAD" ? undefined : request.body,
      redirect: "manual",
    });
  };

  const handleHttp = async (incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    const headers = new Headers();
    for (const [key, value] of Object.entries(incoming.headers)) {
      if (typeof value === "string") headers.set(key, value);
      else if (Array.isArray(value)) for (const item of value) headers.append(key, item);
    }
    const request: ProxiedRequest = {
      method: incoming.method ?? "GET",
      path: incoming.url ?? "/",
      headers,
      body: new Uint8Array(Buffer.concat(chunks)),
    };
    requests.push(request);
    const response = scenario.http
      ? await scenario.http(request, (changed) => forward(changed ?? request))
      : await forward(request);
    const body = new Uint8Array(await response.arrayBuffer());
    const outHeaders: Record<string, string> = {};
    response.headers.forEach((value, key) => {
      if (key !== "content-encoding" && key !== "transfer-encoding" && key !== "content-length")
        outHeaders[key] = value;
    });
    outHeaders["content-length"] = String(body.byteLength);
    outgoing.writeHead(response.status, outHeaders);
    outgoing.end(body);
  };

  const wss = new WebSocketServer({ noServer: true, maxPayload: 8 * 1024 * 1024 });

  const handleUpgrade = (incoming: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = incoming.url ?? "/";
    const target = new URL(path, upstreamUrl);
    target.protocol = upstreamUrl.protocol === "https:" ? "wss:" : "ws:";
    const headers: Record<string, string> = {};
    for (const name of ["authorization", "sec-websocket-protocol", "cf-connecting-ip", "user-agent"]) {
      const value = incoming.headers[name];
      if (typeof value === "string") headers[name] = value;
    }
    const server = new WebSocket(target, { headers, maxPayload: 8 * 1024 * 1024 });
    server.on("unexpected-response", (_request, response) => {
      // The real server refused the upgrade: pass its answer on as it was.
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const body = Buffer.concat(chunks);
        socket.end(
          `HTTP/1.1 ${response.statusCode} ${response.statusMessage}\r\n` +
            `content-type: ${response.headers["content-type"] ?? "text/plain"}\r\n` +
            `content-length: ${body.byteLength}\r\nconnection: close\r\n\r\n` +
            body.toString("latin1"),
        );
      });
    });
    server.on("error", () => socket.destroy());
    server.once("open", () => {
      wss.handleUpgrade(incoming, socket, head, (client) => {
        const send = (ws: WebSocket, frame: Frame) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(frame, { binary: typeof frame !== "string" });
        };
        const proxied: ProxiedSocket = {
          path,
          fromClient: [],
          fromServer: [],
          toClient: (frame) => send(client, frame),
          toServer: (frame) => send(server, frame),
          close: (code = 1000) => {
            client.close(code);
            server.close(1000);
          },
        };
        sockets.push(proxied);
        scenario.onSocket?.(proxied);
        // Frames are rewritten one at a time, in order, even when a hook is slow.
        let fromServer = Promise.resolve();
        let fromClient = Promise.resolve();
        server.on("message", (data, isBinary) => {
          const frame: Frame = isBinary ? new Uint8Array(data as Buffer) : (data as Buffer).toString("utf8");
          proxied.fromServer.push(frame);
          fromServer = fromServer.then(async () => {
            const out = scenario.toClient ? await scenario.toClient(frame, proxied) : [frame];
            for (const item of out) send(client, item);
          });
        });
        client.on("message", (data, isBinary) => {
          const frame: Frame = isBinary ? new Uint8Array(data as Buffer) : (data as Buffer).toString("utf8");
          proxied.fromClient.push(frame);
          fromClient = fromClient.then(async () => {
            const out = scenario.toServer ? await scenario.toServer(frame, proxied) : [frame];
            for (const item of out) send(server, item);
          });
        });
        const closeBoth = (code: number) => {
          const safe = code >= 1000 && code < 5000 && code !== 1005 && code !== 1006 ? code : 1000;
          if (client.readyState === WebSocket.OPEN) client.close(safe);
          if (server.readyState === WebSocket.OPEN) server.close(safe === 1008 ? 1008 : 1000);
        };
        server.on("close", (code) => void fromServer.then(() => closeBoth(code)));
        client.on("close", (code) => void fromClient.then(() => closeBoth(code)));
        server.on("error", () => client.terminate());
        client.on("error", () => server.terminate());
      });
    });
  };

  const http: Server = createServer((incoming, outgoing) => {
    handleHttp(incoming, outgoing).catch((error: unknown) => {
      outgoing.writeHead(502, { "content-type": "text/plain" });
      outgoing.end(String(error));
    });
  });
  http.on("upgrade", handleUpgrade);
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const address = http.address();
  const port = typeof address === "object" && address ? address.port : 0;

  return {
    url: `http://127.0.0.1:${port}`,
    play: (next) => {
      scenario = next;
    },
    sockets,
    requests,
    stop: async () => {
      for (const client of wss.clients) client.terminate();
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await closed;
    },
  };
}

/** A JSON answer of the proxy's own, shaped like the server's. */
export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** The request's JSON body, or undefined. */
export function jsonBody(request: ProxiedRequest): unknown {
  if (request.body.byteLength === 0) return undefined;
  return JSON.parse(new TextDecoder().decode(request.body));
}
