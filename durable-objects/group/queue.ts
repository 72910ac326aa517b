// A group's message queue, in its room: each group message is stored once, with one key slot per member,
// and each session of each member keeps a cursor, how far it has acknowledged. A 1000-member message is
// one row and 1000 small slot rows written once (keyed by message, so they share a few pages), and its
// acknowledgements move 1000 cursors; nothing is written per member per message beyond that.
//
// The rules mirror a home's queue (home/queue.ts), per member:
// - A session waits for every message it has a slot in after its cursor (`acked_through`), except those
//   it acknowledged out of order (`acked_ahead`). A session new to the room starts where the member's
//   furthest-behind session is, so it gets everything the member is still owed.
// - A member is owed what their sessions wait for; with no session, what comes after their mark
//   (`member_marks`: where their last session was, or just before the first message after they joined).
// - A message leaves when every member is past it.
// A member who leaves or is removed takes what they are still owed with them (owedTo): their home queues
// it, so the room only serves its current members.
// Posts are keyed by (sender, id); an acknowledgement names ids, and an id matching posts of two senders
// acknowledges both (PROTOCOL §6).
//
// The cursors, the marks and the list of stored messages are also kept in memory, read once per wake-up:
// an acknowledgement is then decided without reading, and a batch of them is one statement.

import { encodeDelivery } from "../../protocol/envelope.js";
import { BACKLOG_BATCH_MESSAGES, type Backlog, backlogBatch } from "../home/queue.js";
import { type QueueLimit, type QueueQuotas, type QuotaBreach, fits } from "../quotas.js";
import { LivePosts } from "./live-posts.js";

export interface MemberSession {
  id: string;
  expiresAt: number;
}

interface SessionCursor {
  member: string;
  /** Every message up to here that the session had a slot in, it has acknowledged. */
  ackedThrough: number;
  /** Messages it acknowledged past ackedThrough, each with whether acked_ahead has it yet. */
  ahead: Map<number, boolean> | null;
}

interface QueueMemory {
  posts: LivePosts;
  /** By session id (random, made by the member's home). */
  cursors: Map<string, SessionCursor>;
  /** Each member's session ids here. */
  sessionsOf: Map<string, Set<string>>;
  marks: Map<string, number>;
  /**
   * Whose slots each message stored since this object woke has: one set per membership, shared by its
   * messages. A message read back from SQLite is asked of the slots table instead.
   */
  slotMembers: Map<number, ReadonlySet<string>>;
}

export class GroupQueue {
  private memory: QueueMemory | null = null;
  private lastMembers: { names: readonly string[]; set: ReadonlySet<string> } | null = null;

  constructor(private readonly sql: SqlStorage) {}

  /**
   * Stores a message for its members. The same (sender, id) again (a sender retrying after a lost reply)
   * stores nothing new and returns the stored seq. A new message that does not fit the quotas
   * (../quotas.ts) is refused and nothing is stored: each member's share here counts as a queue of theirs,
   * and the sender's messages here that someone is still owed count as the sender's part of every
   * member's queue.
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
    const memory = this.loaded();
    const largestSlot = slots.reduce((most, { slot }) => Math.max(most, slot.length), 0);
    const refusal = this.overQuota(memory, sender, signed.length, largestSlot, slots, quotas);
    if (refusal) return { ok: false, ...refusal };
    const { seq } = this.sql
      .exec<{ seq: number }>(
        "INSERT INTO posts (sender, id, signed, posted_at, slot_bytes) VALUES (?, ?, ?, ?, ?) RETURNING seq",
        sender,
        id,
        signed,
        now,
        largestSlot,
      )
      .one();
    for (const { member, slot } of slots) {
      this.sql.exec("INSERT INTO slots (seq, member, slot) VALUES (?, ?, ?)", seq, member, slot);
      // A member with no session here and no mark joined since the last message: owed from this one on.
      if (this.floorOf(memory, member) === undefined) this.setMark(memory, member, seq - 1);
    }
    memory.posts.add(seq, signed.length + largestSlot);
    memory.slotMembers.set(seq, this.memberSet(slots));
    return { ok: true, seq, fresh: true };
  }

  /**
   * Which quota a new message would break, and for whom: the sender's part (named after the member
   * furthest behind, who holds it up), or the share of the member furthest behind, who is owed the most
   * (if it fits theirs it fits everyone's). Null if it fits.
   */
  private overQuota(
    memory: QueueMemory,
    sender: string,
    signedBytes: number,
    largestSlot: number,
    slots: ReadonlyArray<{ member: string }>,
    quotas: QueueQuotas,
  ): { member: string; breach: QuotaBreach } | null {
    let behind: string | null = null;
    let lowest = memory.posts.last();
    for (const { member } of slots) {
      const floor = this.floorOf(memory, member);
      if (floor !== undefined && (behind === null || floor < lowest)) {
        behind = member;
        lowest = floor;
      }
    }
    const mine = this.sql
      .exec<QueueLimit>("SELECT items, bytes FROM posts_by_sender_usage WHERE sender = ?", sender)
      .toArray()[0] ?? { items: 0, bytes: 0 };
    if (!fits(mine, signedBytes, quotas.perSender))
      return { member: behind ?? "a member", breach: { scope: "sender", limit: quotas.perSender } };
    if (
      behind === null ||
      fits(memory.posts.usageAfter(lowest), signedBytes + largestSlot, quotas.perRecipient)
    )
      return null;
    return { member: behind, breach: { scope: "recipient", limit: quotas.perRecipient } };
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
    const memory = this.loaded();
    const start = this.floorOf(memory, member) ?? memory.posts.last();
    const added = this.sql
      .exec(
        `INSERT INTO member_sessions (member, session_id, expires_at, acked_through) VALUES (?, ?, ?, ?)
         ON CONFLICT (member, session_id) DO NOTHING RETURNING 1`,
        member,
        session.id,
        session.expiresAt,
        start,
      )
      .toArray();
    if (added.length === 0) return;
    memory.cursors.set(session.id, { member, ackedThrough: start, ahead: null });
    let sessions = memory.sessionsOf.get(member);
    if (!sessions) memory.sessionsOf.set(member, (sessions = new Set()));
    sessions.add(session.id);
  }

