// The engine floor: the bare relay's job (bench/baseline-relay.ts) done inside the Workers runtime, with
// Telepound's own shape at its least. A Worker routes each WebSocket to one of four shard objects, which
// hold their sockets with the hibernation API; an upload's delivery frame goes to the shard that holds the
// recipient through ordered, batched RPC (durable-objects/ordered-batcher.ts, as Telepound's shards do),
// and the sender gets "sent" once that shard has it.
//
// Files take Telepound's four blob routes and keep each part as an R2 object of its own, streamed back in
// order: the bytes cross local R2 both ways, with no multipart bookkeeping, recipients or ledger.
//
// What it leaves out is what Telepound adds on top of the engine: no session check, no balancer (a user's
// shard is a hash of the name), no home and no storage (an offline recipient's message is dropped), no
// frame validation past the routing header, no acks. Whatever this costs, under `wrangler dev` on this
// machine, no design of this shape on this engine can beat: the bench reports it next to Telepound and the
// Node relay.
//
// For the login storm it also comes with the least a login needs of a user's state: the token's second
// field "floor-home" or "floor-pool" has the shard, before it accepts the socket, ask the user's state
// object whether the session exists and note where the user is (one read, one written row). "floor-home"
// keeps each user in a SQLite object of their own, as Telepound's homes do; "floor-pool" keeps everyone in
// POOLED_HOMES shared ones. The difference is what one object per user costs a login here.
//
// The durable floor (token's second field "floor-durable") is the same relay job with the one thing a
// store-before-deliver design cannot skip: each message is committed in its recipient's own SQLite object
// (FloorInbox) before it is pushed, and deleted there when the recipient acknowledges it. See FloorInbox for
// how the commits are batched and why that is as far as this engine lets them be shared.
//
// The durable group floor (the sender's token "floor-room") is the fan-out's counterpart: a group message
// goes from the sender's shard to its group's room object (FloorRoom), which commits it once and then pushes
// it to the shards of its recipients, as Telepound's rooms do; the members' acknowledgements go back to the
// room, which deletes the message once all are in. The members themselves connect as plain "floor" sockets.

import { DurableObject } from "cloudflare:workers";
import { FormatError } from "../../protocol/bytes.js";
import { decodeUpload, encodeDelivery, signedPartWithSignature } from "../../protocol/envelope.js";
import { OrderedBatcher, OrderedBatchers } from "../../durable-objects/ordered-batcher.js";
import { BLOB_PART_BYTES } from "../../protocol/limits.js";

interface FloorEnv {
  FLOOR_SHARDS: DurableObjectNamespace<FloorShard>;
  FLOOR_HOMES: DurableObjectNamespace<FloorHome>;
  FLOOR_INBOXES: DurableObjectNamespace<FloorInbox>;
  FLOOR_ROOMS: DurableObjectNamespace<FloorRoom>;
  FLOOR_BLOBS: R2Bucket;
}

const SHARDS = 4;
const SHARD_HEADER = "X-Floor-Shard";
const STATE_HEADER = "X-Floor-State";
const POOLED_HOMES = 16;
const ACK_LINGER_MS = 10;
const MAX_REMOVALS_PER_CALL = 4096;

/**
 * Where a login's state lives: nowhere, in an object per user, or in one of POOLED_HOMES shared objects;
 * "floor-durable" keeps no login state but stores every message in its recipient's inbox object;
 * "floor-room" stores each group message the socket sends once, in its group's room object.
 */
type StateMode = "floor" | "floor-home" | "floor-pool" | "floor-durable" | "floor-room";
const STATE_MODES: readonly string[] = ["floor-home", "floor-pool", "floor-durable", "floor-room"];

