// The encrypted files a user has uploaded, kept in the uploader's home: who may fetch each one, which
// parts have arrived, and when it expires. The ciphertext itself lives in R2, never here; the file's
// name and key travel only inside the end-to-end envelope.

import { BLOB_LIFETIME_MS, BLOB_PART_BYTES } from "../../protocol/limits.js";

export type BlobState = "uploading" | "ready";

export interface BlobRecord {
  id: string;
  uploadId: string;
  size: number;
  state: BlobState;
  expiresAt: number;
}

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

  open(id: string, uploadId: string, size: number, recipients: string[], now: number): BlobRecord {
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

  /** A recipient has the file; returns true when that was the last one still to fetch it. */
  markFetched(id: string, username: string): boolean {
    this.sql.exec("UPDATE blob_recipients SET fetched = 1 WHERE blob_id = ? AND username = ?", id, username);
    return (
      this.sql.exec("SELECT 1 FROM blob_recipients WHERE blob_id = ? AND fetched = 0 LIMIT 1", id).toArray()
        .length === 0
    );
  }

  remove(id: string): void {
    this.sql.exec("DELETE FROM blobs WHERE id = ?", id);
    this.sql.exec("DELETE FROM blob_parts WHERE blob_id = ?", id);
    this.sql.exec("DELETE FROM blob_recipients WHERE blob_id = ?", id);
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
