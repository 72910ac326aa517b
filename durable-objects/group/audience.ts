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
//
// Which members are on each shard is kept too, in memory only, so that each shard is sent only its
// members' key slots. Where that is not known (a shard read back from SQLite after a restart) the shard is
// sent every slot, and its answer (the members it did not find) makes it known.

/** One shard of the audience. */
interface Entry {
  /** The generation it last joined at (0: read back from SQLite). */
  joinedAt: number;
  /** Members that have (or had) a receiving socket there, each with the generation it joined at. */
  members: Map<string, number>;
  /** Whether `members` is all of them: false for a shard read back from SQLite, until a push answers. */
  complete: boolean;
}

/** Where one push goes: a shard, and the members whose slots it needs (null: every member's). */
export interface PushTarget {
  shard: string;
  members: ReadonlySet<string> | null;
}

export class Audience {
  private entriesByShard: Map<string, Entry> | null = null;
  /** Counts joins since this object started, so a push can tell a join after it from one before. */
  private generation = 0;

  constructor(private readonly sql: SqlStorage) {}

  /** A socket of `member` opened the backlog on `shard`, or the member's home named it. */
  join(shard: string, member: string): void {
    const entries = this.entries();
    let entry = entries.get(shard);
    if (!entry) {
      // The row is written once per shard: a shard already in the audience costs no write.
      this.sql.exec("INSERT OR IGNORE INTO audience (shard) VALUES (?)", shard);
      entry = { joinedAt: 0, members: new Map(), complete: true };
      entries.set(shard, entry);
    }
    entry.joinedAt = ++this.generation;
    entry.members.set(member, entry.joinedAt);
  }

  /**
   * `member` left the group: no slot of theirs goes anywhere now, so no push would unplace them. Their
   * shards stay until a push finds no member there.
   */
  forget(member: string): void {
    for (const entry of this.entries().values()) entry.members.delete(member);
  }

  /** Where a push goes now, and the generation it was sent at (for settle). */
  snapshot(): { targets: PushTarget[]; generation: number } {
    const targets = [...this.entries()].map(([shard, entry]) => ({
      shard,
      members: entry.complete ? new Set(entry.members.keys()) : null,
    }));
    return { targets, generation: this.generation };
  }

  /**
   * A push sent at `generation` with the slots of `sent` (`everyone`: every member's) reached `shard`,
   * which had no receiving socket of the `absent` ones. A member not found there is no longer placed
   * there, and a shard where nobody was found is dropped: unless they joined after the push was sent
   * (their open may have reached the room before their socket was counted there, and then the push
   * missed it by no fault of its own). A push with every slot names everyone who was there.
   */
  settle(
    shard: string,
    generation: number,
    sent: readonly string[],
    absent: readonly string[],
    everyone: boolean,
  ): void {
    const entry = this.entries().get(shard);
    if (!entry) return;
    const missing = new Set(absent);
    let found = 0;
    for (const member of sent) {
      const joinedAt = entry.members.get(member);
      if (!missing.has(member)) {
        found++;
        if (joinedAt === undefined) entry.members.set(member, 0);
      } else if (joinedAt !== undefined && joinedAt <= generation) {
        entry.members.delete(member);
      }
    }
    if (everyone) entry.complete = true;
    if (found > 0 || entry.joinedAt > generation) return;
    this.entries().delete(shard);
    this.sql.exec("DELETE FROM audience WHERE shard = ?", shard);
  }

  /** False in a room that had members before audiences existed, until its members' shards are learned. */
  filled(): boolean {
    return this.sql.exec<{ filled: number }>("SELECT filled FROM audience_state").one().filled === 1;
  }

  markFilled(): void {
    this.sql.exec("UPDATE audience_state SET filled = 1");
  }

  private entries(): Map<string, Entry> {
    this.entriesByShard ??= new Map(
      this.sql
        .exec<{ shard: string }>("SELECT shard FROM audience")
        .toArray()
        .map((row) => [row.shard, { joinedAt: 0, members: new Map(), complete: false }]),
    );
    return this.entriesByShard;
  }
}
