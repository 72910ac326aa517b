// Login storm: 1,000 users open their WebSockets (/v1/connect with their session tokens) all at once; the
// rate is users per second until the last one is "synced", and the shards' shares are checked two ways.
//
// Each client's "welcome" names its shard: that is where users really landed. GET /v1/stats is the
// balancer's view of the same; if the two disagree, the balancer lost its counts.
//
// The sockets stay open afterwards as the crowd the memory and fan-out scenarios use (the engine floor's
// are closed at once: those scenarios do not run against it).

import { type Target, shardStats, waitForNoConnections } from "../lib/api.js";
import { BenchClient, FailureWatch } from "../lib/client.js";
import type { BenchContext } from "../lib/context.js";
import type { Usage } from "../lib/meter.js";
import { type ScenarioResult, floorGoal, usageReport, cpuColumns, serverCpu } from "../lib/report.js";
import { type Summary, coefficientOfVariation, round, roundSummary, summarize } from "../lib/stats.js";

/** Connected load users, by index (clients[i] is users[i]); failures after the storm land in `watch`. */
export interface Crowd {
  target: Target;
  users: string[];
  clients: BenchClient[];
  watch: FailureWatch;
  /** RSS by role just before the storm, for the memory scenario. */
  rssBefore: Record<string, number>;
}

/**
 * The engine floor's logins with the least state a login needs (bench/workerd-floor/): a session read and
 * the user's shard written, in an object per user as Telepound's homes, or in shared objects.
 */
const FLOOR_STATE = [
  { mode: "floor-home", what: "a SQLite object per user (as Telepound's homes)" },
  { mode: "floor-pool", what: "16 SQLite objects shared by everyone" },
] as const;
const FLOOR_STATELESS = "no state (the engine floor itself)";

/** One of the engine floor's login storms, for the table after the main one. */
export interface FloorStateRun {
  what: string;
  loginsPerSecond: number;
  runtimeUsPerLogin: number;
  connectMs: Summary;
}

function floorStateRun(what: string, run: Run, users: number): FloorStateRun {
  return {
    what,
    loginsPerSecond: round(users / run.seconds),
    runtimeUsPerLogin: round(((run.usage.cpuMs["floor-runtime"] ?? 0) * 1000) / users),
    connectMs: roundSummary(run.connectMs),
  };
}

interface Run {
  crowd: Crowd;
  seconds: number;
  connectMs: Summary;
  usage: Usage;
  /** Users per shard, from their welcome frames. */
  shards: Record<string, number>;
  /** The balancer's per-shard counts after the storm, minus those before it (Telepound only). */
  balancer: Record<string, number> | null;
}

