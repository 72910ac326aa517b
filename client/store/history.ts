// The local message history, as the core records and reads it: every message this device sent or
// received, and every group membership event. The store is the platform's (client/platform.ts): SQLite in
// the CLI (cli-client/platform/sqlite-history.ts), IndexedDB in a browser. It holds the plaintext, which
// is exactly what the server must not have; the receiver writes a batch before it acknowledges it, so a
// message the server has forgotten is always in the history.

import type { ShownEvent, ShownFile } from "../events.js";

/** One row of the history, as `history` prints it. */
export interface HistoryEntry {
  /** The message id (hex), or the event id. */
  id: string;
  kind: "message" | "event";
  direction: "in" | "out";
  from: string;
  /** The recipient (direct) or the group's name. */
  to: string;
  group?: string;
  text: string;
  /** The sender's clock (messages) or the server's (events), ms since the Unix epoch. */
  sentAt: number;
  /** When this device recorded it, ms since the Unix epoch: the order history shows. */
  recordedAt: number;
  file?: Pick<ShownFile, "name" | "size"> & Partial<Pick<ShownFile, "path" | "sha256">>;
  event?: Omit<ShownEvent, "at" | "viewer">;
  /** A received message that arrived after a later one of its sender's device (ShownMessage). */
  outOfOrder?: true;
  /** Received: how many of its sender device's messages were skipped just before it (ShownMessage). */
  missedBefore?: number;
}

export type NewEntry = Omit<HistoryEntry, "recordedAt">;

export interface HistoryQuery {
  /** Direct messages with this user (both directions). */
  user?: string;
  /** Messages and events of this group. */
  group?: string;
  /** Only entries whose text contains this, case-insensitively (ASCII) and literally (no wildcards). */
  search?: string;
  /** The newest N, shown oldest first. */
  limit: number;
}

/** Where the history lives: SQLite in the CLI (cli-client/platform/sqlite-history.ts), IndexedDB in a browser. */
export interface HistoryStore {
  /** Records entries together (one transaction); an id already recorded is kept as it was. */
  record(entries: readonly NewEntry[]): Promise<void>;
  /** The newest `limit` entries matching the query, oldest first. */
  list(query: HistoryQuery): Promise<HistoryEntry[]>;
  close(): void;
}

/**
 * The history as one client process writes it: entries keep the order they were shown or sent in.
 * A receiver shows a message at once but writes it with the batch it acknowledges (25 ms later, or 500
 * at a time); a message sent in between is written at once. Without this, a reply could be recorded
 * before the message it answered, and a history read just after a message was shown would not have it.
 * So what is shown is held here in order, and every write or read writes what is held first.
 */
export class OrderedHistory implements HistoryStore {
  private held: NewEntry[] = [];

  constructor(private readonly store: HistoryStore) {}

  /** Keeps entries in order, to be written with the next write (or `record([])`). */
  hold(entries: readonly NewEntry[]): void {
    this.held.push(...entries);
  }

  /** Writes what is held, then `entries`, in one transaction. */
  async record(entries: readonly NewEntry[]): Promise<void> {
    const held = this.held;
    this.held = [];
    try {
      await this.store.record([...held, ...entries]);
    } catch (error) {
      // Not lost: held again, ahead of anything shown since, for the next write.
      this.held = [...held, ...this.held];
      throw error;
    }
  }

  async list(query: HistoryQuery): Promise<HistoryEntry[]> {
    if (this.held.length > 0) await this.record([]);
    return this.store.list(query);
  }

  close(): void {
    this.store.close();
  }
}
