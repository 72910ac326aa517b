// Stubs of other objects, made once per name and used again: making one hashes its name, and a shard
// calls the same few homes for every message. A call through a stub that fails drops it, because a stub
// whose object was reset (a deploy, an eviction after an error) can stay broken, and the platform's advice
// after an exception is a new stub. At most `limit` are kept; past it the cache starts again.

export class StubCache<Stub> {
  private readonly stubs = new Map<string, Stub>();

  constructor(
    private readonly make: (name: string) => Stub,
    private readonly limit: number,
  ) {}

  /** Runs `use` with the stub for `name`; if it throws, the next call gets a new stub. */
  async call<T>(name: string, use: (stub: Stub) => Promise<T> | T): Promise<T> {
    const stub = this.stub(name);
    try {
      return await use(stub);
    } catch (error) {
      if (this.stubs.get(name) === stub) this.stubs.delete(name);
      throw error;
    }
  }

  private stub(name: string): Stub {
    let stub = this.stubs.get(name);
    if (!stub) {
      if (this.stubs.size >= this.limit) this.stubs.clear();
      stub = this.make(name);
      this.stubs.set(name, stub);
    }
    return stub;
  }
}
