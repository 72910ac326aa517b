// A group's message queue, in its room: each group message is stored once, with one key slot per member,
// and each member's sessions take it from here. A 1000-member message is one row and 1000 small slot
// rows in one transaction, instead of a write in 1000 homes. The slot rows are keyed by message first
// (group/schema.ts), so one message's rows share a few pages however many members there are.
//
// The rules mirror a home's queue (home/queue.ts), per member:
// - `pending` says which session still waits for which message; a message is pending for every live
//   session the room knows of the member when it is stored.
// - `owed` keeps the member's slot while any of their sessions may still need it. It goes once the member
//   has a live session and none of their sessions waits for the message; with no live session it stays,
//   and the member's next session (a login on a new machine) takes everything still owed.
// - A message leaves when no member is owed it.
// A member who leaves or is removed takes what they are still owed with them (takeOwed): their home
// queues it, so the room only serves its current members.
// Posts are keyed by (sender, id); an acknowledgement names ids, and an id matching posts of two senders
// acknowledges both (PROTOCOL §6).

import { encodeDelivery } from "../../protocol/envelope.js";
import { BACKLOG_BATCH_MESSAGES, type Backlog, backlogBatch } from "../home/queue.js";
import { type QueueLimit, type QueueQuotas, type QuotaBreach, fits } from "../quotas.js";

export interface MemberSession {
  id: string;
  expiresAt: number;
}

export class GroupQueue {
  constructor(private readonly sql: SqlStorage) {}

  /**
   * Stores a message for its members and makes it pending for their live sessions. The same (sender,
   * id) again (a sender retrying after a lost reply) stores nothing new and returns the stored seq. A new
   * message that does not fit the quotas (../quotas.ts) is refused and nothing is stored: each member's
   * share here counts as a queue of theirs, and the sender's messages here that someone is still owed
   * count as the sender's part of every member's queue.
   */
  store(
    sender: string,
    id: string,
    signed: Uint8Array,
    slots: ReadonlyArray<{ member: string; slot: Uint8Array }>,
    now: number,
    quotas: QueueQuotas,
  ): { ok: true; seq: number; fresh: boolean } | { ok: false; member: string; breach: QuotaBreach } {
    const existing = this.sql
      .exec<{ seq: number }>("SELECT seq FROM posts WHERE sender = ? AND id = ?", sender, id)
      .toArray()[0];
    if (existing) return { ok: true, seq: existing.seq, fresh: false };
    const refusal = this.overQuota(sender, signed.length, slots, quotas);
    if (refusal) return { ok: false, ...refusal };
    const { seq } = this.sql
      .exec<{ seq: number }>(
        "INSERT INTO posts (sender, id, signed, posted_at) VALUES (?, ?, ?, ?) RETURNING seq",
        sender,
        id,
        signed,
        now,
      )
      .one();
    for (const { member, slot } of slots)
      this.sql.exec(
        "INSERT INTO owed (member, seq, slot, bytes) VALUES (?, ?, ?, ?)",
        member,
        seq,
        slot,
        signed.length + slot.length,
      );
    this.sql.exec(
      `INSERT INTO pending (session_id, seq, member)
       SELECT s.session_id, o.seq, o.member FROM owed o JOIN member_sessions s ON s.member = o.member
       WHERE o.seq = ? AND s.expires_at > ?`,
      seq,
      now,
    );
    return { ok: true, seq, fresh: true };
  }

  /**
   * Which quota a new message would break, and for whom: the sender's part (named after the member
   * furthest behind, who holds it up), or a member whose share here is full. Null if it fits.
   */
  private overQuota(
    sender: string,
    signedBytes: number,
    slots: ReadonlyArray<{ member: string; slot: Uint8Array }>,
    quotas: QueueQuotas,
  ): { member: string; breach: QuotaBreach } | null {
    const mine = this.sql
      .exec<QueueLimit>("SELECT items, bytes FROM posts_by_sender_usage WHERE sender = ?", sender)
      .toArray()[0] ?? { items: 0, bytes: 0 };
    if (!fits(mine, signedBytes, quotas.perSender)) {
      const behind = this.sql
        .exec<{ member: string }>("SELECT member FROM owed_by_member ORDER BY items DESC LIMIT 1")
        .toArray()[0];
      return { member: behind?.member ?? "a member", breach: { scope: "sender", limit: quotas.perSender } };
    }
    const largestSlot = Math.max(0, ...slots.map(({ slot }) => slot.length));
    const full = this.sql
      .exec<{ member: string }>(
        `SELECT member FROM owed_by_member WHERE member IN (SELECT value FROM json_each(?))
           AND (items + 1 > ? OR bytes + ? > ?) LIMIT 1`,
        JSON.stringify(slots.map(({ member }) => member)),
        quotas.perRecipient.items,
        signedBytes + largestSlot,
        quotas.perRecipient.bytes,
      )
      .toArray()[0];
    return full ? { member: full.member, breach: { scope: "recipient", limit: quotas.perRecipient } } : null;
  }

