// The local message history: every message this device sent or received (and every group membership
// event), in SQLite at <home>/history.db, owner-only like the keys beside it. The server never sees it:
// it holds the plaintext, which is exactly what the server must not have.
//
// Rows are written in batches inside one transaction: the receiver writes a batch before it
// acknowledges those messages, so a message the server has forgotten is always in the history.
// SQLite (not a JSON file) because history grows without bound, is searched, and is written by several
// processes at once (chat in one terminal, send in another); WAL mode lets readers run beside a writer.

import { chmod, open } from "node:fs/promises";
import { join } from "node:path";
import type { Database as SqliteDatabase, Statement } from "better-sqlite3";
import { CliError, ExitCode } from "./errors.js";
import type { Home } from "./home.js";
import type { ShownEvent, ShownFile } from "./output.js";

export const HISTORY_FILE = "history.db";
/** How long a writer waits for another process's transaction before giving up. */
const BUSY_TIMEOUT_MS = 10_000;

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

/**
 * Schema versions, applied in order and recorded in `PRAGMA user_version`. `conversation` is "u:NAME"
 * for direct messages (the other person, whichever way it went) and "g:NAME" for a group.
 */
const MIGRATIONS = [
  `CREATE TABLE entries (
     seq          INTEGER PRIMARY KEY AUTOINCREMENT,
     owner        TEXT NOT NULL,
     id           TEXT NOT NULL,
     kind         TEXT NOT NULL CHECK (kind IN ('message', 'event')),
     direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
     conversation TEXT NOT NULL,
     sender       TEXT NOT NULL,
     recipient    TEXT NOT NULL,
     group_name   TEXT,
     text         TEXT NOT NULL,
     sent_at      INTEGER NOT NULL,
     recorded_at  INTEGER NOT NULL,
     extra        TEXT,
     UNIQUE (owner, id)
   );
   CREATE INDEX entries_by_conversation ON entries (owner, conversation, seq);`,
];

export class History {
  private readonly insert: Statement;

  private constructor(
    private readonly db: SqliteDatabase,
    private readonly owner: string,
  ) {
    // Prepared once: a backlog of thousands of messages reuses the same statement.
    // OR IGNORE: a message redelivered before its ack reached the server is recorded once.
    this.insert = db.prepare(
      `INSERT OR IGNORE INTO entries
         (owner, id, kind, direction, conversation, sender, recipient, group_name, text, sent_at, recorded_at, extra)
       VALUES (@owner, @id, @kind, @direction, @conversation, @sender, @recipient, @group, @text, @sentAt, @recordedAt, @extra)`,
    );
  }

  /** Opens (creating, 0600) the home's history for `owner`; entries of other users of the home stay hidden. */
  static async open(home: Home, owner: string): Promise<History> {
    await home.ensure();
    const path = join(home.dir, HISTORY_FILE);
    // Created owner-only before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
    await (await open(path, "a", 0o600)).close();
    await chmod(path, 0o600);
    // Loaded on first use: commands that never touch history do not pay for the native module.
    const { default: Database } = await import("better-sqlite3");
    const db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    db.pragma("journal_mode = WAL");
    // FULL: a committed batch survives power loss, which matters because it is acknowledged right after.
    db.pragma("synchronous = FULL");
    migrate(db);
    return new History(db, owner);
  }

  /** Records entries in one transaction (one disk sync for the whole batch). */
  record(entries: readonly NewEntry[]): void {
    if (entries.length === 0) return;
    const recordedAt = Date.now();
    const insertAll = this.db.transaction((batch: readonly NewEntry[]) => {
      for (const entry of batch) this.insert.run(toRow(this.owner, entry, recordedAt));
    });
    insertAll(entries);
  }

  /** The newest `limit` entries matching the query, oldest first. */
  list(query: HistoryQuery): HistoryEntry[] {
    const where = ["owner = @owner"];
    const params: Record<string, unknown> = { owner: this.owner, limit: query.limit };
    if (query.user !== undefined) {
      where.push("conversation = @conversation");
      params.conversation = `u:${query.user}`;
    } else if (query.group !== undefined) {
      where.push("conversation = @conversation");
      params.conversation = `g:${query.group}`;
    }
    if (query.search !== undefined) {
      where.push(`text LIKE @pattern ESCAPE '\\'`);
      params.pattern = `%${query.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    }
    const rows = this.db
      .prepare(`SELECT * FROM entries WHERE ${where.join(" AND ")} ORDER BY seq DESC LIMIT @limit`)
      .all(params) as Row[];
    return rows.reverse().map(fromRow);
  }

  close(): void {
    this.db.close();
  }
}

interface Row {
  id: string;
  kind: "message" | "event";
  direction: "in" | "out";
  sender: string;
  recipient: string;
  group_name: string | null;
  text: string;
  sent_at: number;
  recorded_at: number;
  extra: string | null;
}

function toRow(owner: string, entry: NewEntry, recordedAt: number): Record<string, unknown> {
  const peer = entry.direction === "out" || entry.from === owner ? entry.to : entry.from;
  const extra =
    entry.file || entry.event || entry.outOfOrder || entry.missedBefore !== undefined
      ? JSON.stringify({
          ...(entry.file ? { file: entry.file } : {}),
          ...(entry.event ? { event: entry.event } : {}),
          ...(entry.outOfOrder ? { outOfOrder: true } : {}),
          ...(entry.missedBefore === undefined ? {} : { missedBefore: entry.missedBefore }),
        })
      : null;
  return {
    owner,
    id: entry.id,
    kind: entry.kind,
    direction: entry.direction,
    conversation: entry.group === undefined ? `u:${peer}` : `g:${entry.group}`,
    sender: entry.from,
    recipient: entry.to,
    group: entry.group ?? null,
    text: entry.text,
    sentAt: entry.sentAt,
    recordedAt,
    extra,
  };
}

function fromRow(row: Row): HistoryEntry {
  const extra =
    row.extra === null
      ? {}
      : (JSON.parse(row.extra) as Pick<HistoryEntry, "file" | "event" | "outOfOrder" | "missedBefore">);
  return {
    id: row.id,
    kind: row.kind,
    direction: row.direction,
    from: row.sender,
    to: row.recipient,
    ...(row.group_name === null ? {} : { group: row.group_name }),
    text: row.text,
    sentAt: row.sent_at,
    recordedAt: row.recorded_at,
    ...extra,
  };
}

/** Read and applied inside one write transaction: two processes opening a new home migrate it once. */
function migrate(db: SqliteDatabase): void {
  db.transaction(() => {
    const current = db.pragma("user_version", { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new CliError(
        `history.db is from a newer telepound (schema ${current}); upgrade telepound`,
        ExitCode.unexpected,
      );
    }
    for (let version = current; version < MIGRATIONS.length; version++) {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    }
  }).immediate();
}
