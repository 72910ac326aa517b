// What the daemon received, in order, for the commands that read it instead of receiving themselves:
// `inbox` through the daemon prints what came since the previous such `inbox`, `listen` what comes
// while it runs. Everything is also in the history (the receiver records before it acknowledges), so
// the feed only keeps the newest entries: an `inbox` that comes after more than that many is told.

import type { ShownEvent, ShownMessage, Warning } from "../../client/events.js";

export type FeedItem =
  | { kind: "message"; message: ShownMessage }
  | { kind: "event"; event: ShownEvent }
  | { kind: "warning"; warning: Warning };

export interface FeedEntry {
  seq: number;
  item: FeedItem;
}

export const FEED_LIMIT = 10_000;

export class Feed {
  private entries: FeedEntry[] = [];
  private nextSeq = 1;
  private readonly waiting = new Set<() => void>();
  /** The last entry an `inbox` printed. */
  inboxCursor = 0;

  constructor(private readonly limit: number = FEED_LIMIT) {}

  push(item: FeedItem): void {
    this.entries.push({ seq: this.nextSeq++, item });
    if (this.entries.length > this.limit) this.entries.splice(0, this.entries.length - this.limit);
    for (const wake of [...this.waiting]) wake();
  }

  /** The sequence number the next entry will get: "everything from now on". */
  get next(): number {
    return this.nextSeq;
  }

  /** The entries after `seq`, and how many after it were dropped to keep within the limit. */
  since(seq: number): { entries: FeedEntry[]; dropped: number } {
    const first = this.entries[0]?.seq ?? this.nextSeq;
    const entries = this.entries.filter((entry) => entry.seq > seq);
    return { entries, dropped: Math.max(0, first - seq - 1) };
  }

  /** Resolves at the next push, or when `signal` aborts. */
  whenPushed(signal: AbortSignal): Promise<void> {
    return new Promise((done) => {
      if (signal.aborted) return done();
      const wake = () => {
        this.waiting.delete(wake);
        signal.removeEventListener("abort", wake);
        done();
      };
      this.waiting.add(wake);
      signal.addEventListener("abort", wake, { once: true });
    });
  }
}
