// A user's account and sessions inside their home: signup, login with its failure limits (per address,
// then per username), session checks.
// The server holds only what cannot reveal the password or a private key: public keys, the password-sealed
// private keys (opaque) and SHA-256 of the password-derived auth key. No KDF parameters: clients derive them.

import type { PublicKeys } from "../../protocol/http.js";
import {
  LOGIN_DELAY_FIRST_MS,
  LOGIN_DELAY_MAX_MS,
  LOGIN_FAILURE_MEMORY_MS,
  LOGIN_FREE_FAILURES_PER_ADDRESS,
  LOGIN_KNOWN_ADDRESSES,
  LOGIN_KNOWN_ADDRESS_MS,
} from "../../protocol/limits.js";

export interface AccountRecord {
  username: string;
  authKeyHash: string;
  publicKeys: PublicKeys;
  sealedPrivateKeys: string;
}

export interface NewSession {
  id: string;
  secretHash: string;
  expiresAt: number;
  /** What the user calls the device (login's `deviceName`), or null when it gave none. */
  deviceName: string | null;
}

/** One live session as its user sees it in GET /v1/sessions (the route marks the caller's own). */
export interface SessionRecord {
  id: string;
  deviceName: string | null;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
}

export interface AccountKeys {
  username: string;
  publicKeys: PublicKeys;
  sealedPrivateKeys: string;
}

/** Where a login comes from (a digest of its client address) and the per-username bound in force. */
export interface LoginAttempt {
  address: string;
  failuresPerUserPerHour: number;
}

export type LoginResult =
  | ({ ok: true } & AccountKeys)
  | { ok: false; reason: "no_account" | "wrong_key" }
  | { ok: false; reason: "rate_limited"; scope: "address" | "account"; retryAfterMs: number };

/**
 * Why a session is refused: never issued or logged out ("unknown"), past its lifetime, or ended by
 * someone else's action that its device should hear of (ended-sessions.ts): the session cap or a revoke.
 */
export type RefusalReason = "unknown" | "expired" | "session_cap" | "revoked";

export type SessionCheck = { ok: true; expiresAt: number } | { ok: false; reason: RefusalReason };

/**
 * Last seen is written at most this often per session: every request and connect reads the session row
 * anyway, and a minute is as exact as "last seen" needs to be for a user choosing what to end.
 */
export const LAST_SEEN_RESOLUTION_MS = 60_000;

export class Accounts {
  /** The account's name, once read: it never changes, and every delivery asks for it. */
  private knownUsername: string | null = null;
  /**
   * The live session ids as last read, valid until the earliest of them expires. Sessions change only
   * through this class (login, logout, expiry), which clears it; every delivery reads it.
   */
  private liveSessions: { ids: string[]; validUntil: number } | null = null;

  constructor(private readonly sql: SqlStorage) {}

  exists(): boolean {
    return this.sql.exec("SELECT 1 FROM account").toArray().length > 0;
  }

  username(): string | null {
    if (this.knownUsername !== null) return this.knownUsername;
    const row = this.sql.exec<{ username: string }>("SELECT username FROM account").toArray()[0];
    this.knownUsername = row?.username ?? null;
    return this.knownUsername;
  }

  /**
   * Creates the account and its first session, unless it exists. Atomic: a DO runs one call at a time.
   * The signup's address (a digest, when the Worker gives one) is the account's first known address.
   */
  create(record: AccountRecord, session: NewSession, now: number, address?: string): boolean {
    if (this.exists()) return false;
    this.sql.exec(
      `INSERT INTO account (id, username, auth_hash, public_keys, sealed_private_keys, created_at)
       VALUES (1, ?, ?, ?, ?, ?)`,
      record.username,
      record.authKeyHash,
      JSON.stringify(record.publicKeys),
      record.sealedPrivateKeys,
      now,
    );
    if (address !== undefined) this.rememberAddress(address, now);
    this.addSession(session, now);
    return true;
  }

  publicKeys(): { username: string; publicKeys: PublicKeys } | null {
    const row = this.sql
      .exec<{ username: string; public_keys: string }>("SELECT username, public_keys FROM account")
      .toArray()[0];
    return row ? { username: row.username, publicKeys: JSON.parse(row.public_keys) as PublicKeys } : null;
  }

