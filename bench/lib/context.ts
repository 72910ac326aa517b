// What every scenario is given (both targets, the shared identity, measuring and RSS helpers), plus the
// naming of load users and the pair of sockets on different shards that the 1:1 scenarios open.

import type { Target } from "./api.js";
import { BenchClient, type ClientOptions, type FailureWatch } from "./client.js";
import type { SharedIdentity } from "./identity.js";
import type { Meter, Usage } from "./meter.js";

export interface BenchContext {
  system: Target;
  /** The same engine with none of Telepound's work: what no design under wrangler dev here can beat. */
  floor: Target;
  /** The engine floor that also commits each message in its recipient's SQLite object before pushing it. */
  durableFloor: Target;
  /** The engine floor whose group messages from this target's sockets are stored once, in a room. */
  groupFloor: Target;
  relay: Target;
  shared: SharedIdentity;
  meter: Meter;
  /**
   * Measures `work` once the system and relay are idle; with BENCH_PROFILE=1, Telepound runs are also
   * CPU-profiled in workerd under `label`.
   */
  measure<T>(label: string, target: Target, work: () => Promise<T>): Promise<{ result: T; usage: Usage }>;
  /** RSS of the processes of interest right now, in bytes, by role. */
  rss(): Record<string, number>;
  log(message: string): void;
  /** Throws if wrangler reloaded the Worker (a source file changed) since `mark` was taken. */
  checkNoReload(mark: string, what: string): void;
  reloadMark(): string;
}

/** The load users every crowd scenario uses: u0000 … u{n-1}. */
export function loadUser(index: number): string {
  return `u${String(index).padStart(4, "0")}`;
}

/**
 * Connects `first` then `second` and makes sure they sit on different shards (the balancer puts a new
 * socket on the least-loaded shard, so with no other sockets they always do; the floor hashes names). The
 * relay has one "shard".
 */
export async function connectPair(
  target: Target,
  first: string,
  second: string,
  watch: FailureWatch,
  options: Partial<ClientOptions> = {},
): Promise<[BenchClient, BenchClient]> {
  const open = (user: string) =>
    BenchClient.open({ origin: target.origin, token: target.token(user), watch, ...options });
  const a = await open(first);
  await a.synced;
  const b = await open(second);
  await b.synced;
  if (target.name !== "relay" && a.shard === b.shard) {
    throw new Error(
      `${first} and ${second} landed on the same shard (${a.shard}); is another client connected?`,
    );
  }
  return [a, b];
}
