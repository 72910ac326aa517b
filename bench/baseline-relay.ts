// The baseline every scenario is compared with: a bare `ws` relay on loopback, run as a child process,
// speaking the same wire protocol as Telepound with no encryption, no persistence and no Workers runtime.
//
// It does the least a correct relay must: parse the upload's routing header (protocol/envelope.ts), hand
// each recipient its delivery frame (or keep it in memory while they are offline), answer "sent", drain a
// backlog in the same acknowledged pages of 256, and hold file blobs in memory. Users are whoever the
// bearer token's first field names; nothing is checked. Prints {"port":N} once listening.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { randomBytes } from "node:crypto";
import { WebSocketServer, type WebSocket } from "ws";
import { FormatError } from "../protocol/bytes.js";
import { decodeUpload, encodeDelivery, signedPartWithSignature } from "../protocol/envelope.js";
import { BLOB_PART_BYTES, MAX_FRAME_BYTES } from "../protocol/limits.js";

/** The same page size as the server's backlog (durable-objects/home/queue.ts). */
const BACKLOG_PAGE_MESSAGES = 256;
const BACKLOG_PAGE_BYTES = 1024 * 1024;

interface Socket {
  ws: WebSocket;
  user: string;
  receive: boolean;
  /** False while the backlog drains; deliveries meanwhile join the queue, behind the backlog. */
  live: boolean;
  /** Ids of the backlog page in flight, not yet acknowledged. */
  unacked: Set<string>;
}

interface User {
  sockets: Set<Socket>;
  /** Messages not yet pushed live or not yet acknowledged from a backlog page, in arrival order. */
  queue: Map<string, Buffer>;
}

const users = new Map<string, User>();

function userOf(name: string): User {
  let user = users.get(name);
  if (!user) {
    user = { sockets: new Set(), queue: new Map() };
    users.set(name, user);
  }
  return user;
}

function bearerUser(header: string | undefined): string | null {
  const match = /^Bearer ([^.\s]+)/.exec(header ?? "");
  return match ? match[1]! : null;
}

function sendJson(socket: Socket, frame: object): void {
  socket.ws.send(JSON.stringify(frame));
}

function sendPage(socket: Socket): void {
  const user = userOf(socket.user);
  let bytes = 0;
  for (const [id, frame] of user.queue) {
    if (socket.unacked.size === BACKLOG_PAGE_MESSAGES) break;
    if (socket.unacked.size > 0 && bytes + frame.length > BACKLOG_PAGE_BYTES) break;
    socket.unacked.add(id);
    bytes += frame.length;
    socket.ws.send(frame);
  }
  if (socket.unacked.size === 0) {
    socket.live = true;
    sendJson(socket, { type: "synced" });
  }
}

function onUpload(socket: Socket, data: Buffer): void {
  let envelope: ReturnType<typeof decodeUpload>;
  try {
    envelope = decodeUpload(data);
  } catch (error) {
    if (error instanceof FormatError)
      return sendJson(socket, { type: "error", code: "bad_frame", message: error.message });
    throw error;
  }
  const id = envelope.messageIdHex;
  if (envelope.header.sender !== socket.user) {
    return sendJson(socket, { type: "error", code: "forbidden", message: "not you", id });
  }
  const signed = signedPartWithSignature(envelope);
  let delivered = false;
  envelope.slots.forEach((slot, i) => {
    const frame = Buffer.from(encodeDelivery(signed, envelope.slotBytes[i]!));
    const recipient = userOf(slot.recipient);
    let pushed = false;
    for (const peer of recipient.sockets) {
      if (!peer.receive) continue;
      if (peer.live) peer.ws.send(frame);
      pushed = true;
    }
    // Offline, or draining its backlog: keep it, in order, until acknowledged.
    if (!pushed || [...recipient.sockets].some((peer) => peer.receive && !peer.live))
      recipient.queue.set(id, frame);
    if (pushed && slot.recipient !== socket.user) delivered = true;
  });
  sendJson(socket, { type: "sent", id, status: delivered ? "delivered" : "stored" });
}