/** FNV-1a of the name: the bench's pairs (lat-a/lat-b, tp-a/tp-b) land on different shards. */
function fnv1a(user: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < user.length; i++) hash = Math.imul(hash ^ user.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

function shardOf(user: string): string {
  return `floor-${fnv1a(user) % SHARDS}`;
}

function homeStub(
  env: FloorEnv,
  mode: "floor-home" | "floor-pool",
  user: string,
): DurableObjectStub<FloorHome> {
  const name = mode === "floor-home" ? `home-${user}` : `pool-${fnv1a(user) % POOLED_HOMES}`;
  return env.FLOOR_HOMES.get(env.FLOOR_HOMES.idFromName(name));
}

function inboxStub(env: FloorEnv, user: string): DurableObjectStub<FloorInbox> {
  return env.FLOOR_INBOXES.get(env.FLOOR_INBOXES.idFromName(`inbox-${user}`));
}

function roomStub(env: FloorEnv, group: string): DurableObjectStub<FloorRoom> {
  return env.FLOOR_ROOMS.get(env.FLOOR_ROOMS.idFromName(`room-${group}`));
}

function shardStub(env: FloorEnv, shard: string): DurableObjectStub<FloorShard> {
  return env.FLOOR_SHARDS.get(env.FLOOR_SHARDS.idFromName(shard));
}

/** The user is the bearer token's first field, as the Node relay takes it; nothing is checked. */
function bearerUser(header: string | null): string | null {
  return /^Bearer ([^.\s]+)/.exec(header ?? "")?.[1] ?? null;
}

/** The token's second field says where the login's state lives (see the top of this file). */
function bearerMode(header: string | null): StateMode {
  const mode = /^Bearer [^.\s]+\.([^.\s]+)/.exec(header ?? "")?.[1];
  return mode && STATE_MODES.includes(mode) ? (mode as StateMode) : "floor";
}

export default {
  async fetch(request: Request, env: FloorEnv): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/v1/health") return Response.json({ ok: true });
    if (url.pathname.startsWith("/v1/blobs")) return blobs(request, url, env.FLOOR_BLOBS);
    if (url.pathname === "/floor/operation") return operation(url, env);
    if (url.pathname === "/floor/seed" && request.method === "POST") return seed(request, env);
    if (url.pathname === "/floor/inbox")
      return Response.json({ pending: await inboxStub(env, url.searchParams.get("user") ?? "").pending() });
    if (url.pathname === "/floor/room")
      return Response.json({ pending: await roomStub(env, url.searchParams.get("group") ?? "").pending() });
    const user = bearerUser(request.headers.get("Authorization"));
    if (
      url.pathname !== "/v1/connect" ||
      !user ||
      request.headers.get("Upgrade")?.toLowerCase() !== "websocket"
    )
      return new Response("expected GET /v1/connect with a bearer token and a WebSocket upgrade", {
        status: 400,
      });
    const shard = shardOf(user);
    const forwarded = new Request(request);
    forwarded.headers.set(SHARD_HEADER, shard);
    forwarded.headers.set(STATE_HEADER, bearerMode(request.headers.get("Authorization")));
    return shardStub(env, shard).fetch(forwarded);
  },
} satisfies ExportedHandler<FloorEnv>;

/**
 * Times nothing itself (time stands still inside the runtime): the bench times the whole request and reads
 * the runtime's CPU from /proc. `calls` calls of one kind, split over `objects` objects working at once.
 */
async function operation(url: URL, env: FloorEnv): Promise<Response> {
  const kind = url.searchParams.get("kind");
  if (kind !== "call" && kind !== "read" && kind !== "write")
    return new Response("kind must be call, read or write", { status: 400 });
  const calls = Number(url.searchParams.get("calls") ?? "1");
  const objects = Number(url.searchParams.get("objects") ?? "1");
  await Promise.all(
    Array.from({ length: objects }, async (_, i) => {
      const stub = shardStub(env, `operations-${url.searchParams.get("run") ?? ""}-${i}`);
      for (let n = 0; n < calls / objects; n++) await stub.operation(kind);
    }),
  );
  return new Response(null, { status: 204 });
}

/** Gives each user a live session in both kinds of state object, as signing up gives Telepound's users. */
async function seed(request: Request, env: FloorEnv): Promise<Response> {
  const { users } = await request.json<{ users: string[] }>();
  await Promise.all(
    users.flatMap((user) => [
      homeStub(env, "floor-home", user).seed(user),
      homeStub(env, "floor-pool", user).seed(user),
    ]),
  );
  return new Response(null, { status: 204 });
}

