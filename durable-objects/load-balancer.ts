// The load table behind GET /v1/connect: shards report their live connection counts, and each new
// connection goes to the least-loaded shard (the seed's serverAssign).
//
// Counts live in memory: shards re-report their absolute count on every connect and close, and a
// balancer that was restarted or replaced by the runtime first asks every shard for its count, so it
// never assigns as if all shards were empty. Persisting the counts would add a write to every connect.

import { DurableObject } from "cloudflare:workers";
import { shardName, shardStub } from "./names.js";

export class LoadBalancer extends DurableObject<Env> {
  private readonly loads = new Map<string, number>();
  /** Shards whose count we have, either from a report or from asking; the rest are asked once. */
  private readonly known = new Set<string>();
  private catchingUp: Promise<void> | null = null;

  /**
   * Picks the least-loaded of the first `count` shards and counts the new connection against it at once,
   * so a burst of connects spreads out before any shard has reported back. Ties go to the lowest index.
   */
  async assign(count: number): Promise<string> {
    await this.learn(count);
    let best = shardName(0);
    let bestLoad = Number.POSITIVE_INFINITY;
    for (let index = 0; index < count; index++) {
      const name = shardName(index);
      const load = this.loads.get(name) ?? 0;
      if (load < bestLoad) {
        best = name;
        bestLoad = load;
      }
    }
    this.loads.set(best, bestLoad + 1);
    return best;
  }

  /** A shard's own count of its live sockets: authoritative, replaces our estimate. */
  report(shard: string, connections: number): void {
    this.loads.set(shard, connections);
    this.known.add(shard);
  }

  async snapshot(count: number): Promise<Record<string, number>> {
    await this.learn(count);
    return Object.fromEntries(
      [...this.loads.entries()].sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true })),
    );
  }

  /** Asks every shard we have no count for (after a restart: all of them) how many sockets it holds. */
  private learn(count: number): Promise<void> {
    const unknown = Array.from({ length: count }, (_, i) => shardName(i)).filter(
      (name) => !this.known.has(name),
    );
    if (unknown.length === 0) return Promise.resolve();
    this.catchingUp ??= Promise.all(
      unknown.map(async (name) => {
        const connections = await shardStub(this.env, name).connectionCount();
        // A report that arrived meanwhile is newer than our answer.
        if (!this.known.has(name)) this.report(name, connections);
      }),
    ).then(
      () => {
        this.catchingUp = null;
      },
      (error: unknown) => {
        this.catchingUp = null;
        console.error("balancer: could not learn shard counts", error);
      },
    );
    return this.catchingUp;
  }
}
