// The local message history in a browser (client/store/history.ts HistoryStore): the home's IndexedDB
// database (idb-database.ts), with the same meaning as the CLI's SQLite history
// (cli-client/platform/sqlite-history.ts): a batch in one transaction, an id already recorded kept as it
// was, the newest N shown oldest first, one user's direct messages (both ways) or one group's entries,
// and a literal search that ignores ASCII case only (as SQLite's LIKE does).

import type { HistoryEntry, HistoryQuery, HistoryStore, NewEntry } from "../../client/store/history.js";
import { HISTORY_INDEX, STORES, committed, openHomeDatabase } from "./idb-database.js";

/** An entry as stored: the entry, whose history it is, and its conversation. */
interface StoredEntry extends HistoryEntry {
  seq?: number;
  owner: string;
  conversation: string;
}

export class IdbHistory implements HistoryStore {
  private constructor(
    private readonly db: IDBDatabase,
    private readonly owner: string,
  ) {}

  /** The history of `owner` in the home at `location`; other users' entries there stay hidden. */
  static async open(location: string, owner: string): Promise<IdbHistory> {
    return new IdbHistory(await openHomeDatabase(location), owner);
  }

  async record(entries: readonly NewEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const recordedAt = Date.now();
    const transaction = this.db.transaction(STORES.history, "readwrite", { durability: "strict" });
    const store = transaction.objectStore(STORES.history);
    for (const entry of entries) {
      const adding = store.add(toStored(this.owner, entry, recordedAt));
      // A message redelivered before its ack reached the server is recorded once: the unique [owner, id]
      // refuses the second copy, and the refusal must not abort the rest of the batch.
      adding.onerror = (event) => {
        if (adding.error?.name !== "ConstraintError") return;
        event.preventDefault();
        event.stopPropagation();
      };
    }
    await committed(transaction);
  }

  async list(query: HistoryQuery): Promise<HistoryEntry[]> {
    const transaction = this.db.transaction(STORES.history, "readonly");
    const store = transaction.objectStore(STORES.history);
    const conversation =
      query.user !== undefined ? `u:${query.user}` : query.group !== undefined ? `g:${query.group}` : null;
    const source =
      conversation === null
        ? store.index(HISTORY_INDEX.owner).openCursor(IDBKeyRange.only(this.owner), "prev")
        : store
            .index(HISTORY_INDEX.conversation)
            .openCursor(IDBKeyRange.only([this.owner, conversation]), "prev");
    const needle = query.search === undefined ? null : asciiLower(query.search);
    const found: HistoryEntry[] = [];
    await new Promise<void>((resolve, reject) => {
      source.onerror = () => reject(source.error ?? new Error("IndexedDB cursor failed"));
      // Entries with one index key come in primary-key order, so "prev" is newest first.
      source.onsuccess = () => {
        const cursor = source.result;
        if (!cursor || found.length >= query.limit) return resolve();
        const stored = cursor.value as StoredEntry;
        if (needle === null || asciiLower(stored.text).includes(needle)) found.push(fromStored(stored));
        cursor.continue();
      };
    });
    return found.reverse();
  }

  close(): void {
    this.db.close();
  }
}

function toStored(owner: string, entry: NewEntry, recordedAt: number): StoredEntry {
  const peer = entry.direction === "out" || entry.from === owner ? entry.to : entry.from;
  return {
    ...fromStored({ ...entry, recordedAt, owner, conversation: "" }),
    owner,
    conversation: entry.group === undefined ? `u:${peer}` : `g:${entry.group}`,
  };
}

/** The entry's own fields only, and only the optional ones it has (as the SQLite history gives them). */
function fromStored(stored: StoredEntry): HistoryEntry {
  return {
    id: stored.id,
    kind: stored.kind,
    direction: stored.direction,
    from: stored.from,
    to: stored.to,
    ...(stored.group === undefined ? {} : { group: stored.group }),
    text: stored.text,
    sentAt: stored.sentAt,
    recordedAt: stored.recordedAt,
    ...(stored.file ? { file: stored.file } : {}),
    ...(stored.event ? { event: stored.event } : {}),
    ...(stored.outOfOrder ? { outOfOrder: true as const } : {}),
    ...(stored.missedBefore === undefined ? {} : { missedBefore: stored.missedBefore }),
  };
}

/** SQLite's LIKE folds ASCII letters only: "É" and "é" stay different there, and so here. */
function asciiLower(text: string): string {
  return text.replace(/[A-Z]/g, (letter) => letter.toLowerCase());
}
