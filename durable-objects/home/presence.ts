// Where a user is connected right now: which shards hold how many of their sockets, per session.
// Receiving sockets (`sockets`) are where pushes go; send-only ones (`senders`, `?receive=0`) get no
// pushes but are counted too, so that ending a session reaches every shard that holds one of its sockets.
// Persisted, because the home may be evicted from memory while the user's sockets live on in a shard;
// a shard that answers a push with zero sockets is stale (it restarted), and its receiving count is
// dropped.

/** Which count a socket is in: a receiving socket or a send-only one. */
export type SocketRole = "receiving" | "sending";

/** What one socket adds to a row's two counts. */
function counts(role: SocketRole): [sockets: number, senders: number] {
  return role === "receiving" ? [1, 0] : [0, 1];
}

export class Presence {
  /** The shards as last read; every change goes through this class, which clears it. */
  private knownShards: string[] | null = null;

  constructor(private readonly sql: SqlStorage) {}

  attach(shard: string, sessionId: string, role: SocketRole = "receiving"): void {
    this.knownShards = null;
    this.sql.exec(
      `INSERT INTO presence (shard, session_id, sockets, senders) VALUES (?, ?, ?, ?)
       ON CONFLICT (shard, session_id) DO UPDATE
         SET sockets = sockets + excluded.sockets, senders = senders + excluded.senders`,
      shard,
      sessionId,
      ...counts(role),
    );
  }

  detach(shard: string, sessionId: string, role: SocketRole = "receiving"): void {
    this.knownShards = null;
    this.sql.exec(
      "UPDATE presence SET sockets = sockets - ?, senders = senders - ? WHERE shard = ? AND session_id = ?",
      ...counts(role),
      shard,
      sessionId,
    );
    this.sql.exec("DELETE FROM presence WHERE sockets <= 0 AND senders <= 0");
  }

  /** The shards that hold a receiving socket of the user: where pushes go. */
  shards(): string[] {
    this.knownShards ??= this.sql
      .exec<{ shard: string }>("SELECT DISTINCT shard FROM presence WHERE sockets > 0")
      .toArray()
      .map((row) => row.shard);
    return this.knownShards;
  }

  /** Sessions with a receiving socket open somewhere: in use now, whatever their last-seen time says. */
  connectedSessions(): Set<string> {
    return new Set(
      this.sql
        .exec<{ session_id: string }>("SELECT DISTINCT session_id FROM presence WHERE sockets > 0")
        .toArray()
        .map((row) => row.session_id),
    );
  }

  /**
   * A push found no receiving socket on `shard`: pushes stop going there. Send-only counts stay: the
   * shard may hold those still, and a session that ends must reach them (at worst a shard that restarted
   * is asked once, in vain, to close what it no longer has).
   */
  forgetShard(shard: string): void {
    this.knownShards = null;
    this.sql.exec("UPDATE presence SET sockets = 0 WHERE shard = ?", shard);
    this.sql.exec("DELETE FROM presence WHERE shard = ? AND senders <= 0", shard);
  }

  /** The session ended: forgets it, and returns the shards that hold any of its sockets. */
  forgetSession(sessionId: string): string[] {
    this.knownShards = null;
    // Every row of a DELETE … RETURNING is read: an unread cursor leaves the statement open.
    return this.sql
      .exec<{ shard: string }>("DELETE FROM presence WHERE session_id = ? RETURNING shard", sessionId)
      .toArray()
      .map((row) => row.shard);
  }
}
