// A room's audience: the shards that may hold a receiving socket of one of its members, the only ones a
// message is pushed to. Shard names are the balancer's choice and come and go with load, so the room
// cannot list them; it learns them instead:
// - a member's socket opening the group's backlog (group-room.ts openBacklog) names its shard. The room
//   is single-threaded, so a push sent after it saw the open reaches that socket, and anything stored
//   before is in the backlog the socket is reading;
// - a member added while already connected never opens that backlog: their home names the shards of
//   their receiving sockets when the room updates their group list (trackGroup);
// - a push that finds no receiving socket of any member on a shard drops it, unless a socket joined from
//   there after that push was sent (the generation each entry joined at says which came first).
// Persisted (one row per shard, written when it joins, not per message): a room evicted from memory still
// has members' sockets in hibernated shards.

export class Audience {
  /** Each shard and the generation it last joined at (0: read back from SQLite); null until read. */
  private joined: Map<string, number> | null = null;
  /** Counts joins since this object started, so a push can tell a join after it from one before. */
  private generation = 0;

  constructor(private readonly sql: SqlStorage) {}

  /** A socket of a member opened the backlog on `shard`, or a member's home named it. */
  join(shard: string): void {
    const entries = this.entries();
    // The row is written once per shard: a shard already in the audience costs no write.
    if (!entries.has(shard)) this.sql.exec("INSERT OR IGNORE INTO audience (shard) VALUES (?)", shard);
    entries.set(shard, ++this.generation);
  }

  /** The shards a push goes to now, and the generation it was sent at (for dropUnlessJoinedSince). */
  snapshot(): { shards: string[]; generation: number } {
    return { shards: [...this.entries().keys()], generation: this.generation };
  }

  /**
   * A push sent at `generation` found no receiving socket of any member on `shard`: the shard is dropped,
   * unless a socket joined from it after that push was sent (its open may have reached the room before
   * the socket reached the shard's count, and then the push missed it by no fault of its own).
   */
  dropUnlessJoinedSince(shard: string, generation: number): void {
    const entries = this.entries();
    const joinedAt = entries.get(shard);
    if (joinedAt === undefined || joinedAt > generation) return;
    entries.delete(shard);
    this.sql.exec("DELETE FROM audience WHERE shard = ?", shard);
  }

  /** False in a room that had members before audiences existed, until its members' shards are learned. */
  filled(): boolean {
    return this.sql.exec<{ filled: number }>("SELECT filled FROM audience_state").one().filled === 1;
  }

  markFilled(): void {
    this.sql.exec("UPDATE audience_state SET filled = 1");
  }

  private entries(): Map<string, number> {
    this.joined ??= new Map(
      this.sql
        .exec<{ shard: string }>("SELECT shard FROM audience")
        .toArray()
        .map((row) => [row.shard, 0]),
    );
    return this.joined;
  }
}
