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

export type SessionCheck = { ok: true; expiresAt: number } | { ok: false; reason: "unknown" | "expired" };

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

  checkSession(sessionId: string, secretHash: string, now: number): SessionCheck {
    const row = this.sql
      .exec<{ secret_hash: string; expires_at: number }>(
        "SELECT secret_hash, expires_at FROM sessions WHERE id = ?",
        sessionId,
      )
      .toArray()[0];
    if (!row || !constantTimeEqual(secretHash, row.secret_hash)) return { ok: false, reason: "unknown" };
    if (row.expires_at <= now) return { ok: false, reason: "expired" };
    return { ok: true, expiresAt: row.expires_at };
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
      "INSERT INTO sessions (id, secret_hash, created_at, expires_at) VALUES (?, ?, ?, ?)",
      session.id,
      session.secretHash,
      now,
      session.expiresAt,
    );
  }
}

/** Compares two hex digests without an early exit, so timing does not reveal how much matched. */
function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}
