// Every limit and naming rule that client and server must agree on, in one place.
// docs/PROTOCOL.md quotes these numbers; change both together.

/** Usernames: 3–32 of a-z 0-9 _ -, compared without regard to case (stored lower-case). */
export const USERNAME_PATTERN = /^[a-z0-9_-]{3,32}$/;

/** Group names follow the same rule as usernames, in their own namespace. */
export const GROUP_NAME_PATTERN = /^[a-z0-9_-]{3,32}$/;

/** Longest message text a client may send, in UTF-8 bytes. */
export const MAX_TEXT_BYTES = 64 * 1024;

/** Longest attachment descriptor (inside the encrypted payload), in UTF-8 bytes. */
export const MAX_ATTACHMENT_BYTES = 4 * 1024;

/** Plaintext payloads are zero-padded to a multiple of this, so ciphertext length leaks little. */
export const PAYLOAD_PADDING = 256;

/** Largest sealed payload the server accepts: text + descriptor + framing + padding + MAC. */
export const MAX_CIPHERTEXT_BYTES = 72 * 1024;

/** Most recipients one envelope may carry key slots for (a group's size limit). */
export const MAX_RECIPIENTS = 1024;

/** Largest WebSocket frame either side sends or accepts (a 1024-member group message fits). */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** Most message ids one acknowledgement frame may carry. */
export const MAX_ACK_IDS = 1000;

/**
 * The password KDF's cost, fixed by the protocol (PROTOCOL §3.2): scrypt N = 2^16, r = 8, p = 1, 64 MiB.
 * No server sends or stores it, so none can lower it to cheapen guesses or raise it to exhaust a client;
 * changing it is a new protocol version.
 */
export const PASSWORD_KDF_COST = { logN: 16, r: 8, p: 1 } as const;

/** Sessions expire this long after login; logout revokes them at once. */
export const SESSION_LIFETIME_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * Failed logins are limited per (username, client address): this many are free, then each further one
 * makes that address wait, from LOGIN_DELAY_FIRST_MS doubling up to LOGIN_DELAY_MAX_MS. Other addresses
 * are not affected (the per-username bound over all addresses is LOGIN_FAILURES_PER_USER_PER_HOUR).
 */
export const LOGIN_FREE_FAILURES_PER_ADDRESS = 5;
export const LOGIN_DELAY_FIRST_MS = 1000;
export const LOGIN_DELAY_MAX_MS = 15 * 60 * 1000;
/** Failures are remembered this long after an address's last one (and counted per username this long). */
export const LOGIN_FAILURE_MEMORY_MS = 60 * 60 * 1000;
/** An address that logged in to an account stays trusted by it for this long, up to this many addresses. */
export const LOGIN_KNOWN_ADDRESS_MS = 30 * 24 * 60 * 60 * 1000;
export const LOGIN_KNOWN_ADDRESSES = 32;

/** Lower-case a user-typed name; returns null if it breaks the rule. */
export function normalizeName(raw: string, pattern: RegExp = USERNAME_PATTERN): string | null {
  const name = raw.toLowerCase();
  return pattern.test(name) ? name : null;
}

// ---- files ----------------------------------------------------------------------------------------

/** Largest file a client may send, in plaintext bytes. */
export const MAX_FILE_BYTES = 128 * 1024 * 1024;

/** Files are sealed in chunks of this many plaintext bytes, each with its own 16-byte MAC. */
export const FILE_CHUNK_BYTES = 64 * 1024;

/** Ciphertext is uploaded in parts of this size (the last may be shorter), each its own request. */
export const BLOB_PART_BYTES = 8 * 1024 * 1024;

/** An uploaded blob is deleted after this long even if not every recipient fetched it. */
export const BLOB_LIFETIME_MS = 7 * 24 * 60 * 60 * 1000;

/** Ciphertext size of a sealed file: every chunk gains a MAC; an empty file is one empty chunk. */
export function sealedFileSize(plaintextBytes: number): number {
  const chunks = Math.max(1, Math.ceil(plaintextBytes / FILE_CHUNK_BYTES));
  return plaintextBytes + chunks * 16;
}
