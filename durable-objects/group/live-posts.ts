// The messages a room still stores, in memory, in the order they were stored: what a session's cursor steps
// over when it acknowledges (group/queue.ts), and what a member's share of the room holds, for the quotas.
//
// Each message is known by its seq and its size as a quota counts it. Sizes are kept as running totals, so
// "everything after seq N" is two binary searches however long the queue. Messages only ever leave from the
// front (a message leaves once every member is past it), so the arrays are trimmed there.

export class LivePosts {
  private readonly seqs: number[] = [];
  /** Bytes of every message stored so far up to and including seqs[i] (those that left too). */
  private readonly totals: number[] = [];
  /** The running total just before seqs[0]: what has left. */
  private totalBefore = 0;

  /** `posts` in seq order, each with its size. */
  constructor(posts: Iterable<{ seq: number; bytes: number }> = []) {
    for (const { seq, bytes } of posts) this.add(seq, bytes);
  }

  add(seq: number, bytes: number): void {
    this.seqs.push(seq);
    this.totals.push(this.lastTotal() + bytes);
  }

  get size(): number {
    return this.seqs.length;
  }

  /** The newest stored message's seq, or 0. */
  last(): number {
    return this.seqs[this.seqs.length - 1] ?? 0;
  }

  /** The first stored message after `seq`, if any. */
  after(seq: number): number | undefined {
    return this.seqs[this.firstAfter(seq)];
  }

  /** How many messages, and how many bytes, come after `seq`: what a member past `seq` is still owed. */
  usageAfter(seq: number): { items: number; bytes: number } {
    const i = this.firstAfter(seq);
    const before = i === 0 ? this.totalBefore : this.totals[i - 1]!;
    return { items: this.seqs.length - i, bytes: this.lastTotal() - before };
  }

  /** Forgets every message up to and including `seq`; whether any was there. */
  dropThrough(seq: number): boolean {
    const count = this.firstAfter(seq);
    if (count === 0) return false;
    this.totalBefore = this.totals[count - 1]!;
    this.seqs.splice(0, count);
    this.totals.splice(0, count);
    return true;
  }

  /** The index of the first seq greater than `seq` (the length if none is). */
  private firstAfter(seq: number): number {
    let low = 0;
    let high = this.seqs.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.seqs[middle]! <= seq) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  private lastTotal(): number {
    return this.totals[this.totals.length - 1] ?? this.totalBefore;
  }
}