/** A blob's id carries its size, so that a download knows how many parts to stream without a ledger. */
async function blobs(request: Request, url: URL, bucket: R2Bucket): Promise<Response> {
  if (request.method === "POST" && url.pathname === "/v1/blobs") {
    const { size } = await request.json<{ size: number }>();
    const parts = Math.max(1, Math.ceil(size / BLOB_PART_BYTES));
    const id = `${crypto.randomUUID()}-${size}`;
    return Response.json(
      { id, partBytes: BLOB_PART_BYTES, parts, expiresAt: Date.now() + 3_600_000 },
      { status: 201 },
    );
  }
  const match = /^\/v1\/blobs\/([\w-]+?-(\d+))(?:\/parts\/(\d+)|\/(complete))?$/.exec(url.pathname);
  if (!match) return new Response("no such blob route", { status: 404 });
  const [, id, size, part, complete] = match as unknown as [string, string, string, string?, string?];
  const parts = Math.max(1, Math.ceil(Number(size) / BLOB_PART_BYTES));
  const key = (n: number) => `${id}/${n}`;
  if (request.method === "PUT" && part) {
    await bucket.put(key(Number(part)), request.body);
    return new Response(null, { status: 204 });
  }
  if (request.method === "POST" && complete) return new Response(null, { status: 204 });
  if (request.method === "DELETE") {
    await bucket.delete(Array.from({ length: parts }, (_, i) => key(i + 1)));
    return new Response(null, { status: 204 });
  }
  if (request.method === "GET") {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const pipeParts = async () => {
      for (let n = 1; n <= parts; n++) {
        const object = await bucket.get(key(n));
        if (!object) throw new Error(`part ${n} of ${id} is missing`);
        await object.body.pipeTo(writable, { preventClose: n < parts });
      }
    };
    pipeParts().catch((error: unknown) => writable.abort(error));
    return new Response(readable, { headers: { "Content-Length": size } });
  }
  return new Response("method not allowed", { status: 405 });
}

interface Attachment {
  user: string;
  shard: string;
  durable: boolean;
  /** Group messages this socket sends are stored in their room first (the durable group floor). */
  room?: boolean;
}

interface Delivery {
  recipient: string;
  frame: Uint8Array;
}

/** A message as its recipient's inbox keeps it until acknowledged. */
interface Stored {
  id: string;
  frame: Uint8Array;
}

export class FloorShard extends DurableObject<FloorEnv> {
  private writesTableReady = false;
  /** Groups whose messages came here from their room: their acknowledgements go back to it. */
  private readonly roomGroups = new Set<string>();
  /** To each group's room: the uploads of its messages sent here, in the order they came. */
  private readonly rooms = new OrderedBatchers<Uint8Array, boolean>((group) => {
    const stub = roomStub(this.env, group);
    return new OrderedBatcher((frames) => stub.post(frames));
  });
  /** Acknowledged ids, per room, gathered as the removals are (nobody waits on them). */
  private readonly roomAcks = new OrderedBatchers<string, null>((group) => {
    const stub = roomStub(this.env, group);
    return new OrderedBatcher(
      async (ids) => {
        await stub.acknowledge(ids);
        return ids.map(() => null);
      },
      MAX_REMOVALS_PER_CALL,
      ACK_LINGER_MS,
    );
  });
  /** To each other shard: deliveries in the order they were routed, many per call under load. */
  private readonly pipes = new OrderedBatchers<Delivery, number>((shard) => {
    const stub = shardStub(this.env, shard);
    return new OrderedBatcher((batch) => stub.push(batch));
  });
  /**
   * To each recipient's inbox: the messages this shard routed to them meanwhile, committed as one batch
   * (one call and one commit for all of them) while the previous batch is in flight.
   */
  private readonly inboxes = new OrderedBatchers<Stored, number>((user) => {
    const stub = inboxStub(this.env, user);
    return new OrderedBatcher((batch) => stub.deliver(user, batch));
  });
  /**
   * Acknowledged ids, per connected user's inbox, removed many per call in the same way. Nobody waits on a
   * removal, so each batch lingers ACK_LINGER_MS for company first, as Telepound's shards gather acks: an
   * ack otherwise costs the inbox a commit of its own between the stores.
   */
  private readonly removals = new OrderedBatchers<string, null>((user) => {
    const stub = inboxStub(this.env, user);
    return new OrderedBatcher(
      async (ids) => {
        await stub.remove(ids);
        return ids.map(() => null);
      },
      MAX_REMOVALS_PER_CALL,
      ACK_LINGER_MS,
    );
  });

