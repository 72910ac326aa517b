// ServerShard: one of the "servers" that hold users' WebSockets (the seed's serverHelper). A balancer
// opens shards as load grows and picks one per connection by load; the shard validates every frame, routes uploads
// to the recipients' homes and the groups' rooms, pushes what homes and rooms store to sockets (a
// connecting socket's backlog first: shard/backlog-drain.ts), and reports its load.
//
// Sockets are accepted with the hibernation API: per-socket state lives in the attachment, sockets are
// tagged by user, and the entry points below restore everything from those after a wake-up.

import { DurableObject } from "cloudflare:workers";
import { ClientFrame, CloseCode, PING_TEXT, PONG_TEXT } from "../protocol/frames.js";
import { MAX_FRAME_BYTES } from "../protocol/limits.js";
import type { Backlog, QueuedItem } from "./home/queue.js";
import { nameExists } from "./known-names.js";
import { balancerOfShard, balancerStub, groupStub, homeStub } from "./names.js";
import { OrderedBatcher, OrderedBatchers } from "./ordered-batcher.js";
import { StubCache } from "./stub-cache.js";
import {
  type Connection,
  HOME_SOURCE,
  closeEndedSession,
  connectionOf,
  setConnection,
  sendError,
  sendFrame,
  userTag,
} from "./shard/connection.js";
import { AckDeadlines } from "./shard/ack-deadlines.js";
import { BacklogDrain } from "./shard/backlog-drain.js";
import { FloodControl } from "./shard/flood-control.js";
import { type Routes, routeUpload } from "./shard/uploads.js";
import { MIN_ACK_WINDOW_MS, boundedAckWindowMs } from "./group/fanout.js";
import { uploadHead } from "../protocol/envelope.js";
import {
  type AttachResult,
  type SenderCheck,
  type DeliverResult,
  type GroupAck,
  type GroupDelivery,
  type GroupPost,
  type GroupPushOutcome,
  type Incoming,
  type Outgoing,
  type PostResult,
  type SessionAck,
  ShardHeaders,
  type ShardLoad,
} from "./contracts.js";

/** Most home stubs kept; past it they are dropped (a stub is cheap to make again). */
const HOME_CACHE_LIMIT = 10_000;
/**
 * Load reports wait this long so that a burst of connects and closes becomes one report: the balancer
 * counts its own assignments meanwhile, and a login storm needs a handful of reports, not one per socket.
 */
const LOAD_REPORT_DELAY_MS = 20;
/**
 * While frames flow, the load is reported at least this often (its frame rate too), so the balancer can
 * open another shard for a shard that is busy with few sockets. A shard with no frames sends nothing.
 */
const LOAD_REPORT_INTERVAL_MS = 1_000;
/** How long live acknowledgements gather before they go to their queue (home or room) as one batch. */
const ACK_LINGER_MS = 10;

/** Rooms whose acknowledgement window a shard remembers; one forgotten gets the shortest until it pushes. */
const ACK_WINDOWS_KEPT = 10_000;

/** A numeric [vars] setting, or its default when unset or not a positive number. */
function setting(value: string | undefined, fallback: number): number {
  const parsed = Number(value);
  return Number.isFinite(parsed) && parsed > 0 ? parsed : fallback;
}

