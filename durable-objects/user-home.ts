// UserHome: one Durable Object per user, the user's stable home whichever shard they are connected to.
// It owns the account, the sessions, the offline queue, the list of shards the user is on right now, and
// what group consent needs: who has written to the user, and the invitations waiting for them.
//
// Every method is an RPC entry point: thin, delegating to the modules in home/. SQLite calls are
// synchronous, so each method's checks and writes happen atomically (two signups for one name cannot
// both win).

import { DurableObject } from "cloudflare:workers";
import {
  Accounts,
  type AccountRecord,
  type LoginAttempt,
  type LoginResult,
  type NewSession,
  type RefusalReason,
  type SessionCheck,
  type SessionRecord,
} from "./home/account.js";
import { type EndReason, type EndedSession, EndedSessions } from "./home/ended-sessions.js";
import { BlobOwners } from "./blob-owners.js";
import type {
  AttachResult,
  DeliverResult,
  DeliveryOrigin,
  GroupTracking,
  HomeLoginResult,
  Incoming,
  ListedSession,
  Outgoing,
  SenderCheck,
  SessionAck,
} from "./contracts.js";
import { type BlobAccess, type BlobHolder, BlobLedger, type BlobRecord, blobKey } from "./home/blobs.js";
import type { GroupListResponse } from "../protocol/http.js";
import type { MemberSession } from "./group/queue.js";
import { maxGroups, maxPendingInvitations } from "./home/caps.js";
import { Correspondents } from "./home/correspondents.js";
import { GroupList } from "./home/group-list.js";
import { type InvitationOffer, PendingInvitations } from "./home/invitations.js";
import { Presence } from "./home/presence.js";
import { type Backlog, MessageQueue, type QueuedItem } from "./home/queue.js";
import { HOME_MIGRATIONS } from "./home/schema.js";
import { migrate } from "./migrations.js";
import { groupStub, homeStub, shardStub } from "./names.js";
import { OrderedBatcher, OrderedBatchers } from "./ordered-batcher.js";
import { blobQuota, formatBytes, queueQuotas, quotaMessage } from "./quotas.js";

/** What a sent copy "stores" when the user has no session besides the one that sealed it. */
const NOBODY_ELSE = { ok: true, seq: 0 } as const;

/** Default for [vars] MAX_SESSIONS_PER_ACCOUNT when it is missing or not a whole number ≥ 1. */
const DEFAULT_MAX_SESSIONS = 10;

