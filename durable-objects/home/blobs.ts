// The encrypted files a user has uploaded, kept in the uploader's home: who may fetch each one, which
// sessions must still fetch it (its holders), which parts have arrived, and when it expires. The
// ciphertext itself lives in R2, never here; the file's name and key travel only inside the envelope.

import { BLOB_LIFETIME_MS, BLOB_PART_BYTES } from "../../protocol/limits.js";

export type BlobState = "uploading" | "ready";

export interface BlobRecord {
  id: string;
  uploadId: string;
  size: number;
  state: BlobState;
  expiresAt: number;
}

/** A user a blob is for, with the live sessions they had when it was uploaded (none: their next one). */
export interface BlobHolder {
  username: string;
  sessions: Array<{ id: string; expiresAt: number }>;
}

/** Stands for "the user's next session" in a holder row, for a user with no live session then. */
const ANY_SESSION = "*";

export type BlobAccess =
  { ok: true; size: number } | { ok: false; reason: "not_found" | "forbidden" | "not_ready" };

export class BlobLedger {
  constructor(private readonly sql: SqlStorage) {}

  /** Blobs this user has uploading or waiting to be fetched, and their announced sizes together. */
  outstanding(): { blobs: number; bytes: number } {
    return this.sql
      .exec<{ blobs: number; bytes: number }>(
        "SELECT count(*) AS blobs, coalesce(sum(size), 0) AS bytes FROM blobs",
      )
      .one();
  }

  /**
   * `recipients` may fetch the blob; `holders` keep it until each of their sessions has (recipients, and
   * the owner's own other sessions, which get the message too).
   */
  open(
    id: string,
    uploadId: string,
    size: number,
    recipients: string[],
    holders: BlobHolder[],
    now: number,
  ): BlobRecord {
    const expiresAt = now + BLOB_LIFETIME_MS;
    this.sql.exec(
      "INSERT INTO blobs (id, upload_id, size, state, expires_at) VALUES (?, ?, ?, 'uploading', ?)",
      id,
      uploadId,
      size,
      expiresAt,
    );
    for (const username of new Set(recipients)) {
      this.sql.exec("INSERT INTO blob_recipients (blob_id, username) VALUES (?, ?)", id, username);
    }
    for (const { username, sessions } of holders) {
      const rows = sessions.length > 0 ? sessions : [{ id: ANY_SESSION, expiresAt }];
      for (const session of rows)
        this.sql.exec(
          "INSERT OR IGNORE INTO blob_holders (blob_id, username, session_id, expires_at) VALUES (?, ?, ?, ?)",
          id,
          username,
          session.id,
          Math.min(session.expiresAt, expiresAt),
        );
    }
    return { id, uploadId, size, state: "uploading", expiresAt };
  }

  get(id: string): BlobRecord | null {
    const row = this.sql
      .exec<{ id: string; upload_id: string; size: number; state: BlobState; expires_at: number }>(
        "SELECT * FROM blobs WHERE id = ?",
        id,
      )
      .toArray()[0];
    return row
      ? { id: row.id, uploadId: row.upload_id, size: row.size, state: row.state, expiresAt: row.expires_at }
      : null;
  }

  /** The byte length part `part` (1-based) must have, or null if the blob has no such part. */
  expectedPartBytes(record: BlobRecord, part: number): number | null {
    const parts = partCount(record.size);
    if (!Number.isInteger(part) || part < 1 || part > parts) return null;
    return part < parts ? BLOB_PART_BYTES : record.size - BLOB_PART_BYTES * (parts - 1);
  }

  recordPart(id: string, part: number, etag: string, bytes: number): void {
    this.sql.exec(
      "INSERT OR REPLACE INTO blob_parts (blob_id, part, etag, bytes) VALUES (?, ?, ?, ?)",
      id,
      part,
      etag,
      bytes,
    );
  }

