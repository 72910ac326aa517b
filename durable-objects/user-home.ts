// UserHome: one Durable Object per user, the user's stable home whichever shard they are connected to.
// It owns the account, the sessions, the offline queue and the list of shards the user is on right now.
//
// Every method is an RPC entry point: thin, delegating to account.ts, queue.ts and presence.ts. SQLite
// calls are synchronous, so each method's checks and writes happen atomically (two signups for one
// name cannot both win).

import { DurableObject } from "cloudflare:workers";
import type { KdfParams } from "../protocol/http.js";
import { Accounts, type AccountRecord, type LoginResult, type NewSession, type SessionCheck } from "./home/account.js";
import { Presence } from "./home/presence.js";
import { type Backlog, MessageQueue } from "./home/queue.js";
import { HOME_SCHEMA } from "./home/schema.js";
import { shardStub } from "./names.js";

export type DeliverResult =
  | { ok: true; status: "delivered" | "stored" }
  | { ok: false; reason: "unknown_user" };

export class UserHome extends DurableObject<Env> {
  private readonly accounts: Accounts;
  private readonly queue: MessageQueue;
  private readonly presence: Presence;
  /** Cached stubs: calls on one stub arrive in order, which keeps each sender's messages in order. */
  private readonly shards = new Map<string, ReturnType<typeof shardStub>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(HOME_SCHEMA);
    this.accounts = new Accounts(ctx.storage.sql);
    this.queue = new MessageQueue(ctx.storage.sql);
    this.presence = new Presence(ctx.storage.sql);
  }

  signup(record: AccountRecord, session: NewSession): { ok: boolean } {
    return { ok: this.accounts.create(record, session, Date.now()) };
  }

  kdf(): KdfParams | null {
    return this.accounts.kdf();
  }

  login(authKeyHash: string, session: NewSession): LoginResult {
    const result = this.accounts.login(authKeyHash, session, Date.now());
    // A new machine sees everything still waiting, as the original's offline storage did.
    if (result.ok) this.queue.adoptAllFor(session.id);
    return result;
  }

  authenticate(sessionId: string, secretHash: string): SessionCheck {
    return this.accounts.checkSession(sessionId, secretHash, Date.now());
  }

  logout(sessionId: string): void {
    this.accounts.removeSession(sessionId);
    this.queue.forgetSessions([sessionId]);
    this.presence.forgetSession(sessionId);
    this.collectIfSomeoneListens();
  }

  profile(): ReturnType<Accounts["publicKeys"]> {
    return this.accounts.publicKeys();
  }

  /** A socket of `sessionId` opened on `shard`: remember where to push, return the first backlog batch. */
  attachSocket(sessionId: string, shard: string): Backlog {
    const expired = this.accounts.removeExpiredSessions(Date.now());
    if (expired.length > 0) {
      this.queue.forgetSessions(expired);
      this.collectIfSomeoneListens();
    }
    this.presence.attach(shard, sessionId);
    return this.queue.backlog(sessionId, 0);
  }

  detachSocket(sessionId: string, shard: string): void {
    this.presence.detach(shard, sessionId);
  }

  /**
   * Acknowledges messages for one session. While that session's socket is still draining its backlog
   * (`cursor` given), the next batch is returned once the previous one is fully acknowledged: one batch
   * in flight keeps a 10,000-message backlog from being read into memory at once.
   */
  acknowledge(sessionId: string, messageIds: string[], cursor: number | null): Backlog | null {
    this.queue.acknowledge(sessionId, messageIds);
    if (cursor === null || this.queue.hasPendingUpTo(sessionId, cursor)) return null;
    return this.queue.backlog(sessionId, cursor);
  }

  /** Stores a message for every session of this user, then pushes it to the shards they are on. */
  async deliver(messageId: string, frame: Uint8Array): Promise<DeliverResult> {
    const username = this.accounts.username();
    if (!username) return { ok: false, reason: "unknown_user" };
    const now = Date.now();
    // A retried upload (same id) stores nothing new; it is pushed again, and the client drops duplicates.
    this.queue.store(messageId, frame, this.accounts.liveSessionIds(now), now);
    const shards = this.presence.shards();
    if (shards.length === 0) return { ok: true, status: "stored" };
    const reached = await Promise.all(shards.map((shard) => this.pushTo(shard, username, frame)));
    return { ok: true, status: reached.some((count) => count > 0) ? "delivered" : "stored" };
  }

  private async pushTo(shard: string, username: string, frame: Uint8Array): Promise<number> {
    let stub = this.shards.get(shard);
    if (!stub) {
      stub = shardStub(this.env, shard);
      this.shards.set(shard, stub);
    }
    try {
      const count = await stub.push(username, [frame]);
      if (count === 0) this.presence.forgetShard(shard);
      return count;
    } catch (error) {
      // The message is stored; the user gets it on the next connect. Drop the stub so a restarted
      // shard is reached through a fresh one.
      this.shards.delete(shard);
      console.error(`home ${username}: push to ${shard} failed`, error);
      return 0;
    }
  }

  private collectIfSomeoneListens(): void {
    if (this.accounts.liveSessionIds(Date.now()).length > 0) this.queue.collectOrphans();
  }
}
