// One balancer of GET /v1/connect: the Worker picks it by the connecting user's region and slice
// (worker/placement.ts), so no object sees every connect. It owns a pool of shards named after itself
// (names.ts), opens more of them as they fill and drains the surplus as load falls (balancer/shard-pool.ts),
// and gives each new connection to the least-loaded open one (the seed's serverAssign).
//
// Loads live in memory: shards report their absolute counts on every connect and close, and at least once
// a second while frames flow. Which shards exist, and whether each is open or draining, is persisted (a
// write per change of state, never per connect), so a balancer the runtime restarted or moved asks exactly
// its shards for their counts before it assigns, and never assigns as if they were empty.

import { DurableObject } from "cloudflare:workers";
import { type PoolChange, ShardPool } from "./balancer/shard-pool.js";
import type { Assignment, BalancerSnapshot, ShardLoad, ShardPolicy, ShardState } from "./contracts.js";
import { migrate } from "./migrations.js";
import { newShardStub, shardNameOf } from "./names.js";

const BALANCER_MIGRATIONS: readonly string[] = [
  `CREATE TABLE shards (name TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;`,
];

/** About 100 bytes each: a few MB of the object's 128 MB, for a slice's worth of recently connected users. */
const USERS_REMEMBERED = 50_000;

export class LoadBalancer extends DurableObject<Env> {
  private pool: ShardPool | null = null;
  /** Shards whose count we have, either from a report or from asking; the rest are asked once. */
  private readonly known = new Set<string>();
  private catchingUp: Promise<void> | null = null;
  /**
   * Where each user's last socket went, newest last, at most USERS_REMEMBERED: their next socket goes there
   * too while it is under its target (balancer/shard-pool.ts STICKY_BELOW). Memory only: forgetting costs no more
   * than a user's sockets spread over two shards.
   */
  private readonly placed = new Map<string, string>();
  /** The policy of the last connect: reports apply it too, and they carry none of their own. */
  private policy: ShardPolicy | null = null;

  /** The shard for one more connection of `username`, chosen under `policy` (the Worker's settings). */
  async assign(policy: ShardPolicy, username: string): Promise<Assignment> {
    this.policy = policy;
    await this.learn();
    const { shard, ticket, unreported, changes } = this.shardPool().assign(
      policy,
      Date.now(),
      this.placed.get(username),
    );
    this.placed.delete(username);
    this.placed.set(username, shard);
    if (this.placed.size > USERS_REMEMBERED) this.placed.delete(this.placed.keys().next().value!);
    this.persist(changes);
    // A shard opened now has no sockets: nothing to ask it.
    for (const change of changes) this.known.add(change.shard);
    return { shard, ticket, unreported };
  }

  /** A shard's own count of its live sockets and recent frame rate: authoritative, replaces our estimate. */
  report(shard: string, load: ShardLoad): void {
    this.known.add(shard);
    const now = Date.now();
    // A shard this pool closed still reports while its last sockets go: nothing to track or decide.
    if (!this.shardPool().record(shard, load, now)) return;
    // No connect since a restart: the counts are kept, and nothing is decided until the Worker's policy is.
    if (this.policy) this.persist(this.shardPool().settle(this.policy, now));
  }

  async snapshot(): Promise<BalancerSnapshot> {
    await this.learn();
    return {
      shards: this.shardPool()
        .shards(Date.now())
        .sort((a, b) => a.shard.localeCompare(b.shard, "en", { numeric: true })),
    };
  }

  private shardPool(): ShardPool {
    this.pool ??= new ShardPool(this.storedShards(), (index) => shardNameOf(this.ctx.id.name ?? "", index));
    return this.pool;
  }

  /**
   * The shards as persisted. A balancer that never opened one has no schema, and reading makes none: GET
   * /v1/stats asks every region's balancers, and the unused ones must store nothing.
   */
  private storedShards(): Array<{ shard: string; state: ShardState }> {
    const sql = this.ctx.storage.sql;
    if (
      sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'shards'").toArray().length === 0
    )
      return [];
    return sql
      .exec<{ name: string; state: ShardState }>("SELECT name, state FROM shards")
      .toArray()
      .map((row) => ({ shard: row.name, state: row.state }));
  }

  private persist(changes: PoolChange[]): void {
    if (changes.length === 0) return;
    migrate(this.ctx.storage, BALANCER_MIGRATIONS);
    for (const { shard, state } of changes) {
      if (state === "closed") this.ctx.storage.sql.exec("DELETE FROM shards WHERE name = ?", shard);
      else
        this.ctx.storage.sql.exec(
          "INSERT INTO shards (name, state) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET state = excluded.state",
          shard,
          state,
        );
    }
  }

  /** Asks every shard we have no count for (after a restart: all of ours) how loaded it is. */
  private learn(): Promise<void> {
    const unknown = this.shardPool()
      .shards(Date.now())
      .map(({ shard }) => shard)
      .filter((shard) => !this.known.has(shard));
    if (unknown.length === 0) return Promise.resolve();
    this.catchingUp ??= Promise.all(
      unknown.map(async (shard) => {
        // Placed: a shard opened before the restart may not have been created yet.
        const load = await newShardStub(this.env, shard).load();
        // A report that arrived meanwhile is newer than our answer.
        if (!this.known.has(shard)) this.report(shard, load);
      }),
    ).then(
      () => {
        this.catchingUp = null;
      },
      (error: unknown) => {
        this.catchingUp = null;
        console.error("balancer: could not learn shard loads", error);
      },
    );
    return this.catchingUp;
  }
}