  /** A session ended (logout): it waits for nothing more; what only it waited for is no longer owed. */
  removeSession(member: string, sessionId: string): void {
    const memory = this.loaded();
    this.sql.exec("DELETE FROM member_sessions WHERE member = ? AND session_id = ?", member, sessionId);
    this.forgetSessions(memory, [sessionId]);
    this.collect(memory);
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
      .exec<{ session_id: string }>(
        "DELETE FROM member_sessions WHERE expires_at <= ? RETURNING session_id",
        now,
      )
      .toArray();
    if (expired.length === 0) return;
    const memory = this.loaded();
    this.forgetSessions(
      memory,
      expired.map((row) => row.session_id),
    );
    this.collect(memory);
  }

  /** The next batch of a session's pending messages after `cursor`, oldest first, as delivery frames. */
  backlog(sessionId: string, cursor: number): Backlog {
    const session = this.loaded().cursors.get(sessionId);
    if (!session) return { items: [], cursor, more: false };
    // Driven by the messages in order, each joined to the member's slot by its key.
    const rows = this.sql.exec<{ seq: number; signed: ArrayBuffer; slot: ArrayBuffer }>(
      `SELECT p.seq AS seq, p.signed AS signed, s.slot AS slot
         FROM posts p CROSS JOIN slots s ON s.seq = p.seq AND s.member = ?
       WHERE p.seq > ?
         AND NOT EXISTS (SELECT 1 FROM acked_ahead a WHERE a.session_id = ? AND a.seq = p.seq)
       ORDER BY p.seq LIMIT ?`,
      session.member,
      Math.max(cursor, session.ackedThrough),
      sessionId,
      BACKLOG_BATCH_MESSAGES + 1,
    );
    return backlogBatch(rows, cursor, (row) => ({
      kind: "envelope",
      data: encodeDelivery(new Uint8Array(row.signed), new Uint8Array(row.slot)),
    }));
  }

  /** Whether the session still waits for a message at or before `cursor`. */
  hasPendingUpTo(sessionId: string, cursor: number): boolean {
    const memory = this.loaded();
    const session = memory.cursors.get(sessionId);
    if (!session) return false;
    for (let seq = memory.posts.after(session.ackedThrough); seq !== undefined && seq <= cursor;) {
      if (!session.ahead?.has(seq) && this.hasSlot(memory, seq, session.member)) return true;
      seq = memory.posts.after(seq);
    }
    return false;
  }

