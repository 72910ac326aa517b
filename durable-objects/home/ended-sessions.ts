// Sessions ended by something other than their own logout: the session cap (a new login elsewhere) or a
// revoke from another device. Kept until the session would have expired, so its device is told why.
//
// Only the token's holder learns the reason: a record answers for the session id and secret hash alike,
// as the live session did. The table is bounded: by the sessions' lifetime and by ENDED_SESSIONS_KEPT.

export type EndReason = "session_cap" | "revoked";

/** Most ended sessions remembered per account; older ones get the plain "revoked or unknown" answer. */
export const ENDED_SESSIONS_KEPT = 64;

export interface EndedSession {
  id: string;
  secretHash: string;
  expiresAt: number;
}

export class EndedSessions {
  constructor(private readonly sql: SqlStorage) {}

  record(session: EndedSession, reason: EndReason, now: number): void {
    this.sql.exec("DELETE FROM ended_sessions WHERE expires_at <= ?", now);
    this.sql.exec(
      `INSERT OR REPLACE INTO ended_sessions (id, secret_hash, reason, ended_at, expires_at)
       VALUES (?, ?, ?, ?, ?)`,
      session.id,
      session.secretHash,
      reason,
      now,
      session.expiresAt,
    );
    this.sql.exec(
      `DELETE FROM ended_sessions WHERE id NOT IN
         (SELECT id FROM ended_sessions ORDER BY ended_at DESC, id LIMIT ?)`,
      ENDED_SESSIONS_KEPT,
    );
  }

  /** Why this session (id and secret hash both) was ended, if it was ended by the cap or a revoke. */
  reason(sessionId: string, secretHash: string, now: number): EndReason | null {
    const row = this.sql
      .exec<{ secret_hash: string; reason: EndReason }>(
        "SELECT secret_hash, reason FROM ended_sessions WHERE id = ? AND expires_at > ?",
        sessionId,
        now,
      )
      .toArray()[0];
    return row && row.secret_hash === secretHash ? row.reason : null;
  }
}