  /** Whether the members' sessions were ever loaded from their homes (rooms older than the queue). */
  sessionsLoaded(): boolean {
    return (
      this.sql.exec<{ loaded: number }>("SELECT sessions_loaded AS loaded FROM queue_state").one().loaded ===
      1
    );
  }

  markSessionsLoaded(): void {
    this.sql.exec("UPDATE queue_state SET sessions_loaded = 1");
  }

  /**
   * Remembers a live session of a member; a session new to the room takes everything the member is
   * still owed. Idempotent: homes report sessions at login and shards confirm them at every connect.
   */
  addSession(member: string, session: MemberSession): void {
    const added = this.sql
      .exec(
        `INSERT INTO member_sessions (member, session_id, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (member, session_id) DO NOTHING RETURNING 1`,
        member,
        session.id,
        session.expiresAt,
      )
      .toArray();
    if (added.length === 0) return;
    this.sql.exec(
      `INSERT OR IGNORE INTO pending (session_id, seq, member) SELECT ?, seq, member FROM owed WHERE member = ?`,
      session.id,
      member,
    );
  }

  /** A session ended (logout): it waits for nothing more; what only it waited for is no longer owed. */
  removeSession(member: string, sessionId: string, now: number): void {
    this.sql.exec("DELETE FROM member_sessions WHERE member = ? AND session_id = ?", member, sessionId);
    this.sql.exec("DELETE FROM pending WHERE session_id = ?", sessionId);
    this.collectOwed(member, now);
  }

  /** The live sessions the room knows of each member, by member. */
  liveSessions(now: number): Map<string, MemberSession[]> {
    const byMember = new Map<string, MemberSession[]>();
    for (const row of this.sql.exec<{ member: string; session_id: string; expires_at: number }>(
      "SELECT member, session_id, expires_at FROM member_sessions WHERE expires_at > ?",
      now,
    ))
      byMember.set(row.member, [
        ...(byMember.get(row.member) ?? []),
        { id: row.session_id, expiresAt: row.expires_at },
      ]);
    return byMember;
  }

  /** Drops sessions past their expiry, with what they waited for. */
  removeExpiredSessions(now: number): void {
    const expired = this.sql
      .exec<{ member: string; session_id: string }>(
        "DELETE FROM member_sessions WHERE expires_at <= ? RETURNING member, session_id",
        now,
      )
      .toArray();
    for (const { member, session_id } of expired) {
      this.sql.exec("DELETE FROM pending WHERE session_id = ?", session_id);
      this.collectOwed(member, now);
    }
  }

  /** The next batch of a session's pending messages after `cursor`, oldest first, as delivery frames. */
  backlog(sessionId: string, cursor: number): Backlog {
    const rows = this.sql.exec<{ seq: number; signed: ArrayBuffer; slot: ArrayBuffer }>(
      `SELECT p.seq AS seq, p.signed AS signed, o.slot AS slot FROM pending d
         JOIN posts p ON p.seq = d.seq JOIN owed o ON o.member = d.member AND o.seq = d.seq
       WHERE d.session_id = ? AND d.seq > ? ORDER BY d.seq LIMIT ?`,
      sessionId,
      cursor,
      BACKLOG_BATCH_MESSAGES + 1,
    );
    return backlogBatch(rows, cursor, (row) => ({
      kind: "envelope",
      data: encodeDelivery(new Uint8Array(row.signed), new Uint8Array(row.slot)),
    }));
  }

  hasPendingUpTo(sessionId: string, cursor: number): boolean {
    return (
      this.sql
        .exec("SELECT 1 FROM pending WHERE session_id = ? AND seq <= ? LIMIT 1", sessionId, cursor)
        .toArray().length > 0
    );
  }