  override async fetch(request: Request): Promise<Response> {
    const user = bearerUser(request.headers.get("Authorization"))!;
    const shard = request.headers.get(SHARD_HEADER)!;
    const mode = request.headers.get(STATE_HEADER) as StateMode;
    if (
      (mode === "floor-home" || mode === "floor-pool") &&
      !(await homeStub(this.env, mode, user).attach(user, shard))
    )
      return new Response("no session", { status: 401 });
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [user]);
    server.serializeAttachment({
      user,
      shard,
      durable: mode === "floor-durable",
      room: mode === "floor-room",
    } satisfies Attachment);
    server.send(JSON.stringify({ type: "welcome", user, shard, serverTime: Date.now() }));
    server.send(JSON.stringify({ type: "synced" }));
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const { user, shard, durable, room } = ws.deserializeAttachment() as Attachment;
    if (typeof message === "string") {
      const frame = JSON.parse(message) as { type?: string; ids?: string[]; group?: string };
      if (frame.type === "ping") ws.send(JSON.stringify({ type: "pong" }));
      // Nobody waits on a removal: the inbox only has to have it before the next backlog it would send.
      else if (frame.type === "ack" && frame.ids && frame.group && this.roomGroups.has(frame.group))
        void this.roomAcks.submitAll(frame.group, frame.ids).catch(() => undefined);
      else if (frame.type === "ack" && durable && frame.ids)
        void this.removals.submitAll(user, frame.ids).catch(() => undefined);
      return;
    }
    let envelope: ReturnType<typeof decodeUpload>;
    try {
      envelope = decodeUpload(new Uint8Array(message));
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      ws.send(JSON.stringify({ type: "error", code: "bad_frame", message: error.message }));
      return;
    }
    const id = envelope.messageIdHex;
    if (room && envelope.header.kind === "group") {
      // A copy: a view would carry whatever else the socket's buffer holds across the call.
      const delivered = await this.rooms.submit(envelope.header.target, new Uint8Array(message).slice());
      ws.send(JSON.stringify({ type: "sent", id, status: delivered ? "delivered" : "stored" }));
      return;
    }
    const signed = signedPartWithSignature(envelope);
    const reached = await Promise.all(
      envelope.slots.map(async (slot, i) => {
        const delivery = { recipient: slot.recipient, frame: encodeDelivery(signed, envelope.slotBytes[i]!) };
        // Stored before it is pushed, by the inbox itself (shard → inbox → recipient's shard, the route
        // Telepound's homes take): a recipient who drops now gets it from the inbox on the next login.
        if (durable) return this.inboxes.submit(slot.recipient, { id, frame: delivery.frame });
        const recipientShard = shardOf(slot.recipient);
        return recipientShard === shard
          ? this.push([delivery])[0]!
          : this.pipes.submit(recipientShard, delivery);
      }),
    );
    const delivered = envelope.slots.some((slot, i) => slot.recipient !== user && reached[i]! > 0);
    ws.send(JSON.stringify({ type: "sent", id, status: delivered ? "delivered" : "stored" }));
  }

  /** One call for the bench's engine operations: nothing, a read, or one committed one-row write. */
  operation(kind: "call" | "read" | "write"): void {
    if (kind === "call") return;
    const sql = this.ctx.storage.sql;
    if (kind === "read") sql.exec("SELECT 1").toArray();
    else {
      if (!this.writesTableReady) sql.exec("CREATE TABLE IF NOT EXISTS writes (at INTEGER NOT NULL)");
      this.writesTableReady = true;
      sql.exec("INSERT INTO writes (at) VALUES (?)", Date.now());
    }
  }

  /** A room's deliveries: the same as push, and their acknowledgements go back to `group`'s room. */
  pushRoom(group: string, deliveries: Delivery[]): number[] {
    this.roomGroups.add(group);
    return this.push(deliveries);
  }

  /** Sends each delivery to its recipient's sockets here; returns how many sockets each reached. */
  push(deliveries: Delivery[]): number[] {
    return deliveries.map(({ recipient, frame }) => {
      const sockets = this.ctx.getWebSockets(recipient);
      for (const socket of sockets) socket.send(frame);
      return sockets.length;
    });
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // Already closed.
    }
  }
}