function onText(socket: Socket, text: string): void {
  const frame = JSON.parse(text) as { type: string; ids?: string[] };
  if (frame.type === "ping") return sendJson(socket, { type: "pong" });
  if (frame.type !== "ack" || !frame.ids) return;
  const user = userOf(socket.user);
  for (const id of frame.ids) {
    user.queue.delete(id);
    socket.unacked.delete(id);
  }
  if (!socket.live && socket.unacked.size === 0) sendPage(socket);
}

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES });

// ---- blobs: the same four routes as Telepound's, held in memory ----------------------------------------

interface Blob {
  size: number;
  parts: Buffer[];
}
const blobs = new Map<string, Blob>();

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}

async function onHttp(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = request.url ?? "/";
  const owner = bearerUser(request.headers.authorization);
  const reply = (status: number, body?: object) => {
    response.writeHead(status, body ? { "Content-Type": "application/json" } : {});
    response.end(body ? JSON.stringify(body) : undefined);
  };
  if (url === "/v1/health") return reply(200, { ok: true });
  if (request.method === "POST" && url === "/v1/blobs") {
    const { size } = JSON.parse((await readBody(request)).toString("utf8")) as { size: number };
    const id = `${owner}.${randomBytes(16).toString("hex")}`;
    const parts = Math.max(1, Math.ceil(size / BLOB_PART_BYTES));
    blobs.set(id, { size, parts: [] });
    return reply(201, { id, partBytes: BLOB_PART_BYTES, parts, expiresAt: Date.now() + 3_600_000 });
  }
  const match = /^\/v1\/blobs\/([^/]+)(?:\/(parts)\/(\d+)|\/(complete))?$/.exec(url);
  const blob = match ? blobs.get(match[1]!) : undefined;
  if (!match || !blob) return reply(404, { error: { code: "not_found", message: url } });
  if (request.method === "PUT" && match[2]) {
    blob.parts[Number(match[3]) - 1] = await readBody(request);
    return reply(204);
  }
  if (request.method === "POST" && match[4]) return reply(204);
  if (request.method === "DELETE") {
    blobs.delete(match[1]!);
    return reply(204);
  }
  if (request.method === "GET") {
    response.writeHead(200, {
      "Content-Type": "application/octet-stream",
      "Content-Length": String(blob.size),
    });
    for (const part of blob.parts) {
      if (!response.write(part)) await new Promise((resolve) => response.once("drain", resolve));
    }
    response.end();
    return;
  }
  reply(405, { error: { code: "bad_request", message: "method" } });
}

const server = createServer((request, response) => {
  onHttp(request, response).catch((error: unknown) => {
    response.writeHead(500);
    response.end(String(error));
  });
});

server.on("upgrade", (request, tcp, head) => {
  const user = bearerUser(request.headers.authorization);
  if (!user || !request.url?.startsWith("/v1/connect")) {
    tcp.destroy();
    return;
  }
  wss.handleUpgrade(request, tcp, head, (ws) => {
    const socket: Socket = {
      ws,
      user,
      receive: !request.url!.includes("receive=0"),
      live: false,
      unacked: new Set(),
    };
    userOf(user).sockets.add(socket);
    ws.on("message", (data: Buffer, isBinary: boolean) =>
      isBinary ? onUpload(socket, data) : onText(socket, data.toString("utf8")),
    );
    ws.on("close", () => userOf(user).sockets.delete(socket));
    ws.on("error", () => userOf(user).sockets.delete(socket));
    sendJson(socket, { type: "welcome", user, shard: "relay", serverTime: Date.now() });
    if (socket.receive) sendPage(socket);
    else socket.live = true;
  });
});

server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ port: typeof address === "object" && address ? address.port : 0 })}\n`,
  );
});
// The parent closes our stdin when it is done (or dies): leave with it.
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