export class ServerShard extends DurableObject<Env> {
  private readonly homes = new StubCache((username) => homeStub(this.env, username), HOME_CACHE_LIMIT);
  private readonly flood: FloodControl;
  /** To each recipient's home: uploads from this shard reach it in the order received. */
  private readonly deliveryPipes = new OrderedBatchers<Incoming, DeliverResult>(
    (username) =>
      new OrderedBatcher(async (batch) => {
        // A send to a name with no account is answered without waking (and so creating) its home.
        if (!(await nameExists(this.env, "user", username)))
          return batch.map(() => ({ ok: false, reason: "unknown_user" }) as const);
        return this.homes.call(username, (home) => home.deliver(batch));
      }),
  );
  /**
   * To each group's room, the same. A stub per batch, not per pipe: a room's stub can stay broken after the
   * room was reset, and a batch is one call for many posts.
   */
  private readonly groupPipes = new OrderedBatchers<GroupPost, PostResult>(
    (group) =>
      new OrderedBatcher(async (batch) => {
        if (!(await nameExists(this.env, "group", group)))
          return batch.map(() => ({ ok: false, code: "unknown_group", message: "no such group" }) as const);
        return groupStub(this.env, group).post(batch);
      }),
  );
  private readonly routes: Routes = {
    toHome: (recipient, message) => this.deliveryPipes.submit(recipient, message),
    toGroup: (group, post) => this.groupPipes.submit(group, post),
  };
  /**
   * Live acknowledgements from this shard's sockets, gathered into one call per home or room: every member
   * of a large group acknowledges each message within a few milliseconds, and one call and one commit for
   * all of them costs far less than one each. A home's gather for ACK_LINGER_MS; a room's for the window
   * it asked for with its last push, longer for a larger audience (group/fanout.ts).
   */
  private readonly groupAckPipes = new OrderedBatchers<GroupAck, Backlog | null>(
    (group) =>
      new OrderedBatcher(
        (batch) => groupStub(this.env, group).acknowledge(batch),
        1024,
        () => this.groupAckWindows.get(group) ?? MIN_ACK_WINDOW_MS,
      ),
  );
  /** Each room's acknowledgement window, as its last push asked; the oldest are forgotten past the cap. */
  private readonly groupAckWindows = new Map<string, number>();
  private readonly homeAckPipes = new OrderedBatchers<SessionAck, void>(
    (username) =>
      new OrderedBatcher<SessionAck, void>(
        async (batch) => {
          await this.homes.call(username, (home) => home.acknowledgeLive(batch));
          return batch.map(() => undefined);
        },
        1024,
        ACK_LINGER_MS,
      ),
  );
  private readonly deadlines: AckDeadlines;
  private readonly drain: BacklogDrain;
  /**
   * Sockets here with a connection attached, kept as they open and close: counting them by reading every
   * attachment made each connect cost in proportion to the shard's size. Null after a wake-up from
   * hibernation (memory was reset, the sockets were not) until counted once.
   */
  private socketCount: number | null = null;
  /** Load reports to this shard's balancer, made on the first (reportLoad). */
  private reports: OrderedBatcher<null, void> | null = null;
  /** Frames received since `framesSince`, and the rate of the last full interval: the frame load. */
  private frames = 0;
  private framesSince = Date.now();
  private framesPerSecond = 0;
  /** The highest balancer ticket among the sockets accepted since this object woke (ShardLoad.ticket). */
  private ticket = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Keep-alive pings are answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_TEXT, PONG_TEXT));
    this.flood = new FloodControl(Number(env.MESSAGES_PER_USER_PER_SECOND));
    this.deadlines = new AckDeadlines(ctx.storage, setting(env.ACK_TIMEOUT_SECONDS, 60) * 1000);
    this.drain = new BacklogDrain(
      {
        openGroup: (connection, group) =>
          groupStub(this.env, group).openBacklog(
            connection.user,
            { id: connection.session, expiresAt: connection.expiresAt },
            connection.shard,
          ),
        readAfter: async ({ user, session }, source, cursor) =>
          source === HOME_SOURCE
            ? this.homes.call(user, (home) => home.acknowledge(session, [], cursor))
            : ((
                await groupStub(this.env, source).acknowledge([{ member: user, session, ids: [], cursor }])
              )[0] ?? null),
        awaitAck: (connection) => this.deadlines.awaitAck(connection),
      },
      {
        bytesPerSocket: setting(env.HELD_BYTES_PER_SOCKET, 1024 * 1024),
        bytesPerShard: setting(env.HELD_BYTES_PER_SHARD, 16 * 1024 * 1024),
      },
    );
  }

  // ---- platform entry points ---------------------------------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    const user = request.headers.get(ShardHeaders.user);
    const session = request.headers.get(ShardHeaders.session);
    const secretHash = request.headers.get(ShardHeaders.secretHash);
    // Its own name (shard:REGION:SLICE:N, from its balancer), by which the balancer and the homes reach it.
    const shard = this.ctx.id.name;
    if (
      request.headers.get("Upgrade")?.toLowerCase() !== "websocket" ||
      !user ||
      !session ||
      !secretHash ||
      !shard
    ) {
      return new Response("expected a WebSocket upgrade from the Worker", { status: 400 });
    }
    const { 0: client, 1: server } = new WebSocketPair();
    const connection: Connection = {
      id: crypto.randomUUID(),
      user,
      session,
      shard,
      receive: request.headers.get(ShardHeaders.receive) !== "0",
      expiresAt: 0,
      // Everything is held back until the home has answered with the sources to drain.
      draining: [HOME_SOURCE],
      backlogCursor: 0,
    };
    // Accepted before the session is checked, so that live pushes arriving while the home answers are
    // held back for this socket (it is not live yet) instead of missing it.
    this.ctx.acceptWebSocket(server, [userTag(user)]);
    setConnection(server, connection);
    const ticket = Number(request.headers.get(ShardHeaders.ticket));
    if (Number.isSafeInteger(ticket) && ticket > this.ticket) this.ticket = ticket;
    if (this.socketCount !== null) this.socketCount++;
    let opened: Awaited<ReturnType<ServerShard["open"]>>;
    try {
      opened = await this.open(connection, secretHash);
    } catch (error) {
      this.discard(server, connection);
      throw error;
    }
    if (!opened.ok) {
      this.discard(server, connection);
      return new Response(null, { status: 401, headers: { [ShardHeaders.refusal]: opened.reason } });
    }
    // Closed while its home answered: the close did its bookkeeping, and it must not come back to life.
    if (connectionOf(server)?.id !== connection.id)
      return new Response(null, { status: 101, webSocket: client });
    const opening: Connection = {
      ...connection,
      expiresAt: opened.expiresAt,
      draining: opened.backlog ? [HOME_SOURCE, ...opened.groups] : [],
    };
    setConnection(server, opening);
    sendFrame(server, { type: "welcome", user, shard, serverTime: Date.now(), sessions: opened.sessions });
    this.reportLoad(shard);
    if (opened.backlog) this.drain.send(server, opening, opened.backlog);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const connection = connectionOf(ws);
    if (!connection) return;
    this.countFrame(connection.shard);
    if (connection.expiresAt > 0 && Date.now() >= connection.expiresAt)
      return closeEndedSession(ws, "session expired");
    // Per user, not per socket: opening more sockets on a shard buys no more frames.
    const admission = this.flood.admit(connection.user);
    if (admission !== "ok") return this.refuse(ws, connection, message, admission);
    try {
      if (typeof message === "string") await this.onText(ws, connection, message);
      else await this.onUpload(ws, connection, new Uint8Array(message));
    } catch (error) {
      this.fail(ws, "message", error, uploadIdOf(message));
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

  /** Closes the sockets that left something unacknowledged past ACK_TIMEOUT_SECONDS. */
  override async alarm(): Promise<void> {
    for (const ws of this.deadlines.closeOverdue(this.ctx.getWebSockets())) {
      const connection = connectionOf(ws);
      console.warn(`${connection?.shard}: closed ${connection?.user}'s socket: nothing acknowledged in time`);
      // Its bookkeeping now, not when the client answers the close: no more pushes, nothing held.
      await this.onClosed(ws);
    }
  }

  // ---- RPC from homes ---------------------------------------------------------------------------

  /**
   * Sends stored messages from the user's home to every receiving socket of `username` here (holding them
   * back on sockets still draining that backlog); returns how many sockets will get them.
   */
  push(username: string, messages: Outgoing[]): number {
    let reached = 0;
    for (const ws of this.ctx.getWebSockets(userTag(username))) {
      const connection = connectionOf(ws);
      if (!connection?.receive) continue;
      const items = messages
        .filter((message) => message.exceptSession !== connection.session)
        .map(({ seq, kind, data }) => ({ seq, item: { kind, data } }));
      if (items.length > 0 && this.drain.push(ws, connection, HOME_SOURCE, items)) reached++;
    }
    return reached;
  }

  /**
   * Sends stored group messages to the receiving sockets here of each member they were sealed for, each
   * with that member's slot (the room sends each shard the slots of the members it knows are here).
   * Answers, per message, whether it reached a member other than the sender, and which members it came
   * for have no receiving socket here, for the room to keep its audience true.
   * The signed part arrives once per shard and stays one copy: each member's frame is built as it is sent.
   */
  pushGroup(group: string, deliveries: GroupDelivery[], ackWindowMs?: number): GroupPushOutcome[] {
    this.rememberAckWindow(group, boundedAckWindowMs(ackWindowMs));
    return deliveries.map(({ seq, sender, signed, slots }) => {
      let reachedOther = false;
      const absent: string[] = [];
      for (const { member, slot } of slots) {
        let here = false;
        const items = [{ seq, item: { kind: "group" as const, signed, slot } }];
        for (const ws of this.ctx.getWebSockets(userTag(member))) {
          const connection = connectionOf(ws);
          if (!connection?.receive) continue;
          here = true;
          if (this.drain.push(ws, connection, group, items) && member !== sender) reachedOther = true;
        }
        if (!here) absent.push(member);
      }
      return { reachedOther, absent };
    });
  }

  private rememberAckWindow(group: string, windowMs: number): void {
    this.groupAckWindows.delete(group);
    if (this.groupAckWindows.size >= ACK_WINDOWS_KEPT) {
      const oldest = this.groupAckWindows.keys().next().value;
      if (oldest !== undefined) this.groupAckWindows.delete(oldest);
    }
    this.groupAckWindows.set(group, windowMs);
  }

  /**
   * Closes every socket of one session here (logout, a revoke, the session cap): an ended session must
   * not keep sending. `reason` is the close frame's reason, which the client shows.
   */
  closeSession(username: string, sessionId: string, reason = "logged out"): number {
    let closed = 0;
    for (const ws of this.ctx.getWebSockets(userTag(username))) {
      if (connectionOf(ws)?.session !== sessionId) continue;
      closeEndedSession(ws, reason);
      closed++;
    }
    return closed;
  }

  /** The account's live session count changed: its receiving sockets here are told (PROTOCOL §4.3). */
  tellSessions(username: string, count: number): void {
    for (const ws of this.ctx.getWebSockets(userTag(username)))
      if (connectionOf(ws)?.receive) sendFrame(ws, { type: "sessions", count });
  }

  connectionCount(): number {
    this.socketCount ??= this.ctx.getWebSockets().filter((ws) => connectionOf(ws) !== null).length;
    return this.socketCount;
  }

  /** What the balancer asks after it restarted: the same as a report. */
  load(): ShardLoad {
    return {
      connections: this.connectionCount(),
      framesPerSecond: this.frameRate(Date.now()),
      ticket: this.ticket,
    };
  }

  // ---- handlers ---------------------------------------------------------------------------------

  /**
   * Has the user's home check the session and, for a receiving socket, attach it and hand over the first
   * backlog batch, in one call.
   */
  private async open(
    connection: Connection,
    secretHash: string,
  ): Promise<AttachResult | { ok: true; expiresAt: number; sessions: number; backlog: null; groups: [] }> {
    const { user, session, shard } = connection;
    if (connection.receive)
      return this.homes.call(user, async (home): Promise<AttachResult> =>
        home.attachSocket(session, secretHash, shard),
      );
    const check = await this.homes.call(user, async (home): Promise<SenderCheck> =>
      home.authenticateSender(session, secretHash, shard),
    );
    return check.ok ? { ...check, backlog: null, groups: [] } : check;
  }

  /** A socket whose session was refused (or whose opening failed): it never reaches the client. */
  private discard(ws: WebSocket, connection: Connection): void {
    // Counted once: a socket that closed while its home answered was uncounted by its close already.
    const counted = connectionOf(ws) !== null;
    setConnection(ws, null);
    if (counted && this.socketCount !== null) this.socketCount--;
    this.drain.forget(connection.id);
    this.reportLoad(connection.shard);
    try {
      ws.close(1011, "not opened");
    } catch {
      // Never connected.
    }
  }

  private async onText(ws: WebSocket, connection: Connection, text: string): Promise<void> {
    // UTF-16 length bounds UTF-8 bytes from below (1 char → ≤ 3 bytes): encode only when it could be over.
    if (text.length * 3 > MAX_FRAME_BYTES && utf8Length(text) > MAX_FRAME_BYTES)
      return sendError(ws, "too_large", `frames are limited to ${MAX_FRAME_BYTES} bytes`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return sendError(ws, "bad_frame", "text frames must be JSON");
    }
    const parsed = ClientFrame.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return sendError(
        ws,
        "bad_frame",
        `invalid frame: ${issue ? `${issue.path.join(".") || "frame"}: ${issue.message}` : "unknown"}`,
      );
    }
    const frame = parsed.data;
    switch (frame.type) {
      case "ping":
        return sendFrame(ws, { type: "pong" });
      case "ack": {
        const source = frame.group ?? HOME_SOURCE;
        // Any acknowledgement stops the socket's clock; what is sent next starts it again.
        const acknowledged = this.deadlines.acknowledged(connection);
        if (acknowledged !== connection) setConnection(ws, acknowledged);
        // The cursor goes along only for the source whose backlog is being sent: its next batch follows.
        const cursor = connection.draining[0] === source ? connection.backlogCursor : null;
        // A draining socket waits for its next batch; live acknowledgements wait for nobody and are
        // gathered into fewer calls (and commits) at their queue.
        const { user, session } = connection;
        let next: Backlog | null = null;
        if (frame.group === undefined) {
          if (cursor !== null)
            next = await this.homes.call(user, (home) => home.acknowledge(session, frame.ids, cursor));
          else await this.homeAckPipes.submit(user, { session, ids: frame.ids });
        } else {
          // Acknowledgements naming a group nobody made are dropped, never carried to a new room.
          if (!(await nameExists(this.env, "group", frame.group))) return;
          const ack: GroupAck = { member: user, session, ids: frame.ids, cursor };
          next =
            cursor !== null
              ? (await groupStub(this.env, frame.group).acknowledge([ack]))[0]!
              : await this.groupAckPipes.submit(frame.group, ack);
        }
        const current = connectionOf(ws);
        if (next && current?.draining[0] === source) this.drain.send(ws, current, next);
        return;
      }
    }
  }

  private async onUpload(ws: WebSocket, connection: Connection, frame: Uint8Array): Promise<void> {
    if (frame.length > MAX_FRAME_BYTES)
      return sendError(ws, "too_large", `frames are limited to ${MAX_FRAME_BYTES} bytes`, uploadIdOf(frame));
    const { id, reply } = routeUpload(connection, frame, this.routes);
    try {
      sendFrame(ws, await reply);
    } catch (error) {
      // The message was not accepted: say so by id, so the client can retry exactly it.
      console.error(`${connection.shard}: delivering ${id ?? "?"} from ${connection.user} failed`, error);
      sendError(ws, "internal", "the server could not accept this message; retry it", id);
    }
  }

  private async onClosed(ws: WebSocket): Promise<void> {
    const connection = connectionOf(ws);
    if (!connection) return;
    // Cleared first: the runtime may report a socket's end twice (close, then error); it counts once.
    setConnection(ws, null);
    if (this.socketCount !== null) this.socketCount--;
    this.drain.forget(connection.id);
    // The user's budget here goes with their last socket here (this one's attachment is already cleared).
    if (!this.ctx.getWebSockets(userTag(connection.user)).some((other) => connectionOf(other) !== null))
      this.flood.forget(connection.user);
    this.reportLoad(connection.shard);
    const { user, session, shard } = connection;
    await this.homes
      .call(user, (home) =>
        connection.receive ? home.detachSocket(session, shard) : home.detachSender(session, shard),
      )
      .catch((error) => console.error(`${shard}: disconnect of ${user} failed`, error));
  }

  // ---- helpers ----------------------------------------------------------------------------------

  /**
   * Tells the balancer our real socket count, once per burst (LOAD_REPORT_DELAY_MS); best effort, the
   * next report corrects a lost one. Calls between objects may arrive out of order: two reports in
   * flight at once could land older last, and the balancer would take a count that was already gone
   * (one socket short, with that socket's ticket already covered). So reports go through an
   * OrderedBatcher, one in flight at a time, the count read as each leaves.
   */
  private reportLoad(shard: string): void {
    if (!this.reports) {
      // A shard no balancer named (one of an older layout) has nobody to report to; it only empties.
      const balancer = balancerOfShard(shard);
      if (balancer === null) return;
      this.reports = new OrderedBatcher<null, void>(
        async (burst) => {
          await balancerStub(this.env, balancer).report(shard, this.load());
          return burst.map(() => undefined);
        },
        Infinity,
        LOAD_REPORT_DELAY_MS,
      );
    }
    this.reports.submit(null).catch((error) => console.error(`${shard}: load report failed`, error));
  }

  /** Counts a client's frame; once an interval has passed, its rate is reported. */
  private countFrame(shard: string): void {
    this.frames++;
    const now = Date.now();
    if (now - this.framesSince < LOAD_REPORT_INTERVAL_MS) return;
    this.frameRate(now);
    this.reportLoad(shard);
  }

  /** Frames per second over the last full interval (zero when a whole interval had none). */
  private frameRate(now: number): number {
    const elapsed = now - this.framesSince;
    if (elapsed >= LOAD_REPORT_INTERVAL_MS) {
      // An interval several times over with no frame in between: the rate now is what came since.
      this.framesPerSecond = (this.frames * 1000) / elapsed;
      this.frames = 0;
      this.framesSince = now;
    }
    return Math.round(this.framesPerSecond);
  }

  /** Over its rate: the frame is refused by name (an upload by its message id) or the socket closed. */
  private refuse(
    ws: WebSocket,
    connection: Connection,
    message: string | ArrayBuffer,
    admission: "refuse" | "disconnect",
  ): void {
    if (admission === "disconnect") {
      console.warn(`${connection.shard}: closing ${connection.user}'s socket for flooding`);
      try {
        ws.close(CloseCode.flooding, "flooding: too many frames after being rate limited");
      } catch {
        // Already closing.
      }
      return;
    }
    // Named by its message id, so the client can retry exactly that message.
    sendError(ws, "rate_limited", "too many frames: slow down and retry", uploadIdOf(message));
  }

  /** One frame's failure is answered (by id when it is an upload) and logged; everything else carries on. */
  private fail(ws: WebSocket, stage: string, error: unknown, id: string | undefined): void {
    const connection = connectionOf(ws);
    console.error(`${connection?.shard ?? "shard"}: ${stage} for ${connection?.user ?? "?"} failed`, error);
    sendError(ws, "internal", "the server could not handle that frame; nothing else was affected", id);
  }
}

/** The message id of an upload frame when it can be read (protocol/envelope.ts), for naming it in an answer. */
function uploadIdOf(message: string | ArrayBuffer | Uint8Array): string | undefined {
  if (typeof message === "string") return undefined;
  return uploadHead(message instanceof Uint8Array ? message : new Uint8Array(message))?.id;
}

const utf8Encoder = new TextEncoder();

function utf8Length(text: string): number {
  return utf8Encoder.encode(text).length;
}