/** A login's state at its least: a session to check and where the user is, for one user or for many. */
export class FloorHome extends DurableObject<FloorEnv> {
  constructor(ctx: DurableObjectState, env: FloorEnv) {
    super(ctx, env);
    // Changes nothing once the tables exist, so it costs no commit on a wake.
    ctx.storage.sql.exec(`
      CREATE TABLE IF NOT EXISTS sessions (user TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS presence (user TEXT PRIMARY KEY, shard TEXT NOT NULL);
    `);
  }

  seed(user: string): void {
    this.ctx.storage.sql.exec(
      "INSERT OR REPLACE INTO sessions (user, expires_at) VALUES (?, ?)",
      user,
      Date.now() + 86_400_000,
    );
  }

  /** Whether `user` has a live session; if so, notes the shard the socket is opening on. */
  attach(user: string, shard: string): boolean {
    const sql = this.ctx.storage.sql;
    const [session] = sql
      .exec<{ expires_at: number }>("SELECT expires_at FROM sessions WHERE user = ?", user)
      .toArray();
    if (!session || session.expires_at <= Date.now()) return false;
    sql.exec("INSERT OR REPLACE INTO presence (user, shard) VALUES (?, ?)", user, shard);
    return true;
  }
}

/**
 * The durable floor's per-recipient store: one SQLite object per user, as Telepound's homes, holding each
 * message until its recipient acknowledges it.
 *
 * Batching is as wide as the engine allows. A Durable Object's SQLite writes made in one call (one turn of
 * its event loop, with no await between them) form one implicit transaction, and the output gate holds the
 * call's answer until that transaction is durable: one commit per call, whatever the rows. A commit cannot
 * be shared across objects, since each object is its own database, and it cannot be shared across calls
 * without holding a message back for company. So the least work that still stores before delivering is one
 * commit per recipient object per batch of what was routed to it while its previous commit was in flight:
 * FloorShard's OrderedBatchers send exactly that.
 */
export class FloorInbox extends DurableObject<FloorEnv> {
  constructor(ctx: DurableObjectState, env: FloorEnv) {
    super(ctx, env);
    // Changes nothing once the table exists, so it costs no commit on a wake.
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS inbox (id TEXT PRIMARY KEY, frame BLOB NOT NULL) WITHOUT ROWID",
    );
  }

  /** To the recipient's shard: what this inbox stored, many per call under load, in the order stored. */
  private readonly pushes = new OrderedBatchers<Delivery, number>((shard) => {
    const stub = shardStub(this.env, shard);
    return new OrderedBatcher((batch) => stub.push(batch));
  });

  /**
   * Stores a batch (one commit), then pushes it to the recipient's shard in one call; how many sockets
   * each message reached. The push leaves once the commit is durable: the output gate holds it till then.
   */
  async deliver(recipient: string, messages: Stored[]): Promise<number[]> {
    const sql = this.ctx.storage.sql;
    for (const { id, frame } of messages)
      sql.exec("INSERT OR REPLACE INTO inbox (id, frame) VALUES (?, ?)", id, frame);
    return this.pushes.submitAll(
      shardOf(recipient),
      messages.map(({ frame }) => ({ recipient, frame })),
    );
  }

  remove(ids: string[]): void {
    const sql = this.ctx.storage.sql;
    for (const id of ids) sql.exec("DELETE FROM inbox WHERE id = ?", id);
  }

  /** Messages still waiting for an ack: lets the bench check that acknowledged ones are gone. */
  pending(): number {
    return this.ctx.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM inbox").one().n;
  }
}

