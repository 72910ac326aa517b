// Storage quotas, read from the deployment's settings (wrangler.toml [vars], docs/SECURITY.md): how much a
// recipient's queue may hold, how much of it one sender may fill, and how much a user may keep in blobs.

/**
 * A limit on what one queue holds, in items and in bytes (over either, nothing more is stored), or what it
 * holds now. A type, not an interface, so that it can type a SQL row.
 */
export type QueueLimit = {
  items: number;
  bytes: number;
};

/** A recipient's queue (a user's home, or a member's share of a group's room) and one sender's part of it. */
export interface QueueQuotas {
  perRecipient: QueueLimit;
  perSender: QueueLimit;
}

export interface BlobQuota {
  /** Blobs a user may have uploading or waiting to be fetched at once. */
  blobs: number;
  /** Their announced ciphertext sizes together. */
  bytes: number;
}

type QuotaSetting =
  | "QUEUE_ITEMS_PER_RECIPIENT"
  | "QUEUE_BYTES_PER_RECIPIENT"
  | "QUEUE_ITEMS_PER_SENDER"
  | "QUEUE_BYTES_PER_SENDER"
  | "BLOBS_PER_OWNER"
  | "BLOB_BYTES_PER_OWNER";

export function queueQuotas(env: Env): QueueQuotas {
  return {
    perRecipient: {
      items: setting(env, "QUEUE_ITEMS_PER_RECIPIENT"),
      bytes: setting(env, "QUEUE_BYTES_PER_RECIPIENT"),
    },
    perSender: {
      items: setting(env, "QUEUE_ITEMS_PER_SENDER"),
      bytes: setting(env, "QUEUE_BYTES_PER_SENDER"),
    },
  };
}

export function blobQuota(env: Env): BlobQuota {
  return { blobs: setting(env, "BLOBS_PER_OWNER"), bytes: setting(env, "BLOB_BYTES_PER_OWNER") };
}

/** Whether one more item of `bytes` fits beside what `used` already holds. */
export function fits(used: QueueLimit, bytes: number, limit: QueueLimit): boolean {
  return used.items + 1 <= limit.items && used.bytes + bytes <= limit.bytes;
}

/** Which quota an item would break: its recipient's whole queue, or the sender's part of it. */
export interface QuotaBreach {
  scope: "recipient" | "sender";
  limit: QueueLimit;
}

/** What the sender is told (an `error` frame with code `quota_exceeded`): whose queue, which limit, what to do. */
export function quotaMessage(recipient: string, breach: QuotaBreach): string {
  const limit = `${breach.limit.items} messages or ${formatBytes(breach.limit.bytes)}`;
  return breach.scope === "sender"
    ? `${recipient} has not yet received what you sent before: at most ${limit} from one sender may wait for them; send again once they have caught up`
    : `${recipient}'s queue is full (at most ${limit} may wait for them); send again once they have caught up`;
}

/** Bytes for people: "8 MiB", "1.5 GiB", "300 bytes". */
export function formatBytes(bytes: number): string {
  const units = ["KiB", "MiB", "GiB"];
  if (bytes < 1024) return `${bytes} bytes`;
  let value = bytes;
  let unit = "bytes";
  for (const next of units) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
}

/**
 * A quota setting; one that is missing or not a positive number is a deployment mistake, and is refused
 * loudly rather than read as "no limit".
 */
function setting(env: Env, name: QuotaSetting): number {
  const value = Number(env[name]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}