  /**
   * Checks the auth key hash and opens a session. Failures are limited per client address: free up to
   * LOGIN_FREE_FAILURES_PER_ADDRESS, then that address waits a doubling delay (even with the right key,
   * so guessing from it costs real time), while every other address logs in as before. Over all
   * addresses, `failuresPerUserPerHour` failures refuse addresses this account has never logged in from
   * until the hour has passed: a guesser with many addresses is stopped, and the owner's usual addresses
   * still get in.
   */
  login(authKeyHash: string, session: NewSession, attempt: LoginAttempt, now: number): LoginResult {
    const row = this.sql
      .exec<{ username: string; auth_hash: string; public_keys: string; sealed_private_keys: string }>(
        "SELECT username, auth_hash, public_keys, sealed_private_keys FROM account",
      )
      .toArray()[0];
    if (!row) return { ok: false, reason: "no_account" };

    const forgetBefore = now - LOGIN_FAILURE_MEMORY_MS;
    this.sql.exec("DELETE FROM login_failures WHERE at < ?", forgetBefore);
    this.sql.exec(
      "DELETE FROM login_address_failures WHERE last_failure_at < ? AND blocked_until <= ?",
      forgetBefore,
      now,
    );
    const { address } = attempt;
    const fromAddress = this.sql
      .exec<{ failures: number; blocked_until: number }>(
        "SELECT failures, blocked_until FROM login_address_failures WHERE address = ?",
        address,
      )
      .toArray()[0];
    if (fromAddress && fromAddress.blocked_until > now)
      return {
        ok: false,
        reason: "rate_limited",
        scope: "address",
        retryAfterMs: fromAddress.blocked_until - now,
      };
    if (!this.isKnownAddress(address, now)) {
      const all = this.sql
        .exec<{ count: number; oldest: number | null }>(
          "SELECT COUNT(*) AS count, MIN(at) AS oldest FROM login_failures",
        )
        .toArray()[0]!;
      if (all.count >= attempt.failuresPerUserPerHour) {
        const retryAfterMs = Math.max(1000, (all.oldest ?? now) + LOGIN_FAILURE_MEMORY_MS - now);
        return { ok: false, reason: "rate_limited", scope: "account", retryAfterMs };
      }
    }
    if (!constantTimeEqual(authKeyHash, row.auth_hash)) {
      this.sql.exec("INSERT INTO login_failures (at) VALUES (?)", now);
      const failures = (fromAddress?.failures ?? 0) + 1;
      const over = failures - LOGIN_FREE_FAILURES_PER_ADDRESS;
      const blockedUntil =
        over > 0 ? now + Math.min(LOGIN_DELAY_MAX_MS, LOGIN_DELAY_FIRST_MS * 2 ** (over - 1)) : 0;
      this.sql.exec(
        `INSERT INTO login_address_failures (address, failures, last_failure_at, blocked_until)
         VALUES (?, ?, ?, ?)
         ON CONFLICT (address) DO UPDATE SET
           failures = excluded.failures, last_failure_at = excluded.last_failure_at,
           blocked_until = excluded.blocked_until`,
        address,
        failures,
        now,
        blockedUntil,
      );
      return { ok: false, reason: "wrong_key" };
    }
    this.sql.exec("DELETE FROM login_address_failures WHERE address = ?", address);
    this.rememberAddress(address, now);
    this.addSession(session, now);
    return {
      ok: true,
      username: row.username,
      publicKeys: JSON.parse(row.public_keys) as PublicKeys,
      sealedPrivateKeys: row.sealed_private_keys,
    };
  }

  /** Whether this account has logged in from `address` recently (signup counts: see create). */
  private isKnownAddress(address: string, now: number): boolean {
    return (
      this.sql
        .exec(
          "SELECT 1 FROM login_addresses WHERE address = ? AND last_success_at > ?",
          address,
          now - LOGIN_KNOWN_ADDRESS_MS,
        )
        .toArray().length > 0
    );
  }

  /** Keeps the LOGIN_KNOWN_ADDRESSES most recent addresses that logged in. */
  rememberAddress(address: string, now: number): void {
    this.sql.exec(
      `INSERT INTO login_addresses (address, last_success_at) VALUES (?, ?)
       ON CONFLICT (address) DO UPDATE SET last_success_at = excluded.last_success_at`,
      address,
      now,
    );
    this.sql.exec(
      `DELETE FROM login_addresses WHERE address NOT IN
         (SELECT address FROM login_addresses ORDER BY last_success_at DESC LIMIT ?)`,
      LOGIN_KNOWN_ADDRESSES,
    );
  }

