// ServerShard: one of SHARD_COUNT "servers" that hold users' WebSockets (the seed's serverHelper).
// The balancer picks a shard per connection by load; the shard validates every frame, routes uploads
// to the recipients' homes, pushes deliveries from homes to sockets, and reports its load.
//
// Sockets are accepted with the hibernation API: per-socket state lives in the attachment, sockets are
// tagged by user, and the entry points below restore everything from those after a wake-up.

import { DurableObject } from "cloudflare:workers";
import { ClientFrame, PING_TEXT, PONG_TEXT } from "../protocol/frames.js";
import { MAX_FRAME_BYTES } from "../protocol/limits.js";
import type { Backlog } from "./home/queue.js";
import { balancerStub, homeStub } from "./names.js";
import { type Connection, connectionOf, sendBinary, sendError, sendFrame, userTag } from "./shard/connection.js";
import { routeUpload } from "./shard/uploads.js";

/** Headers the Worker sets on the upgrade it forwards; a client cannot reach a shard directly. */
export const ShardHeaders = {
  user: "X-Telepound-User",
  session: "X-Telepound-Session",
  shard: "X-Telepound-Shard",
  receive: "X-Telepound-Receive",
} as const;

/** Most home stubs kept; past it the cache starts over (order only matters between in-flight calls). */
const HOME_STUB_CACHE = 10_000;

export class ServerShard extends DurableObject<Env> {
  private readonly homes = new Map<string, ReturnType<typeof homeStub>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Keep-alive pings are answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_TEXT, PONG_TEXT));
  }

  // ---- platform entry points ---------------------------------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    const user = request.headers.get(ShardHeaders.user);
    const session = request.headers.get(ShardHeaders.session);
    const shard = request.headers.get(ShardHeaders.shard);
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket" || !user || !session || !shard) {
      return new Response("expected a WebSocket upgrade from the Worker", { status: 400 });
    }
    const { 0: client, 1: server } = new WebSocketPair();
    const connection: Connection = {
      user,
      session,
      shard,
      receive: request.headers.get(ShardHeaders.receive) !== "0",
      backlogCursor: null,
    };
    this.ctx.acceptWebSocket(server, [userTag(user)]);
    server.serializeAttachment(connection);
    this.onOpen(server, connection).catch((error) => this.fail(server, "open", error));
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const connection = connectionOf(ws);
    if (!connection) return;
    try {
      if (typeof message === "string") await this.onText(ws, connection, message);
      else await this.onUpload(ws, connection, new Uint8Array(message));
    } catch (error) {
      this.fail(ws, "message", error);
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // Already closed.
    }
    await this.onClosed(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.onClosed(ws);
  }

  // ---- RPC from homes ---------------------------------------------------------------------------

  /** Sends frames to every receiving socket of `username` here; returns how many sockets got them. */
  push(username: string, frames: Uint8Array[]): number {
    let reached = 0;
    for (const ws of this.ctx.getWebSockets(userTag(username))) {
      if (!connectionOf(ws)?.receive) continue;
      let ok = true;
      for (const frame of frames) ok = sendBinary(ws, frame) && ok;
      if (ok) reached++;
    }
    return reached;
  }

  connectionCount(): number {
    return this.liveSockets().length;
  }

  // ---- handlers ---------------------------------------------------------------------------------

  private async onOpen(ws: WebSocket, connection: Connection): Promise<void> {
    sendFrame(ws, { type: "welcome", user: connection.user, shard: connection.shard, serverTime: Date.now() });
    this.reportLoad(connection.shard);
    if (!connection.receive) return;
    const backlog = await this.home(connection.user).attachSocket(connection.session, connection.shard);
    this.sendBacklog(ws, connection, backlog);
  }

  private async onText(ws: WebSocket, connection: Connection, text: string): Promise<void> {
    if (text.length > MAX_FRAME_BYTES) return sendError(ws, "too_large", `frames are limited to ${MAX_FRAME_BYTES} bytes`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return sendError(ws, "bad_frame", "text frames must be JSON");
    }
    const parsed = ClientFrame.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return sendError(ws, "bad_frame", `invalid frame: ${issue ? `${issue.path.join(".") || "frame"}: ${issue.message}` : "unknown"}`);
    }
    const frame = parsed.data;
    switch (frame.type) {
      case "ping":
        return sendFrame(ws, { type: "pong" });
      case "ack": {
        const next = await this.home(connection.user).acknowledge(connection.session, frame.ids, connection.backlogCursor);
        if (next) this.sendBacklog(ws, connectionOf(ws) ?? connection, next);
        return;
      }
    }
  }

  private async onUpload(ws: WebSocket, connection: Connection, frame: Uint8Array): Promise<void> {
    if (frame.length > MAX_FRAME_BYTES) return sendError(ws, "too_large", `frames are limited to ${MAX_FRAME_BYTES} bytes`);
    const reply = await routeUpload(connection.user, frame, (name) => this.home(name));
    sendFrame(ws, reply);
  }

  private sendBacklog(ws: WebSocket, connection: Connection, backlog: Backlog): void {
    for (const frame of backlog.frames) sendBinary(ws, frame);
    const updated: Connection = { ...connection, backlogCursor: backlog.more ? backlog.cursor : null };
    ws.serializeAttachment(updated);
    if (!backlog.more) sendFrame(ws, { type: "synced" });
  }

  private async onClosed(ws: WebSocket): Promise<void> {
    const connection = connectionOf(ws);
    if (!connection) return;
    ws.serializeAttachment(null);
    this.reportLoad(connection.shard);
    if (connection.receive) {
      await this.home(connection.user)
        .detachSocket(connection.session, connection.shard)
        .catch((error) => console.error(`${connection.shard}: disconnect of ${connection.user} failed`, error));
    }
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private home(username: string): ReturnType<typeof homeStub> {
    let stub = this.homes.get(username);
    if (!stub) {
      if (this.homes.size >= HOME_STUB_CACHE) this.homes.clear();
      stub = homeStub(this.env, username);
      this.homes.set(username, stub);
    }
    return stub;
  }

  private liveSockets(): WebSocket[] {
    return this.ctx.getWebSockets().filter((ws) => ws.readyState === WebSocket.OPEN && connectionOf(ws) !== null);
  }

  /** Tells the balancer our real socket count; best effort, the next report corrects a lost one. */
  private reportLoad(shard: string): void {
    balancerStub(this.env)
      .report(shard, this.liveSockets().length)
      .catch((error) => console.error(`${shard}: load report failed`, error));
  }

  /** One frame's failure is answered and logged; the shard and every other socket carry on. */
  private fail(ws: WebSocket, stage: string, error: unknown): void {
    const connection = connectionOf(ws);
    console.error(`${connection?.shard ?? "shard"}: ${stage} for ${connection?.user ?? "?"} failed`, error);
    sendError(ws, "internal", "the server could not handle that frame; nothing else was affected");
  }
}
