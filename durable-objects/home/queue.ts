// A user's message queue: every envelope addressed to the user is stored here first and stays until each
// of the user's sessions has acknowledged it. Live pushes are an optimisation on top; the queue is the
// truth, so a socket that dies mid-push loses nothing (the client drops the resulting duplicates by id).
//
// One body row per message, one delivery row per (session, message): a user logged in on two machines
// stores each message once and deletes it when both have acknowledged it. Items are keyed by (sender,
// id), and what the queue holds is counted per sender and in total, for the quotas (queue-usage.ts).
//
// Rows written are what a message costs most (docs/SCALING.md), so the schema keeps two indexes in all:
// messages' (id, sender) key, which also finds the items an acknowledgement names by id, and deliveries'
// (session, seq) key, which also finds who still waits for a message, one probe per live session.

import { type QueueQuotas, type QuotaBreach, fits } from "../quotas.js";
import { QueueUsage } from "./queue-usage.js";

/** Largest backlog batch pushed to a connecting client before it must acknowledge. */
export const BACKLOG_BATCH_MESSAGES = 256;
export const BACKLOG_BATCH_BYTES = 1024 * 1024;

/**
 * What a user's queue holds: an envelope (sent to the client as a binary frame) or a group membership
 * event (UTF-8 JSON, sent as a text frame). Both are acknowledged by id and kept in one order.
 */
export interface QueuedItem {
  kind: "envelope" | "event";
  data: Uint8Array;
}

export interface Backlog {
  items: QueuedItem[];
  /** Highest sequence number in `items`; the next batch starts after it. */
  cursor: number;
  /** Whether older-than-connect messages remain after this batch. */
  more: boolean;
}

export type StoreResult = { ok: true; seq: number } | { ok: false; breach: QuotaBreach };

export class MessageQueue {
  private readonly usage: QueueUsage;

  constructor(private readonly sql: SqlStorage) {
    this.usage = new QueueUsage(sql);
  }

  /**
   * Stores a message for every session that can receive it. The same (sender, id) again (a sender
   * retrying after a lost reply) stores nothing new: delivery stays exactly-once. With `quotas`, a new
   * item that does not fit beside what is queued (in total, or from this sender) is refused and nothing
   * is stored; without, it is always stored (items that were already accepted elsewhere: group events
   * and messages a room hands over).
   */
  store(
    sender: string,
    messageId: string,
    item: QueuedItem,
    sessionIds: string[],
    now: number,
    quotas?: QueueQuotas,
  ): StoreResult {
    // A message stored already (a sender's retry) is answered with its seq, over quota or not.
    const breach = quotas ? this.overQuota(sender, item.data.length, quotas) : null;
    if (breach) {
      const existing = this.storedSeq(sender, messageId);
      return existing === null ? { ok: false, breach } : { ok: true, seq: existing };
    }
    // One statement on the common path: the (id, sender) key turns a retry into no row.
    const inserted = this.sql
      .exec<{ seq: number }>(
        `INSERT INTO messages (sender, id, kind, body, received_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (id, sender) DO NOTHING RETURNING seq`,
        sender,
        messageId,
        item.kind,
        item.data,
        now,
      )
      .toArray()[0];
    if (!inserted) return { ok: true, seq: this.storedSeq(sender, messageId)! };
    const { seq } = inserted;
    this.usage.added(sender, item.data.length);
    for (const sessionId of sessionIds) {
      this.sql.exec("INSERT INTO deliveries (session_id, seq) VALUES (?, ?)", sessionId, seq);
    }
    return { ok: true, seq };
  }

  private storedSeq(sender: string, messageId: string): number | null {
    return (
      this.sql
        .exec<{ seq: number }>("SELECT seq FROM messages WHERE id = ? AND sender = ?", messageId, sender)
        .toArray()[0]?.seq ?? null
    );
  }

  /** Which quota one more item of `bytes` from `sender` would break, or null if it fits. */
  private overQuota(sender: string, bytes: number, quotas: QueueQuotas): QuotaBreach | null {
    if (!fits(this.usage.ofSender(sender), bytes, quotas.perSender))
      return { scope: "sender", limit: quotas.perSender };
    if (!fits(this.usage.total(), bytes, quotas.perRecipient))
      return { scope: "recipient", limit: quotas.perRecipient };
    return null;
  }

  /** Everything still stored becomes pending for a session that just logged in on a new machine. */
  adoptAllFor(sessionId: string): void {
    this.sql.exec(
      "INSERT OR IGNORE INTO deliveries (session_id, seq) SELECT ?, seq FROM messages",
      sessionId,
    );
  }