  /**
   * Sessions have the given messages: each stops being pending for its session, stops being owed to the
   * member once no session of theirs waits, and leaves once nobody is owed it. Ids a session never waited
   * for (someone else's, or already acknowledged) change nothing. A whole batch of acknowledgements costs
   * three statements: one per acknowledgement showed up as the room's main cost in a 1000-member group.
   */
  acknowledge(acks: ReadonlyArray<{ session: string; ids: readonly string[] }>): void {
    const pairs = acks.flatMap(({ session, ids }) => ids.map((id) => [session, id]));
    if (pairs.length === 0) return;
    // Keyed by (session, seq) alone, the primary key, so each acknowledgement is one index seek. Session
    // ids are random and the shard takes them from the authenticated socket: a session's rows are its own.
    const acked = this.sql
      .exec<{ member: string; seq: number }>(
        `DELETE FROM pending WHERE (session_id, seq) IN (
           SELECT json_extract(a.value, '$[0]'), p.seq
           FROM json_each(?) a JOIN posts p ON p.id = json_extract(a.value, '$[1]'))
         RETURNING member, seq`,
        JSON.stringify(pairs),
      )
      .toArray();
    if (acked.length === 0) return;
    // The acknowledging sessions are live, so an owed row nobody of its member waits for is done.
    this.sql.exec(
      `DELETE FROM owed WHERE (member, seq) IN (
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))
         AND NOT EXISTS (SELECT 1 FROM pending d WHERE d.member = owed.member AND d.seq = owed.seq)`,
      JSON.stringify(acked.map((row) => [row.member, row.seq])),
    );
    this.sql.exec(
      `DELETE FROM posts WHERE seq IN (SELECT value FROM json_each(?))
         AND NOT EXISTS (SELECT 1 FROM owed o WHERE o.seq = posts.seq)`,
      JSON.stringify([...new Set(acked.map((row) => row.seq))]),
    );
  }

  /**
   * What a departing member is still owed, oldest first, as delivery frames with their message ids: the
   * room hands them to the member's home, then forgets them with forgetMember.
   */
  owedTo(member: string): Array<{ seq: number; sender: string; id: string; data: Uint8Array }> {
    return this.sql
      .exec<{ seq: number; sender: string; id: string; signed: ArrayBuffer; slot: ArrayBuffer }>(
        `SELECT p.seq AS seq, p.sender AS sender, p.id AS id, p.signed AS signed, o.slot AS slot FROM owed o
           JOIN posts p ON p.seq = o.seq WHERE o.member = ? ORDER BY o.seq`,
        member,
      )
      .toArray()
      .map((row) => ({
        seq: row.seq,
        sender: row.sender,
        id: row.id,
        data: encodeDelivery(new Uint8Array(row.signed), new Uint8Array(row.slot)),
      }));
  }

  /**
   * Forgets a departed member's sessions and what they were owed up to `throughSeq` (their home has it
   * now). Later rows stay: they belong to a membership that began after the departure.
   */
  forgetMember(member: string, throughSeq: number, stillMember: boolean): void {
    this.sql.exec("DELETE FROM pending WHERE member = ? AND seq <= ?", member, throughSeq);
    this.sql.exec("DELETE FROM owed WHERE member = ? AND seq <= ?", member, throughSeq);
    if (!stillMember) this.sql.exec("DELETE FROM member_sessions WHERE member = ?", member);
    this.sql.exec("DELETE FROM posts WHERE NOT EXISTS (SELECT 1 FROM owed o WHERE o.seq = posts.seq)");
  }

  /** Owed rows of `member` no session waits for, dropped if the member has a live session to vouch for it. */
  private collectOwed(member: string, now: number): void {
    const live =
      this.sql
        .exec("SELECT 1 FROM member_sessions WHERE member = ? AND expires_at > ? LIMIT 1", member, now)
        .toArray().length > 0;
    if (!live) return;
    this.sql.exec(
      `DELETE FROM owed WHERE member = ?
         AND NOT EXISTS (SELECT 1 FROM pending d WHERE d.member = owed.member AND d.seq = owed.seq)`,
      member,
    );
    this.sql.exec("DELETE FROM posts WHERE NOT EXISTS (SELECT 1 FROM owed o WHERE o.seq = posts.seq)");
  }
}