export class UserHome extends DurableObject<Env> {
  private readonly accounts: Accounts;
  private readonly endedSessions: EndedSessions;
  private readonly queue: MessageQueue;
  private readonly presence: Presence;
  private readonly groups: GroupList;
  private readonly correspondents: Correspondents;
  private readonly invitations: PendingInvitations;
  private readonly blobs: BlobLedger;
  private readonly blobOwners: BlobOwners;
  /** One ordered pipe per shard, so live pushes reach each socket in the order they were stored. */
  private readonly pushPipes = new OrderedBatchers<Outgoing, number>((shard) => {
    const stub = shardStub(this.env, shard);
    return new OrderedBatcher(async (batch) => {
      // Only deliver() pushes, and it has checked that the account (so its name) exists.
      const count = await stub.push(this.accounts.username()!, batch);
      return batch.map(() => count);
    });
  });

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    migrate(ctx.storage, HOME_MIGRATIONS);
    this.accounts = new Accounts(ctx.storage.sql);
    this.endedSessions = new EndedSessions(ctx.storage.sql);
    this.queue = new MessageQueue(ctx.storage.sql);
    this.presence = new Presence(ctx.storage.sql);
    this.groups = new GroupList(ctx.storage.sql);
    this.correspondents = new Correspondents(ctx.storage.sql);
    this.invitations = new PendingInvitations(ctx.storage.sql);
    this.blobs = new BlobLedger(ctx.storage.sql);
    this.blobOwners = new BlobOwners(ctx.storage.sql);
  }

  signup(record: AccountRecord, session: NewSession, address?: string): { ok: boolean } {
    return { ok: this.accounts.create(record, session, Date.now(), address) };
  }

  /**
   * Opens a session for the right key. Past the session cap (MAX_SESSIONS_PER_ACCOUNT) the longest-idle
   * other sessions end, as a logout would end them; the answer names them so the user is told, with the
   * shards that hold their sockets, where the Worker closes them.
   */
  async login(authKeyHash: string, session: NewSession, attempt: LoginAttempt): Promise<HomeLoginResult> {
    const now = Date.now();
    const result = this.accounts.login(authKeyHash, session, attempt, now);
    if (!result.ok) return result;
    // A new machine sees everything still waiting, as the original's offline storage did: here, and in
    // the rooms that queue this user's group messages (before the token exists, so nothing slips past).
    // Before any session is ended below, so what only an ended session still waited for is adopted too.
    this.queue.adoptAllFor(session.id);
    // Chosen and ended before the first await, so two logins at once cannot both count the same room.
    const ended = this.accounts.sessionsOverCap(
      this.maxSessions(),
      session.id,
      this.presence.connectedSessions(),
      now,
    );
    const endedSessions = ended.map((old) => {
      const record = this.accounts.session(old.id, now);
      return { ...old, shards: record ? this.endSession(record, "session_cap", now) : [] };
    });
    await this.tellRooms((room, username) =>
      room.addSession(username, { id: session.id, expiresAt: session.expiresAt }),
    );
    for (const old of ended) await this.tellRooms((room, username) => room.removeSession(username, old.id));
    for (const old of ended) await this.releaseBlobs(old.id);
    await this.announceSessions();
    return { ...result, endedSessions };
  }

  authenticate(sessionId: string, secretHash: string): SessionCheck {
    return this.explainRefusal(
      this.accounts.checkSession(sessionId, secretHash, Date.now()),
      sessionId,
      secretHash,
    );
  }

  /** Ends the session; returns the shards that hold its sockets, where the Worker closes them. */
  async logout(sessionId: string): Promise<string[]> {
    const shards = this.forgetSession(sessionId);
    await this.tellRooms((room, username) => room.removeSession(username, sessionId));
    await this.releaseBlobs(sessionId);
    await this.announceSessions();
    return shards;
  }

  /**
   * A send-only socket's check, on `shard`: with the live session count for its welcome. It is counted
   * apart from the receiving sockets (no pushes go to it), so that ending the session reaches it.
   */
  authenticateSender(sessionId: string, secretHash: string, shard: string): SenderCheck {
    const check = this.authenticate(sessionId, secretHash);
    if (!check.ok) return check;
    this.presence.attach(shard, sessionId, "sending");
    return { ...check, sessions: this.accounts.liveSessionIds(Date.now()).length };
  }

  /** A send-only socket closed. */
  detachSender(sessionId: string, shard: string): void {
    this.presence.detach(shard, sessionId, "sending");
  }

  /** This account's live sessions, oldest first. */
  listSessions(): ListedSession[] {
    const connected = this.presence.connectedSessions();
    return this.accounts
      .list(Date.now())
      .map((session) => ({ ...session, connected: connected.has(session.id) }));
  }

  /**
   * Ends one of this account's sessions from another of its devices: as a logout of it, and its device is
   * told "revoked" on its next request. Returns the shards that hold its sockets, or null when the
   * account has no such live session.
   */
  async revokeSession(sessionId: string): Promise<string[] | null> {
    const now = Date.now();
    const session = this.accounts.session(sessionId, now);
    if (!session) return null;
    const shards = this.endSession(session, "revoked", now);
    await this.tellRooms((room, username) => room.removeSession(username, sessionId));
    await this.releaseBlobs(sessionId);
    await this.announceSessions();
    return shards;
  }

  profile(): ReturnType<Accounts["publicKeys"]> {
    return this.accounts.publicKeys();
  }

  /**
   * Called by a group room whenever this user joins or leaves it. A room the user joins gets their live
   * sessions (it queues their group messages per session) and the shards of their receiving sockets:
   * those opened their backlogs before the group was in this list, so the room would not push to them.
   * One step with the list's change, so a socket attaching meanwhile is in one answer or the other.
   */
  trackGroup(group: string, member: boolean): GroupTracking {
    const now = Date.now();
    this.groups.set(group, member, now);
    if (!member) return { sessions: [], shards: [] };
    return { sessions: this.accounts.liveSessionsWithExpiry(now), shards: this.presence.shards() };
  }

  /** The shards that hold this user's receiving sockets, for a group room that has not learned them yet. */
  receivingShards(): string[] {
    return this.presence.shards();
  }

  /** The live sessions, for a group room that has not learned them yet. */
  sessions(): MemberSession[] {
    return this.accounts.liveSessionsWithExpiry(Date.now());
  }

  groupNames(): string[] {
    return this.groups.names();
  }

  /** What `GET /v1/groups` answers: the groups the user is in, and the invitations waiting for them. */
  groupList(): GroupListResponse {
    return { groups: this.groups.names(), invitations: this.invitations.list() };
  }

  /** How many groups the user is in, and the most they may be in (MAX_GROUPS_PER_USER). */
  groupCapacity(): { groups: number; limit: number } {
    return { groups: this.groups.count(), limit: maxGroups(this.env) };
  }

  // ---- group consent (home/correspondents.ts, home/invitations.ts) -----------------------------------

  /** Which of `usernames` have written to this user, so may be added to this user's groups at once. */
  correspondentsAmong(usernames: string[]): string[] {
    return this.correspondents.among(usernames);
  }

  /** `username` joined a group on an invitation this user signed: as good as a message from them. */
  recordCorrespondent(username: string): void {
    if (username !== this.accounts.username()) this.correspondents.record(username, Date.now());
  }

  /**
   * A room reserves a place for its invitation before applying it; refused once
   * MAX_PENDING_INVITATIONS_PER_USER wait already.
   */
  offerInvitation(group: string, by: string, at: number): InvitationOffer {
    return this.invitations.offer(group, by, at, maxPendingInvitations(this.env));
  }

  /** The invitation ended (joined, declined, withdrawn, the group closed) or its invite was refused. */
  dropInvitation(group: string): void {
    this.invitations.drop(group);
  }

  /**
   * A receiving socket of `sessionId` is opening on `shard`: checks the session (one call, not two, on
   * the connect path: each wakes this object), remembers where to push, and returns the first backlog
   * batch.
   */
  attachSocket(sessionId: string, secretHash: string, shard: string): AttachResult {
    const now = Date.now();
    const check = this.explainRefusal(
      this.accounts.checkSession(sessionId, secretHash, now),
      sessionId,
      secretHash,
    );
    if (!check.ok) return check;
    // Every read before the first write: read after it, one of these statements cost about a millisecond
    // of the runtime's CPU per connect under a login storm (bench/RESULTS.md), a third of a login's.
    const sessions = this.accounts.liveSessionIds(now).length;
    const backlog = this.queue.backlog(sessionId, 0);
    const groups = this.groups.names();
    const expired = this.accounts.removeExpiredSessions(now);
    if (expired.length > 0) {
      this.queue.forgetSessions(expired);
      this.collectIfSomeoneListens();
    }
    this.presence.attach(shard, sessionId);
    return { ...check, sessions, backlog, groups };
  }

  detachSocket(sessionId: string, shard: string): void {
    this.presence.detach(shard, sessionId);
    // A socket open for hours made no request meanwhile: its closing is when the session was last seen.
    this.accounts.touch(sessionId, Date.now());
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

  /** Acknowledgements from sockets that are not draining a backlog, gathered by a shard into one call. */
  acknowledgeLive(acks: SessionAck[]): void {
    const bySession = new Map<string, string[]>();
    for (const { session, ids } of acks) bySession.set(session, [...(bySession.get(session) ?? []), ...ids]);
    for (const [session, ids] of bySession) this.queue.acknowledge(session, ids);
  }

  /**
   * Stores messages for every session of this user, then pushes them to the shards the user is on.
   * A batch comes from one shard's OrderedBatcher, so messages are stored in the order they were sent.
   * An upload that does not fit the quotas is refused alone; the others of the batch are stored.
   */
  async deliver(items: Incoming[], origin: DeliveryOrigin = "upload"): Promise<DeliverResult[]> {
    const username = this.accounts.username();
    if (!username) return items.map(() => ({ ok: false, reason: "unknown_user" }));
    const now = Date.now();
    const sessions = this.accounts.liveSessionIds(now);
    const quotas = origin === "upload" ? queueQuotas(this.env) : undefined;
    // A retried upload (same sender and id) stores nothing new; it is pushed again and the client drops
    // duplicates.
    const results = items.map(({ sender, id, kind, data, exceptSession }) => {
      if (exceptSession === undefined)
        return this.queue.store(sender, id, { kind, data }, sessions, now, quotas);
      const others = sessions.filter((session) => session !== exceptSession);
      return others.length > 0
        ? this.queue.store(sender, id, { kind, data }, others, now, quotas)
        : NOBODY_ELSE;
    });
    // A direct message stored is its sender writing to this user: from now on they may be added to this
    // user's groups (group-room.ts). Only uploads: a room's items are events and group messages.
    if (origin === "upload") {
      results.forEach((result, i) => {
        const { sender, kind } = items[i]!;
        if (result.ok && kind === "envelope" && sender !== username) this.correspondents.record(sender, now);
      });
    }
    const stored: Outgoing[] = [];
    results.forEach((result, i) => {
      if (!result.ok || result === NOBODY_ELSE) return;
      const { kind, data, exceptSession } = items[i]!;
      stored.push({ seq: result.seq, kind, data, ...(exceptSession !== undefined && { exceptSession }) });
    });
    const shards = stored.length > 0 ? this.presence.shards() : [];
    const reached = await Promise.all(shards.map((shard) => this.pushTo(shard, username, stored)));
    const status = reached.some((count) => count > 0) ? "delivered" : "stored";
    return results.map((result) =>
      result.ok
        ? { ok: true, status }
        : { ok: false, reason: "quota_exceeded", message: quotaMessage(username, result.breach) },
    );
  }

  private async pushTo(shard: string, username: string, messages: Outgoing[]): Promise<number> {
    try {
      const counts = await this.pushPipes.submitAll(shard, messages);
      const count = Math.max(0, ...counts);
      // Zero sockets there: the shard restarted or the socket closed unseen. Stop pushing to it.
      if (count === 0) this.presence.forgetShard(shard);
      return count;
    } catch (error) {
      // The messages are stored; the user gets them on the next connect.
      console.error(`home ${username}: push to ${shard} failed`, error);
      return 0;
    }
  }

  // ---- encrypted files this user uploaded (the ciphertext is in R2; see home/blobs.ts) ---------------

  /**
   * Records a new blob, or refuses it (nothing recorded) when it would take the user past their blob
   * quota: checked here, in the same synchronous step as the insert, so parallel uploads cannot race past.
   */
  async openBlob(
    id: string,
    uploadId: string,
    size: number,
    recipients: BlobHolder[],
    uploaderSession: string,
  ): Promise<{ ok: true; record: BlobRecord } | { ok: false; message: string }> {
    const quota = blobQuota(this.env);
    const held = this.blobs.outstanding();
    if (held.blobs + 1 > quota.blobs || held.bytes + size > quota.bytes) {
      return {
        ok: false,
        message: `your files not yet fetched take ${formatBytes(held.bytes)} in ${held.blobs} file${held.blobs === 1 ? "" : "s"}; at most ${formatBytes(quota.bytes)} in ${quota.blobs} files may wait at once: try again once recipients have fetched them or they expire (7 days), or withdraw one`,
      };
    }
    const now = Date.now();
    // The owner's other sessions get the message too (a sent copy, or the group message's own slot).
    const ownSessions = this.accounts
      .liveSessionsWithExpiry(now)
      .filter((session) => session.id !== uploaderSession);
    const holders = [...recipients];
    const owner = this.accounts.username();
    if (owner && ownSessions.length > 0) holders.push({ username: owner, sessions: ownSessions });
    const names = recipients.map((recipient) => recipient.username);
    const record = this.blobs.open(id, uploadId, size, names, holders, now);
    await this.scheduleExpiry();
    return { ok: true, record };
  }

  /**
   * `owner` is uploading a file for this user, to last until `until`: returns this user's live sessions,
   * who must each fetch it, and remembers the owner, to tell them of any of those sessions that ends.
   * Null when this user has no account.
   */
  blobRecipient(owner: string, until: number): BlobHolder["sessions"] | null {
    const username = this.accounts.username();
    if (!username) return null;
    if (owner !== username) this.blobOwners.record(owner, until);
    return this.accounts.liveSessionsWithExpiry(Date.now());
  }

  /** One of `username`'s sessions ended (told by their home or a room): it keeps no blob of ours waiting. */
  async blobSessionEnded(username: string, sessionId: string, othersLive: boolean): Promise<void> {
    for (const id of this.blobs.sessionEnded(username, sessionId, othersLive, Date.now()))
      await this.deleteBlob(id);
  }

  blob(id: string): BlobRecord | null {
    return this.blobs.get(id);
  }

  blobPartBytes(id: string, part: number): number | null {
    const record = this.blobs.get(id);
    return record && record.state === "uploading" ? this.blobs.expectedPartBytes(record, part) : null;
  }

  recordBlobPart(id: string, part: number, etag: string, bytes: number): void {
    this.blobs.recordPart(id, part, etag, bytes);
  }

  blobParts(id: string): ReturnType<BlobLedger["parts"]> | null {
    const record = this.blobs.get(id);
    return record ? this.blobs.parts(record) : null;
  }

  markBlobReady(id: string): void {
    this.blobs.markReady(id);
  }

  blobAccess(id: string, requester: string): BlobAccess {
    return this.blobs.access(id, this.accounts.username() ?? "", requester);
  }

  /**
   * A session of a recipient, or another session of the owner, has stored the file; the last session to
   * do so deletes it. False when the requester may not fetch it (or it is gone).
   */
  async blobFetched(id: string, requester: string, sessionId: string): Promise<boolean> {
    const owner = this.accounts.username();
    if (!this.blobs.get(id) || (requester !== owner && !this.blobs.isRecipient(id, requester))) return false;
    if (this.blobs.markFetched(id, requester, sessionId, Date.now())) await this.deleteBlob(id);
    return true;
  }

  /** The owner withdraws a blob, fetched or not. */
  async withdrawBlob(id: string): Promise<boolean> {
    if (!this.blobs.get(id)) return false;
    await this.deleteBlob(id);
    return true;
  }

  /** Deletes blobs past their lifetime, then waits for the next one to expire. */
  override async alarm(): Promise<void> {
    for (const record of this.blobs.expired(Date.now())) await this.deleteBlob(record.id);
    await this.scheduleExpiry();
  }

  private async deleteBlob(id: string): Promise<void> {
    const record = this.blobs.get(id);
    if (!record) return;
    if (record.state === "uploading") {
      await this.env.BLOBS.resumeMultipartUpload(blobKey(id), record.uploadId)
        .abort()
        .catch(() => undefined);
    } else {
      await this.env.BLOBS.delete(blobKey(id));
    }
    this.blobs.remove(id);
  }

  private async scheduleExpiry(): Promise<void> {
    const next = this.blobs.nextExpiry();
    if (next === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(next);
  }

  /**
   * Tells every room of the user's groups about a session change. Best effort: a room that misses a new
   * session learns it when that session's socket connects.
   */
  private async tellRooms(
    tell: (room: ReturnType<typeof groupStub>, username: string) => Promise<void>,
  ): Promise<void> {
    const username = this.accounts.username();
    if (!username) return;
    const results = await Promise.allSettled(
      this.groups.names().map((group) => tell(groupStub(this.env, group), username)),
    );
    for (const result of results)
      if (result.status === "rejected")
        console.error(`home ${username}: telling a room failed`, result.reason);
  }

  /**
   * Tells the user's receiving sockets how many live sessions the account now has (a `sessions` frame),
   * through the shards in presence: one call per shard the user is on. Best effort: a socket that misses
   * it learns the count at its next connect.
   */
  private async announceSessions(): Promise<void> {
    const username = this.accounts.username();
    const shards = this.presence.shards();
    if (!username || shards.length === 0) return;
    const count = this.accounts.liveSessionIds(Date.now()).length;
    const results = await Promise.allSettled(
      shards.map((shard) => shardStub(this.env, shard).tellSessions(username, count)),
    );
    for (const result of results)
      if (result.status === "rejected")
        console.error(`home ${username}: telling a shard the session count failed`, result.reason);
  }

  /**
   * An ended session keeps no file waiting: neither this user's own (their other sessions were to fetch
   * them) nor those of the users who sent files here (each is told; the rooms tell their groups' owners).
   */
  private async releaseBlobs(sessionId: string): Promise<void> {
    const username = this.accounts.username();
    if (!username) return;
    const now = Date.now();
    const othersLive = this.accounts.liveSessionIds(now).length > 0;
    await this.blobSessionEnded(username, sessionId, othersLive);
    const owners = this.blobOwners.current(now);
    const results = await Promise.allSettled(
      owners.map((owner) => homeStub(this.env, owner).blobSessionEnded(username, sessionId, othersLive)),
    );
    for (const result of results)
      if (result.status === "rejected")
        console.error(`home ${username}: telling a file's owner of an ended session failed`, result.reason);
  }

  /**
   * The session, its queue and its presence go (the rooms are told by the caller). Returns the shards
   * that held its sockets, receiving or send-only: the caller has them closed there.
   */
  private forgetSession(sessionId: string): string[] {
    this.accounts.removeSession(sessionId);
    this.queue.forgetSessions([sessionId]);
    const shards = this.presence.forgetSession(sessionId);
    this.collectIfSomeoneListens();
    return shards;
  }

  /**
   * Ends a session by someone else's action (the cap, a revoke) as a logout would, keeping why for its
   * device. Returns the shards of its sockets, which the Worker closes; the rooms are told by the caller.
   */
  private endSession(session: EndedSession, reason: EndReason, now: number): string[] {
    this.endedSessions.record(session, reason, now);
    return this.forgetSession(session.id);
  }

  /** An unknown session may be one ended by the cap or a revoke: then its device is told which. */
  private explainRefusal(check: SessionCheck, sessionId: string, secretHash: string): SessionCheck {
    if (check.ok || check.reason !== "unknown") return check;
    const reason = this.endedSessions.reason(sessionId, secretHash, Date.now());
    return reason ? { ok: false, reason } : check;
  }

  private maxSessions(): number {
    const configured = Number(this.env.MAX_SESSIONS_PER_ACCOUNT);
    return Number.isSafeInteger(configured) && configured >= 1 ? configured : DEFAULT_MAX_SESSIONS;
  }

  private collectIfSomeoneListens(): void {
    if (this.accounts.liveSessionIds(Date.now()).length > 0) this.queue.collectOrphans();
  }
}
