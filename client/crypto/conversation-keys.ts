// Conversation keys: why a message costs one RSA operation per recipient per week, not per message.
// A sender wraps one random key per recipient with RSA-OAEP and reuses the wrap; each message key is then
// boxed under it with secretbox. The recipient unwraps each distinct wrap once and caches the result.
//
// Both classes hold secret keys and serialise to plain JSON for the CLI's state file: keep it owner-only.

import { z } from "zod";
import { sha256, toHex } from "../../protocol/bytes.js";
import { KEY_BYTES } from "../../protocol/envelope.js";
import { USERNAME_PATTERN } from "../../protocol/limits.js";
import type { PlatformKey } from "../platform.js";
import { fromBase64, toBase64 } from "./base64.js";
import { CryptoError } from "./errors.js";
import { randomBytes, rsaWrap } from "./primitives.js";

/** A conversation key is replaced after this long, bounding how much one leaked key exposes. */
export const CONVERSATION_KEY_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;
/** …or after this many messages, whichever comes first. */
export const CONVERSATION_KEY_MAX_MESSAGES = 10_000;
export const UNWRAP_CACHE_CAPACITY = 4096;

export interface ConversationKey {
  key: Uint8Array;
  /** rsaWrap(recipient's encryption key, key): goes unchanged into every slot until rotation. */
  wrap: Uint8Array;
}

// Arrays rather than objects keyed by username: "__proto__" is a valid username, and a plain object
// keyed by it would change the object's prototype instead of storing an entry.
export type SenderKeyringJson = {
  v: 1;
  recipients: Array<{
    username: string;
    key: string;
    wrap: string;
    fingerprint: string;
    createdAt: number;
    messages: number;
  }>;
};

/** [SHA-256 hex of a wrap, base64 conversation key], least recently used first. */
export type UnwrapCacheJson = { v: 1; entries: Array<[string, string]> };

type Entry = ConversationKey & { fingerprint: string; createdAt: number; messages: number };

// Keys and wraps are strings here; fromJSON decodes them strictly (fromBase64) and checks key sizes.
const KeyringSchema = z.strictObject({
  v: z.literal(1),
  recipients: z.array(
    z.strictObject({
      username: z.string().regex(USERNAME_PATTERN),
      key: z.string(),
      wrap: z.string(),
      fingerprint: z.string(),
      createdAt: z.int().min(0),
      messages: z.int().min(1),
    }),
  ),
});
const CacheSchema = z.strictObject({
  v: z.literal(1),
  entries: z.array(z.tuple([z.string().regex(/^[0-9a-f]{64}$/), z.string()])),
});

/** The sender's side: one current conversation key per recipient username. */
export class SenderKeyring {
  private readonly entries = new Map<string, Entry>();

  /**
   * The key and wrap to use for one message to `username`, counting the message. A new key is made
   * (one RSA wrap) when there is none, when the recipient's fingerprint changed (a new key pair must not
   * receive keys wrapped for the old one, nor the old keep receiving them), when it is older than
   * CONVERSATION_KEY_MAX_AGE_MS or has served CONVERSATION_KEY_MAX_MESSAGES, or when the clock went back.
   */
  async forRecipient(
    username: string,
    encryptionPublicKey: PlatformKey,
    recipientFingerprint: string,
    now: number,
  ): Promise<ConversationKey> {
    const current = this.entries.get(username);
    if (current && isUsable(current, recipientFingerprint, now)) {
      current.messages += 1;
      return { key: current.key, wrap: current.wrap };
    }
    const key = randomBytes(KEY_BYTES);
    const entry: Entry = {
      key,
      wrap: await rsaWrap(encryptionPublicKey, key),
      fingerprint: recipientFingerprint,
      createdAt: now,
      messages: 1,
    };
    this.entries.set(username, entry);
    return { key: entry.key, wrap: entry.wrap };
  }

  /** Forget a recipient's key, e.g. after the user re-verified them; the next message wraps a new one. */
  forget(username: string): void {
    this.entries.delete(username);
  }

  toJSON(): SenderKeyringJson {
    return {
      v: 1,
      recipients: [...this.entries].map(([username, entry]) => ({
        username,
        key: toBase64(entry.key),
        wrap: toBase64(entry.wrap),
        fingerprint: entry.fingerprint,
        createdAt: entry.createdAt,
        messages: entry.messages,
      })),
    };
  }

  /** Throws CryptoError on anything toJSON would not have written; the caller may then start afresh. */
  static fromJSON(json: unknown): SenderKeyring {
    const parsed = KeyringSchema.safeParse(json);
    if (!parsed.success) throw new CryptoError("the stored sender keyring is malformed");
    const keyring = new SenderKeyring();
    for (const { username, key, wrap, ...rest } of parsed.data.recipients) {
      keyring.entries.set(username, {
        key: decodeKey(key, "sender keyring"),
        wrap: fromBase64(wrap, "stored conversation key wrap"),
        ...rest,
      });
    }
    return keyring;
  }
}

/**
 * The recipient's side: wrap → conversation key, so each distinct wrap costs one RSA decryption (~2.5 ms)
 * instead of one per message. Keyed by SHA-256 of the wrap; evicts the least recently used entry past
 * `capacity`. Keep one cache per local account: an entry holds a key only our own private key unwrapped.
 */
export class UnwrapCache {
  private readonly entries = new Map<string, Uint8Array>();

  constructor(readonly capacity = UNWRAP_CACHE_CAPACITY) {}

  get size(): number {
    return this.entries.size;
  }

  get(wrap: Uint8Array): Uint8Array | undefined {
    const id = wrapId(wrap);
    const key = this.entries.get(id);
    if (key) this.touch(id, key);
    return key;
  }

  remember(wrap: Uint8Array, key: Uint8Array): void {
    this.touch(wrapId(wrap), key);
    this.evict();
  }

  toJSON(): UnwrapCacheJson {
    return { v: 1, entries: [...this.entries].map(([id, key]) => [id, toBase64(key)]) };
  }

  /** Throws CryptoError on anything toJSON would not have written; an empty cache is always safe instead. */
  static fromJSON(json: unknown, capacity = UNWRAP_CACHE_CAPACITY): UnwrapCache {
    const parsed = CacheSchema.safeParse(json);
    if (!parsed.success) throw new CryptoError("the stored unwrap cache is malformed");
    const cache = new UnwrapCache(capacity);
    for (const [id, key] of parsed.data.entries) cache.touch(id, decodeKey(key, "unwrap cache"));
    cache.evict();
    return cache;
  }

  private touch(id: string, key: Uint8Array): void {
    this.entries.delete(id);
    this.entries.set(id, key);
  }

  private evict(): void {
    // Map iterates in insertion order, and touch() re-inserts: the first entry is the least recently used.
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }
}

function isUsable(entry: Entry, fingerprint: string, now: number): boolean {
  const age = now - entry.createdAt;
  return (
    entry.fingerprint === fingerprint &&
    entry.messages < CONVERSATION_KEY_MAX_MESSAGES &&
    age >= 0 &&
    age < CONVERSATION_KEY_MAX_AGE_MS
  );
}

function wrapId(wrap: Uint8Array): string {
  return toHex(sha256(wrap));
}

function decodeKey(text: string, where: string): Uint8Array {
  const key = fromBase64(text, `key in the ${where}`);
  if (key.length !== KEY_BYTES) throw new CryptoError(`a key in the ${where} is not ${KEY_BYTES} bytes`);
  return key;
}