  /**
   * Sessions have the given messages: each moves its cursor past them (or notes them, if they came out of
   * order), and a message every member is past leaves. Ids a session never waited for (someone else's,
   * or already acknowledged) change nothing. A whole batch of acknowledgements is decided in memory and
   * written as one statement, however many sessions it covers.
   */
  acknowledge(acks: ReadonlyArray<{ member: string; session: string; ids: readonly string[] }>): void {
    const ids = [...new Set(acks.flatMap((ack) => ack.ids))];
    if (ids.length === 0) return;
    const seqsOf = new Map<string, number[]>();
    for (const { id, seq } of this.sql.exec<{ id: string; seq: number }>(
      "SELECT id, seq FROM posts WHERE id IN (SELECT value FROM json_each(?))",
      JSON.stringify(ids),
    ))
      seqsOf.set(id, [...(seqsOf.get(id) ?? []), seq]);
    if (seqsOf.size === 0) return;
    const memory = this.loaded();
    const moved: Array<[string, string, number]> = [];
    const aheadAdded: Array<[string, number]> = [];
    const aheadGone: Array<[string, number]> = [];
    for (const ack of acks) {
      const session = memory.cursors.get(ack.session);
      // The shard names the member its authenticated socket belongs to: a session's cursor is its own.
      if (!session || session.member !== ack.member) continue;
      let noted = false;
      for (const id of ack.ids)
        for (const seq of seqsOf.get(id) ?? []) {
          if (seq <= session.ackedThrough || session.ahead?.has(seq)) continue;
          (session.ahead ??= new Map()).set(seq, false);
          noted = true;
        }
      if (!noted) continue;
      if (this.advance(memory, ack.session, session, aheadGone))
        moved.push([session.member, ack.session, session.ackedThrough]);
      for (const [seq, written] of session.ahead ?? [])
        if (!written) {
          session.ahead!.set(seq, true);
          aheadAdded.push([ack.session, seq]);
        }
    }
    if (moved.length > 0)
      this.sql.exec(
        `UPDATE member_sessions SET acked_through = json_extract(j.value, '$[2]') FROM json_each(?) AS j
         WHERE member_sessions.member = json_extract(j.value, '$[0]')
           AND member_sessions.session_id = json_extract(j.value, '$[1]')`,
        JSON.stringify(moved),
      );
    if (aheadAdded.length > 0)
      this.sql.exec(
        `INSERT OR IGNORE INTO acked_ahead (session_id, seq)
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)`,
        JSON.stringify(aheadAdded),
      );
    if (aheadGone.length > 0)
      this.sql.exec(
        `DELETE FROM acked_ahead WHERE (session_id, seq) IN (
           SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))`,
        JSON.stringify(aheadGone),
      );
    if (moved.length > 0) this.collect(memory);
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
   * Forgets what a departed member was owed up to `throughSeq` (their home has it now), and their
   * sessions unless they are a member again. Later slots stay: they belong to a membership that began
   * after the departure, and the member's cursors move past `throughSeq` for it.
   */
  forgetMember(member: string, throughSeq: number, stillMember: boolean): void {
    const memory = this.loaded();
    this.sql.exec("DELETE FROM slots WHERE member = ? AND seq <= ?", member, throughSeq);
    if (!stillMember) {
      this.sql.exec("DELETE FROM member_sessions WHERE member = ?", member);
      this.forgetSessions(memory, [...(memory.sessionsOf.get(member) ?? [])]);
      memory.marks.delete(member);
      this.sql.exec("DELETE FROM member_marks WHERE member = ?", member);
    } else {
      for (const sessionId of memory.sessionsOf.get(member) ?? []) {
        const session = memory.cursors.get(sessionId)!;
        if (session.ackedThrough >= throughSeq) continue;
        session.ackedThrough = throughSeq;
        for (const seq of session.ahead?.keys() ?? []) if (seq <= throughSeq) session.ahead!.delete(seq);
      }
      this.sql.exec(
        "UPDATE member_sessions SET acked_through = ? WHERE member = ? AND acked_through < ?",
        throughSeq,
        member,
        throughSeq,
      );
      this.sql.exec(
        `DELETE FROM acked_ahead WHERE seq <= ? AND session_id IN
           (SELECT session_id FROM member_sessions WHERE member = ?)`,
        throughSeq,
        member,
      );
      const mark = memory.marks.get(member);
      if (mark !== undefined && mark < throughSeq) this.setMark(memory, member, throughSeq);
    }
    this.collect(memory);
  }

  /**
   * Moves a session's cursor over what it has acknowledged ahead and over messages it has no slot in;
   * whether it moved. Notes written ahead-entries it used up in `gone`.
   */
  private advance(
    memory: QueueMemory,
    sessionId: string,
    session: SessionCursor,
    gone: Array<[string, number]>,
  ): boolean {
    const start = session.ackedThrough;
    for (let next = memory.posts.after(start); next !== undefined; next = memory.posts.after(next)) {
      const written = session.ahead?.get(next);
      if (written !== undefined) {
        session.ahead!.delete(next);
        if (written) gone.push([sessionId, next]);
      } else if (this.hasSlot(memory, next, session.member)) break;
      session.ackedThrough = next;
    }
    if (session.ahead?.size === 0) session.ahead = null;
    return session.ackedThrough !== start;
  }

  /** Removes sessions (whose rows are gone) from memory and acked_ahead; a member left with none keeps a mark. */
  private forgetSessions(memory: QueueMemory, sessionIds: string[]): void {
    const lowestGone = new Map<string, number>();
    for (const sessionId of sessionIds) {
      const session = memory.cursors.get(sessionId);
      if (!session) continue;
      memory.cursors.delete(sessionId);
      const left = memory.sessionsOf.get(session.member);
      left?.delete(sessionId);
      if (left?.size === 0) memory.sessionsOf.delete(session.member);
      const lowest = lowestGone.get(session.member);
      if (lowest === undefined || session.ackedThrough < lowest)
        lowestGone.set(session.member, session.ackedThrough);
    }
    this.sql.exec(
      "DELETE FROM acked_ahead WHERE session_id IN (SELECT value FROM json_each(?))",
      JSON.stringify(sessionIds),
    );
    // With no session left, what the member was owed stays owed: from where their last session was.
    for (const [member, lowest] of lowestGone)
      if (!memory.sessionsOf.has(member)) this.setMark(memory, member, lowest);
  }

  /** Deletes every message all members are past: the lowest of their floors. */
  private collect(memory: QueueMemory): void {
    let floor = memory.posts.last();
    for (const session of memory.cursors.values()) floor = Math.min(floor, session.ackedThrough);
    for (const [member, mark] of memory.marks)
      if (!memory.sessionsOf.has(member)) floor = Math.min(floor, mark);
    if (!memory.posts.dropThrough(floor)) return;
    this.sql.exec("DELETE FROM slots WHERE seq <= ?", floor);
    this.sql.exec("DELETE FROM posts WHERE seq <= ?", floor);
    for (const seq of memory.slotMembers.keys()) if (seq <= floor) memory.slotMembers.delete(seq);
  }

  /** Where a member's owed messages begin (the seq before them), or undefined if they are owed nothing. */
  private floorOf(memory: QueueMemory, member: string): number | undefined {
    const sessions = memory.sessionsOf.get(member);
    if (!sessions) return memory.marks.get(member);
    let floor = Number.POSITIVE_INFINITY;
    for (const sessionId of sessions) floor = Math.min(floor, memory.cursors.get(sessionId)!.ackedThrough);
    return floor;
  }

  private setMark(memory: QueueMemory, member: string, owedAfter: number): void {
    memory.marks.set(member, owedAfter);
    this.sql.exec(
      "INSERT INTO member_marks (member, owed_after) VALUES (?, ?) ON CONFLICT (member) DO UPDATE SET owed_after = excluded.owed_after",
      member,
      owedAfter,
    );
  }

  private hasSlot(memory: QueueMemory, seq: number, member: string): boolean {
    const members = memory.slotMembers.get(seq);
    if (members) return members.has(member);
    return (
      this.sql.exec("SELECT 1 FROM slots WHERE seq = ? AND member = ?", seq, member).toArray().length > 0
    );
  }

  /** The set of a message's slot members, the same object for every message of one membership. */
  private memberSet(slots: ReadonlyArray<{ member: string }>): ReadonlySet<string> {
    const last = this.lastMembers;
    if (
      last &&
      last.names.length === slots.length &&
      slots.every(({ member }, i) => last.names[i] === member)
    )
      return last.set;
    const names = slots.map(({ member }) => member);
    this.lastMembers = { names, set: new Set(names) };
    return this.lastMembers.set;
  }

  /** The cursors, marks and stored messages, read once per wake-up. */
  private loaded(): QueueMemory {
    if (this.memory) return this.memory;
    const posts = new LivePosts(
      this.sql.exec<{ seq: number; bytes: number }>(
        "SELECT seq, length(signed) + slot_bytes AS bytes FROM posts ORDER BY seq",
      ),
    );
    const cursors = new Map<string, SessionCursor>();
    const sessionsOf = new Map<string, Set<string>>();
    for (const row of this.sql.exec<{ member: string; session_id: string; acked_through: number }>(
      "SELECT member, session_id, acked_through FROM member_sessions",
    )) {
      cursors.set(row.session_id, { member: row.member, ackedThrough: row.acked_through, ahead: null });
      let sessions = sessionsOf.get(row.member);
      if (!sessions) sessionsOf.set(row.member, (sessions = new Set()));
      sessions.add(row.session_id);
    }
    for (const row of this.sql.exec<{ session_id: string; seq: number }>(
      "SELECT session_id, seq FROM acked_ahead",
    )) {
      const session = cursors.get(row.session_id);
      if (session) (session.ahead ??= new Map()).set(row.seq, true);
    }
    const marks = new Map<string, number>();
    for (const row of this.sql.exec<{ member: string; owed_after: number }>(
      "SELECT member, owed_after FROM member_marks",
    ))
      marks.set(row.member, row.owed_after);
    this.memory = { posts, cursors, sessionsOf, marks, slotMembers: new Map() };
    return this.memory;
  }
}