  /** Checks a token's session and, at most once per LAST_SEEN_RESOLUTION_MS, records it as seen now. */
  checkSession(sessionId: string, secretHash: string, now: number): SessionCheck {
    const row = this.sql
      .exec<{ secret_hash: string; expires_at: number; last_seen_at: number }>(
        "SELECT secret_hash, expires_at, last_seen_at FROM sessions WHERE id = ?",
        sessionId,
      )
      .toArray()[0];
    if (!row || !constantTimeEqual(secretHash, row.secret_hash)) return { ok: false, reason: "unknown" };
    if (row.expires_at <= now) return { ok: false, reason: "expired" };
    if (now - row.last_seen_at >= LAST_SEEN_RESOLUTION_MS) this.touch(sessionId, now);
    return { ok: true, expiresAt: row.expires_at };
  }

  /** Records that a session was used now (a socket closing, which no request marks). */
  touch(sessionId: string, now: number): void {
    this.sql.exec("UPDATE sessions SET last_seen_at = ? WHERE id = ?", now, sessionId);
  }

  /** The live sessions, oldest first, for the user to see and choose from. */
  list(now: number): SessionRecord[] {
    return this.sql
      .exec<SessionRow>(
        `SELECT ${SESSION_COLUMNS} FROM sessions WHERE expires_at > ? ORDER BY created_at, id`,
        now,
      )
      .toArray()
      .map(sessionRecord);
  }

  /** One live session, with its secret's hash (kept by ended-sessions.ts when someone else ends it). */
  session(sessionId: string, now: number): (SessionRecord & { secretHash: string }) | null {
    const row = this.sql
      .exec<SessionRow & { secret_hash: string }>(
        `SELECT ${SESSION_COLUMNS}, secret_hash FROM sessions WHERE id = ? AND expires_at > ?`,
        sessionId,
        now,
      )
      .toArray()[0];
    return row ? { ...sessionRecord(row), secretHash: row.secret_hash } : null;
  }

  /**
   * The sessions to end so that at most `cap` stay live, `keep` (the new login) never among them: the
   * longest idle first, where a session with a socket connected right now (`connected`) counts as in use.
   */
  sessionsOverCap(cap: number, keep: string, connected: ReadonlySet<string>, now: number): SessionRecord[] {
    const live = this.list(now);
    const excess = live.length - Math.max(1, cap);
    if (excess <= 0) return [];
    return live
      .filter((session) => session.id !== keep)
      .sort(
        (a, b) =>
          Number(connected.has(a.id)) - Number(connected.has(b.id)) ||
          a.lastSeenAt - b.lastSeenAt ||
          a.createdAt - b.createdAt,
      )
      .slice(0, excess);
  }

  /** Live sessions with their expiry, for a group room that queues this user's group messages. */
  liveSessionsWithExpiry(now: number): Array<{ id: string; expiresAt: number }> {
    return this.sql
      .exec<{ id: string; expires_at: number }>(
        "SELECT id, expires_at FROM sessions WHERE expires_at > ?",
        now,
      )
      .toArray()
      .map((row) => ({ id: row.id, expiresAt: row.expires_at }));
  }

  /** Session ids that can still receive: the recipients of each new message's deliveries. */
  liveSessionIds(now: number): string[] {
    if (this.liveSessions && now < this.liveSessions.validUntil) return this.liveSessions.ids;
    const rows = this.sql
      .exec<{ id: string; expires_at: number }>(
        "SELECT id, expires_at FROM sessions WHERE expires_at > ?",
        now,
      )
      .toArray();
    this.liveSessions = {
      ids: rows.map((row) => row.id),
      validUntil: Math.min(Number.POSITIVE_INFINITY, ...rows.map((row) => row.expires_at)),
    };
    return this.liveSessions.ids;
  }

  removeSession(sessionId: string): void {
    this.liveSessions = null;
    this.sql.exec("DELETE FROM sessions WHERE id = ?", sessionId);
  }

  /** Drops expired sessions; returns their ids so their queues can be dropped too. */
  removeExpiredSessions(now: number): string[] {
    this.liveSessions = null;
    return this.sql
      .exec<{ id: string }>("DELETE FROM sessions WHERE expires_at <= ? RETURNING id", now)
      .toArray()
      .map((row) => row.id);
  }

  private addSession(session: NewSession, now: number): void {
    this.liveSessions = null;
    this.sql.exec(
      `INSERT INTO sessions (id, secret_hash, device_name, created_at, last_seen_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
      session.id,
      session.secretHash,
      session.deviceName,
      now,
      now,
      session.expiresAt,
    );
  }
}

const SESSION_COLUMNS = "id, device_name, created_at, last_seen_at, expires_at";

type SessionRow = {
  id: string;
  device_name: string | null;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
};

function sessionRecord(row: SessionRow): SessionRecord {
  return {
    id: row.id,
    deviceName: row.device_name,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    expiresAt: row.expires_at,
  };
}

/** Compares two hex digests without an early exit, so timing does not reveal how much matched. */
function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}
