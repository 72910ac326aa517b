// Where a user is connected right now: how many of their receiving sockets each shard holds, so that a
// stored message is pushed only where someone can take it.
//
// Kept in memory, never written: a connect and a close write nothing. A committed write on a home that a
// connect had just woken was most of a login's cost (the login storm's runtime CPU per login fell from
// 5.2–6.4 ms to 3.4 ms without it, in `npm run bench`).
//
// The shards hold the truth and this is a cache of it that may err only on the side of too many: a shard
// counted too high costs one push that reaches nobody (it answers 0 and is dropped), while one counted too
// low would leave a live socket without its messages until it reconnects. So:
// - After a wake-up, memory is empty though the user's sockets live on in their shards: the first push
//   asks every shard how many sockets of the user it holds.
// - Sockets attached since the wake-up are added to those answers, even if an answer already counted them.
// - A close lowers a count only once the counts are known; before, the answers reflect it or a push will.

/** The shards' own counts of the user's receiving sockets, by shard name; a shard that cannot say, 1. */
export type AskShards = () => Promise<Map<string, number>>;

export class Presence {
  /** Null from a wake-up until the shards have been asked. */
  private counts: Map<string, number> | null = null;
  private readonly attachedSinceWake = new Map<string, number>();
  private asking: Promise<Map<string, number>> | null = null;

  constructor(private readonly askShards: AskShards) {}

  attach(shard: string): void {
    const counts = this.counts ?? this.attachedSinceWake;
    counts.set(shard, (counts.get(shard) ?? 0) + 1);
  }

  detach(shard: string): void {
    if (!this.counts) return;
    const left = (this.counts.get(shard) ?? 0) - 1;
    if (left > 0) this.counts.set(shard, left);
    else this.counts.delete(shard);
  }

  /** The shards holding a receiving socket of the user, asking them first after a wake-up. */
  async shards(): Promise<string[]> {
    if (!this.counts) {
      this.asking ??= this.askShards().finally(() => (this.asking = null));
      const answers = await this.asking;
      // Concurrent callers share one asking; the first to resume merges, in the same turn as the answer.
      if (!this.counts) {
        const counts = new Map([...answers].filter(([, sockets]) => sockets > 0));
        for (const [shard, sockets] of this.attachedSinceWake)
          counts.set(shard, (counts.get(shard) ?? 0) + sockets);
        this.attachedSinceWake.clear();
        this.counts = counts;
      }
    }
    return [...this.counts.keys()];
  }

  /** A push found no socket there: the shard restarted or the sockets closed unseen. */
  forgetShard(shard: string): void {
    this.counts?.delete(shard);
  }
}
