// Calls from one Durable Object to another are not guaranteed to arrive in the order they were made
// (each runs in its own request context). An OrderedBatcher keeps one call in flight per destination
// and sends whatever queued up meanwhile as the next batch: order is kept, and under load many
// messages share one call instead of paying one round trip each.

interface Pending<Item, Result> {
  item: Item;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
}

export class OrderedBatcher<Item, Result> {
  private readonly queue: Pending<Item, Result>[] = [];
  private flushing = false;

  /**
   * `send` must return one result per item, in the same order. With `lingerMs`, each batch waits that
   * long for company before it goes: for work nobody waits on, where fewer, larger calls are cheaper. A
   * function is asked before each batch, for a linger that changes with what the destination wants.
   */
  constructor(
    private readonly send: (items: Item[]) => Promise<Result[]>,
    private readonly maxBatch = 256,
    private readonly lingerMs: number | (() => number) = 0,
  ) {}

  /** One item; every upload on a shard goes through here, so it takes no array or extra promise. */
  submit(item: Item): Promise<Result> {
    const result = this.enqueue(item);
    if (!this.flushing) void this.flush();
    return result;
  }

  /**
   * Queues items that arrived together as one: with nothing in flight they go as a single call, where
   * submitting them one by one would send the first alone and the rest after it.
   */
  submitAll(items: Item[]): Promise<Result[]> {
    const results = items.map((item) => this.enqueue(item));
    if (!this.flushing) void this.flush();
    return Promise.all(results);
  }

  private enqueue(item: Item): Promise<Result> {
    return new Promise((resolve, reject) => this.queue.push({ item, resolve, reject }));
  }

  /** Items waiting or in flight: lets owners drop idle batchers from their caches. */
  get idle(): boolean {
    return !this.flushing && this.queue.length === 0;
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const linger = typeof this.lingerMs === "function" ? this.lingerMs() : this.lingerMs;
        if (linger > 0) await new Promise((resolve) => setTimeout(resolve, linger));
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const results = await this.send(batch.map((pending) => pending.item));
          batch.forEach((pending, i) => pending.resolve(results[i]!));
        } catch (error) {
          for (const pending of batch) pending.reject(error);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}

/**
 * One OrderedBatcher per destination (a home, a room, a shard), made on first use. Past `limit`
 * destinations the idle ones are dropped; a busy one is kept, or its order would be lost.
 */
export class OrderedBatchers<Item, Result> {
  private readonly byDestination = new Map<string, OrderedBatcher<Item, Result>>();

  constructor(
    private readonly make: (destination: string) => OrderedBatcher<Item, Result>,
    private readonly limit = 10_000,
  ) {}

  submit(destination: string, item: Item): Promise<Result> {
    return this.batcher(destination).submit(item);
  }

  submitAll(destination: string, items: Item[]): Promise<Result[]> {
    return this.batcher(destination).submitAll(items);
  }

  private batcher(destination: string): OrderedBatcher<Item, Result> {
    let batcher = this.byDestination.get(destination);
    if (!batcher) {
      if (this.byDestination.size >= this.limit) {
        for (const [name, existing] of this.byDestination) if (existing.idle) this.byDestination.delete(name);
      }
      batcher = this.make(destination);
      this.byDestination.set(destination, batcher);
    }
    return batcher;
  }
}
