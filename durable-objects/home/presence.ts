// Where a user is connected right now: which shards hold how many of their sockets, per session.
// Persisted, because the home may be evicted from memory while the user's sockets live on in a shard;
// a shard that answers a push with zero sockets is stale (it restarted) and is dropped.

export class Presence {
  /** The shards as last read; every change goes through this class, which clears it. */
  private knownShards: string[] | null = null;

  constructor(private readonly sql: SqlStorage) {}

  attach(shard: string, sessionId: string): void {
    this.knownShards = null;
    this.sql.exec(
      `INSERT INTO presence (shard, session_id, sockets) VALUES (?, ?, 1)
       ON CONFLICT (shard, session_id) DO UPDATE SET sockets = sockets + 1`,
      shard,
      sessionId,
    );
  }

  detach(shard: string, sessionId: string): void {
    this.knownShards = null;
    this.sql.exec(
      "UPDATE presence SET sockets = sockets - 1 WHERE shard = ? AND session_id = ?",
      shard,
      sessionId,
    );
    this.sql.exec("DELETE FROM presence WHERE sockets <= 0");
  }

  shards(): string[] {
    this.knownShards ??= this.sql
      .exec<{ shard: string }>("SELECT DISTINCT shard FROM presence")
      .toArray()
      .map((row) => row.shard);
    return this.knownShards;
  }

  /** Sessions with a receiving socket open somewhere: in use now, whatever their last-seen time says. */
  connectedSessions(): Set<string> {
    return new Set(
      this.sql
        .exec<{ session_id: string }>("SELECT DISTINCT session_id FROM presence")
        .toArray()
        .map((row) => row.session_id),
    );
  }

  forgetShard(shard: string): void {
    this.knownShards = null;
    this.sql.exec("DELETE FROM presence WHERE shard = ?", shard);
  }

  forgetSession(sessionId: string): void {
    this.knownShards = null;
    this.sql.exec("DELETE FROM presence WHERE session_id = ?", sessionId);
  }
}
