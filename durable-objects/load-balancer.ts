// The load table behind GET /v1/connect: shards report their live connection counts, and each new
// connection goes to the least-loaded shard (the seed's serverAssign).
//
// Counts live in memory only. Every shard re-reports its absolute count on every connect and close, so a
// restarted balancer converges after the next few connections; persisting them would only add a write
// to every connect.

import { DurableObject } from "cloudflare:workers";
import { shardName } from "./names.js";

export class LoadBalancer extends DurableObject<Env> {
  private readonly loads = new Map<string, number>();

  /**
   * Picks the least-loaded of the first `count` shards and counts the new connection against it at once,
   * so a burst of connects spreads out before any shard has reported back. Ties go to the lowest index.
   */
  assign(count: number): string {
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
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(
      [...this.loads.entries()].sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true })),
    );
  }
}