  /** The next batch of a session's pending messages after `cursor`, oldest first. */
  backlog(sessionId: string, cursor: number): Backlog {
    const rows = this.sql.exec<{ seq: number; kind: QueuedItem["kind"]; body: ArrayBuffer }>(
      `SELECT m.seq AS seq, m.kind AS kind, m.body AS body FROM deliveries d JOIN messages m ON m.seq = d.seq
       WHERE d.session_id = ? AND d.seq > ? ORDER BY d.seq LIMIT ?`,
      sessionId,
      cursor,
      BACKLOG_BATCH_MESSAGES + 1,
    );
    return backlogBatch(rows, cursor, (row) => ({ kind: row.kind, data: new Uint8Array(row.body) }));
  }

  /** Whether the session still has unacknowledged messages at or before `cursor`. */
  hasPendingUpTo(sessionId: string, cursor: number): boolean {
    return (
      this.sql
        .exec("SELECT 1 FROM deliveries WHERE session_id = ? AND seq <= ? LIMIT 1", sessionId, cursor)
        .toArray().length > 0
    );
  }

  /**
   * Forgets the given messages for one session, then deletes bodies no session is waiting for.
   * Ids this session never had (someone else's, or already acknowledged) are ignored. An id names every
   * item this session waits for with that id, whoever sent it: each sender chooses its ids, so two may
   * meet, and the client acknowledges an id only once it has stored or shown every item it got with it.
   */
  acknowledge(sessionId: string, messageIds: string[]): number {
    const acked = this.sql
      .exec<{ seq: number }>(
        `DELETE FROM deliveries WHERE session_id = ?
           AND seq IN (SELECT seq FROM messages WHERE id IN (SELECT value FROM json_each(?)))
         RETURNING seq`,
        sessionId,
        JSON.stringify(messageIds),
      )
      .toArray()
      .map((row) => row.seq);
    if (acked.length > 0) {
      // Who else waits: one key probe per session of the account (expired ones' deliveries are dropped
      // with them, forgetSessions), rather than an index on seq that every message would write twice.
      this.usage.removed(
        this.sql.exec<{ sender: string; bytes: number }>(
          `DELETE FROM messages WHERE seq IN (SELECT value FROM json_each(?))
             AND NOT EXISTS (SELECT 1 FROM deliveries d
               WHERE d.session_id IN (SELECT id FROM sessions) AND d.seq = messages.seq)
           RETURNING sender, length(body) AS bytes`,
          JSON.stringify(acked),
        ),
      );
    }
    return acked.length;
  }

  /** Drops the queue of sessions that ended (logout, expiry). */
  forgetSessions(sessionIds: string[]): void {
    if (sessionIds.length === 0) return;
    this.sql.exec(
      "DELETE FROM deliveries WHERE session_id IN (SELECT value FROM json_each(?))",
      JSON.stringify(sessionIds),
    );
  }

  /**
   * Deletes bodies that no live session waits for. Only safe while some session is live: with none, a
   * stored message waits for the user's next login (adoptAllFor), so nothing sent to them is lost.
   */
  collectOrphans(): void {
    this.usage.removed(
      this.sql.exec<{ sender: string; bytes: number }>(
        `DELETE FROM messages WHERE seq NOT IN (SELECT seq FROM deliveries)
         RETURNING sender, length(body) AS bytes`,
      ),
    );
  }
}

/**
 * One backlog batch from rows read oldest first (at most BACKLOG_BATCH_MESSAGES + 1 of them, so that a
 * further row says there is more): up to BACKLOG_BATCH_MESSAGES items or BACKLOG_BATCH_BYTES, at least one.
 */
export function backlogBatch<Row extends { seq: number }>(
  rows: Iterable<Row>,
  cursor: number,
  toItem: (row: Row) => QueuedItem,
): Backlog {
  const items: QueuedItem[] = [];
  let bytes = 0;
  let last = cursor;
  for (const row of rows) {
    // The look-ahead row only says there is more: it is not built.
    if (items.length === BACKLOG_BATCH_MESSAGES) return { items, cursor: last, more: true };
    const item = toItem(row);
    if (items.length > 0 && bytes + item.data.length > BACKLOG_BATCH_BYTES)
      return { items, cursor: last, more: true };
    items.push(item);
    bytes += item.data.length;
    last = row.seq;
  }
  return { items, cursor: last, more: false };
}
