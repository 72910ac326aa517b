// What a user's queue holds, in total and per sender, for the quotas (../quotas.ts). Kept in memory: every
// change to the queue goes through this object's MessageQueue, so the counts are read once per wake (one
// scan, rows read) and then moved with each store and delete, rather than kept by triggers in tables,
// which cost rows written on every message stored and every message acknowledged.

import type { QueueLimit } from "../quotas.js";

export class QueueUsage {
  private counts: { total: QueueLimit; bySender: Map<string, QueueLimit> } | null = null;

  constructor(private readonly sql: SqlStorage) {}

  total(): QueueLimit {
    return this.load().total;
  }

  ofSender(sender: string): QueueLimit {
    return this.load().bySender.get(sender) ?? { items: 0, bytes: 0 };
  }

  /** An item of `bytes` from `sender` was stored. */
  added(sender: string, bytes: number): void {
    if (this.counts) this.move(sender, 1, bytes);
  }

  /**
   * Items left the queue: each row as a DELETE … RETURNING sender, length(body) AS bytes gives it. The
   * cursor is read to its end even when the counts are not loaded: workerd fails the object's next
   * statement while a RETURNING cursor is left unread.
   */
  removed(rows: SqlStorageCursor<{ sender: string; bytes: number }>): void {
    const removed = rows.toArray();
    if (!this.counts) return;
    for (const { sender, bytes } of removed) this.move(sender, -1, -bytes);
  }

  private move(sender: string, items: number, bytes: number): void {
    const counts = this.load();
    counts.total = { items: counts.total.items + items, bytes: counts.total.bytes + bytes };
    const before = counts.bySender.get(sender) ?? { items: 0, bytes: 0 };
    const after = { items: before.items + items, bytes: before.bytes + bytes };
    if (after.items > 0) counts.bySender.set(sender, after);
    else counts.bySender.delete(sender);
  }

  private load(): { total: QueueLimit; bySender: Map<string, QueueLimit> } {
    if (this.counts) return this.counts;
    const bySender = new Map<string, QueueLimit>();
    const total = { items: 0, bytes: 0 };
    for (const row of this.sql.exec<{ sender: string; items: number; bytes: number }>(
      "SELECT sender, count(*) AS items, coalesce(sum(length(body)), 0) AS bytes FROM messages GROUP BY sender",
    )) {
      bySender.set(row.sender, { items: row.items, bytes: row.bytes });
      total.items += row.items;
      total.bytes += row.bytes;
    }
    this.counts = { total, bySender };
    return this.counts;
  }
}