async function storm(ctx: BenchContext, target: Target, users: string[]): Promise<Run> {
  const watch = new FailureWatch(`crowd (${target.name})`);
  let before: Record<string, number> = {};
  if (target.name === "telepound") {
    await waitForNoConnections(target.origin);
    before = (await shardStats(target.origin)).connections;
  }
  const rssBefore = ctx.rss();
  const connectMs: number[] = [];
  const mark = ctx.reloadMark();
  const { result, usage } = await ctx.measure("login-storm", target, async () => {
    const start = performance.now();
    const clients = await watch.race(
      Promise.all(
        users.map(async (user) => {
          const client = await BenchClient.open({ origin: target.origin, token: target.token(user), watch });
          await client.synced;
          connectMs.push(performance.now() - start);
          return client;
        }),
      ),
      120_000,
      `${users.length} connections`,
    );
    return { clients, seconds: (performance.now() - start) / 1000 };
  });
  ctx.checkNoReload(mark, "login storm");
  const shards: Record<string, number> = {};
  for (const client of result.clients) shards[client.shard] = (shards[client.shard] ?? 0) + 1;
  let balancer: Record<string, number> | null = null;
  if (target.name === "telepound") {
    // Shards report their counts asynchronously: give the balancer a few seconds to hear about everyone.
    const deadline = Date.now() + 5_000;
    for (;;) {
      const after = (await shardStats(target.origin)).connections;
      balancer = Object.fromEntries(
        Object.entries(after).map(([shard, n]) => [shard, n - (before[shard] ?? 0)]),
      );
      const total = Object.values(balancer).reduce((a, b) => a + b, 0);
      if (total === users.length || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    crowd: { target, users, clients: result.clients, watch, rssBefore },
    seconds: result.seconds,
    connectMs: summarize(connectMs),
    usage,
    shards,
    balancer,
  };
}

export async function loginStorm(
  ctx: BenchContext,
  users: string[],
): Promise<{ result: ScenarioResult; system: Crowd; relay: Crowd; floor: Crowd }> {
  ctx.log(`login storm: ${users.length} users connecting at once to Telepound`);
  const system = await storm(ctx, ctx.system, users);
  const systemRate = users.length / system.seconds;
  ctx.log(
    `login storm: Telepound ${round(systemRate)} logins/s; landed ${JSON.stringify(system.shards)}, balancer says ${JSON.stringify(system.balancer)}`,
  );
  ctx.log(`login storm: ${users.length} users connecting at once to the engine floor`);
  const floor = await storm(ctx, ctx.floor, users);
  await closeCrowd(floor.crowd);
  const floorRate = users.length / floor.seconds;
  ctx.log(`login storm: engine floor ${round(floorRate)} logins/s`);
  const withState: FloorStateRun[] = [];
  for (const { mode, what } of FLOOR_STATE) {
    const run = await storm(ctx, { ...ctx.floor, token: (user) => `${user}.${mode}.bench` }, users);
    await closeCrowd(run.crowd);
    withState.push(floorStateRun(what, run, users.length));
    ctx.log(`login storm: engine floor, ${what}: ${round(users.length / run.seconds)} logins/s`);
  }
  ctx.log(`login storm: ${users.length} users connecting at once to the bare relay`);
  const relay = await storm(ctx, ctx.relay, users);
  const relayRate = users.length / relay.seconds;
  ctx.log(`login storm: relay ${round(relayRate)} logins/s`);
  // The engine floor's crowd for the fan-out, connected last so that it weighs on no storm above.
  const floorCrowd = (await storm(ctx, ctx.floor, users)).crowd;

  const perUserFloor = withState.find((run) => run.what === FLOOR_STATE[0].what);
  const counts = Object.values(system.shards);
  const evenness = `max/min ${round(Math.max(...counts) / Math.max(1, Math.min(...counts)))}`;
  const balancerTotal = Object.values(system.balancer ?? {}).reduce((a, b) => a + b, 0);
  const balancerNote =
    balancerTotal === users.length
      ? "/v1/stats agrees"
      : `/v1/stats disagrees: ${JSON.stringify(system.balancer)} (the balancer lost its in-memory counts)`;
  return {
    system: system.crowd,
    relay: relay.crowd,
    floor: floorCrowd,
    result: {
      id: "login-storm",
      title: "Login storm",
      rows: [
        {
          scenario: `login storm: ${users.length} users connect at once`,
          metric: "logins/s (to synced)",
          unit: "logins/s",
          telepound: systemRate,
          baseline: relayRate,
          floor: floorRate,
          goal: "≥ 300 logins/s",
          met: systemRate >= 300,
          ...cpuColumns(system.usage),
          note: `users per shard (from their welcome frames) ${Object.entries(system.shards)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([shard, n]) => `${shard}: ${n}`)
            .join(", ")} (${evenness}, CV ${round(coefficientOfVariation(counts), 2)}); ${balancerNote}`,
        },
        {
          scenario: `login storm: ${users.length} users connect at once`,
          metric: "p99 time to synced",
          unit: "ms",
          telepound: system.connectMs.p99,
          baseline: relay.connectMs.p99,
          floor: floor.connectMs.p99,
          goal: "report",
          met: null,
          ...cpuColumns(system.usage),
        },
      ],
      serverCpu: [serverCpu("login storm", "login", users.length, system.usage, relay.usage, floor.usage)],
      goals: perUserFloor
        ? [
            floorGoal({
              scenario: `login storm: ${users.length} users connect at once`,
              unit: "logins/s",
              telepound: systemRate,
              yardstick: perUserFloor.loginsPerSecond,
              against: "floor with a SQLite object per user",
              direction: "at least",
              limit: 0.8,
              also: `÷ stateless floor ${round(systemRate / floorRate, 3)}×`,
            }),
          ]
        : [],
      details: {
        users: users.length,
        telepound: {
          seconds: round(system.seconds),
          loginsPerSecond: round(systemRate),
          connectMs: roundSummary(system.connectMs),
          shards: system.shards,
          balancerStats: system.balancer,
          shardCoefficientOfVariation: round(coefficientOfVariation(counts)),
          usage: usageReport(system.usage, { count: users.length, per: "Login" }),
        },
        floor: {
          seconds: round(floor.seconds),
          loginsPerSecond: round(floorRate),
          connectMs: roundSummary(floor.connectMs),
          shards: floor.shards,
          usage: usageReport(floor.usage, { count: users.length, per: "Login" }),
        },
        floorWithState: [floorStateRun(FLOOR_STATELESS, floor, users.length), ...withState],
        relay: {
          seconds: round(relay.seconds),
          loginsPerSecond: round(relayRate),
          connectMs: roundSummary(relay.connectMs),
          usage: usageReport(relay.usage, { count: users.length, per: "Login" }),
        },
      },
    },
  };
}

export async function closeCrowd(crowd: Crowd): Promise<void> {
  // Sockets closing are expected now: stop treating a close as a failure, then close them in batches.
  for (let i = 0; i < crowd.clients.length; i += 100) {
    await Promise.all(crowd.clients.slice(i, i + 100).map((client) => client.close()));
  }
}