/**
 * The durable group floor's room: one per group, holding each of its messages from before it is pushed
 * until every socket it reached has acknowledged it.
 *
 * It stores the least a store-before-deliver fan-out can: one row per message, the upload as it came with
 * every member's slot in it, committed once (one call, one implicit transaction) before the pushes leave.
 * Who has acknowledged is only counted, in memory: a design that must keep each member's place across a
 * restart writes that too, so this is below what any such design costs, Telepound's rooms included.
 */
export class FloorRoom extends DurableObject<FloorEnv> {
  /** Per message, the acknowledgements still to come; negative while the pushes are still on their way. */
  private readonly outstanding = new Map<string, number>();
  /** To each recipient's shard: this room's deliveries, many per call under load, in the order stored. */
  private readonly pushes = new OrderedBatchers<{ group: string; delivery: Delivery }, number>((shard) => {
    const stub = shardStub(this.env, shard);
    return new OrderedBatcher((batch) =>
      stub.pushRoom(
        batch[0]!.group,
        batch.map(({ delivery }) => delivery),
      ),
    );
  });

  constructor(ctx: DurableObjectState, env: FloorEnv) {
    super(ctx, env);
    // Changes nothing once the table exists, so it costs no commit on a wake.
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS posts (id TEXT PRIMARY KEY, frame BLOB NOT NULL) WITHOUT ROWID",
    );
  }

  /**
   * Stores a batch of one group's uploads (one commit), then pushes each member's delivery to their shard;
   * whether each reached a socket of someone other than its sender.
   */
  async post(frames: Uint8Array[]): Promise<boolean[]> {
    const sql = this.ctx.storage.sql;
    const envelopes = frames.map((frame) => decodeUpload(frame));
    envelopes.forEach((envelope, i) =>
      sql.exec("INSERT OR REPLACE INTO posts (id, frame) VALUES (?, ?)", envelope.messageIdHex, frames[i]!),
    );
    return Promise.all(
      envelopes.map(async (envelope) => {
        const { target: group, sender } = envelope.header;
        const signed = signedPartWithSignature(envelope);
        const reached = await Promise.all(
          envelope.slots.map((slot, i) =>
            this.pushes.submit(shardOf(slot.recipient), {
              group,
              delivery: { recipient: slot.recipient, frame: encodeDelivery(signed, envelope.slotBytes[i]!) },
            }),
          ),
        );
        const sockets = reached.reduce((sum, n) => sum + n, 0);
        this.expect(envelope.messageIdHex, sockets);
        return envelope.slots.some((slot, i) => slot.recipient !== sender && reached[i]! > 0);
      }),
    );
  }

  /** Acknowledgements of the sockets a message reached: the last one deletes it. */
  acknowledge(ids: string[]): void {
    for (const id of ids) this.expect(id, -1);
  }

  /** Messages still stored: lets the bench check that acknowledged ones are gone. */
  pending(): number {
    return this.ctx.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM posts").one().n;
  }

  /**
   * Counts `change` acknowledgements more to come for `id` (its pushes' sockets, or one that came in). An
   * acknowledgement can overtake the push's answer, so the count only ends the message at zero once both
   * sides are in: a pushed message's count is set (its entry exists) before or after its acks.
   */
  private expect(id: string, change: number): void {
    const count = (this.outstanding.get(id) ?? 0) + change;
    if (count !== 0) {
      this.outstanding.set(id, count);
      return;
    }
    this.outstanding.delete(id);
    this.ctx.storage.sql.exec("DELETE FROM posts WHERE id = ?", id);
  }
}