  /** Every part, in order, if all have arrived; otherwise the numbers still missing. */
  parts(
    record: BlobRecord,
  ):
    | { complete: true; parts: Array<{ partNumber: number; etag: string }> }
    | { complete: false; missing: number[] } {
    const rows = this.sql
      .exec<{ part: number; etag: string }>(
        "SELECT part, etag FROM blob_parts WHERE blob_id = ? ORDER BY part",
        record.id,
      )
      .toArray();
    const have = new Set(rows.map((row) => row.part));
    const missing = Array.from({ length: partCount(record.size) }, (_, i) => i + 1).filter(
      (part) => !have.has(part),
    );
    if (missing.length > 0) return { complete: false, missing };
    return { complete: true, parts: rows.map((row) => ({ partNumber: row.part, etag: row.etag })) };
  }

  markReady(id: string): void {
    this.sql.exec("UPDATE blobs SET state = 'ready' WHERE id = ?", id);
    this.sql.exec("DELETE FROM blob_parts WHERE blob_id = ?", id);
  }

  /** The owner may always fetch (their other devices); recipients only once it is complete. */
  access(id: string, owner: string, requester: string): BlobAccess {
    const record = this.get(id);
    if (!record) return { ok: false, reason: "not_found" };
    if (requester !== owner && !this.isRecipient(id, requester)) return { ok: false, reason: "forbidden" };
    if (record.state !== "ready") return { ok: false, reason: "not_ready" };
    return { ok: true, size: record.size };
  }

  isRecipient(id: string, username: string): boolean {
    return (
      this.sql
        .exec("SELECT 1 FROM blob_recipients WHERE blob_id = ? AND username = ?", id, username)
        .toArray().length > 0
    );
  }

  /**
   * A session of `username` has the file (for a user who had no live session at upload, any of theirs
   * does). True when that took away the last live holder: the blob may go.
   */
  markFetched(id: string, username: string, sessionId: string, now: number): boolean {
    const taken = this.sql
      .exec(
        "DELETE FROM blob_holders WHERE blob_id = ? AND username = ? AND session_id IN (?, ?) RETURNING 1",
        id,
        username,
        sessionId,
        ANY_SESSION,
      )
      .toArray().length;
    return taken > 0 && !this.held(id, now);
  }

  /**
   * A session of `username` ended: it holds nothing more. With none of theirs left live, what it still
   * held waits for their next session instead, as their queue waits for it. Returns the blobs that no
   * live session holds any more.
   */
  sessionEnded(username: string, sessionId: string, othersLive: boolean, now: number): string[] {
    const released = this.sql
      .exec<{ blob_id: string }>(
        "DELETE FROM blob_holders WHERE username = ? AND session_id = ? RETURNING blob_id",
        username,
        sessionId,
      )
      .toArray()
      .map((row) => row.blob_id);
    if (!othersLive) {
      for (const id of released)
        this.sql.exec(
          `INSERT OR IGNORE INTO blob_holders (blob_id, username, session_id, expires_at)
             SELECT id, ?, ?, expires_at FROM blobs WHERE id = ?`,
          username,
          ANY_SESSION,
          id,
        );
      return [];
    }
    return [...new Set(released)].filter((id) => !this.held(id, now));
  }

  /** Whether some session that has not fetched the blob yet is live (or stands for a user's next one). */
  private held(id: string, now: number): boolean {
    return (
      this.sql
        .exec(
          "SELECT 1 FROM blob_holders WHERE blob_id = ? AND (session_id = ? OR expires_at > ?) LIMIT 1",
          id,
          ANY_SESSION,
          now,
        )
        .toArray().length > 0
    );
  }

  remove(id: string): void {
    this.sql.exec("DELETE FROM blobs WHERE id = ?", id);
    this.sql.exec("DELETE FROM blob_parts WHERE blob_id = ?", id);
    this.sql.exec("DELETE FROM blob_recipients WHERE blob_id = ?", id);
    this.sql.exec("DELETE FROM blob_holders WHERE blob_id = ?", id);
  }

  expired(now: number): BlobRecord[] {
    return this.sql
      .exec<{ id: string }>("SELECT id FROM blobs WHERE expires_at <= ?", now)
      .toArray()
      .map((row) => this.get(row.id)!)
      .filter(Boolean);
  }

  nextExpiry(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT MIN(expires_at) AS at FROM blobs").one().at;
  }
}

export function partCount(size: number): number {
  return Math.max(1, Math.ceil(size / BLOB_PART_BYTES));
}

/** Where a blob's ciphertext lives in R2. */
export function blobKey(id: string): string {
  return `blobs/${id}`;
}
