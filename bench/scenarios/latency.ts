// 1:1 round-trip latency: A sends to B, B replies the moment the delivery arrives, A times the reply.
// Real sealed envelopes both ways, each verified and opened by its receiver right after it is timed.
//
// Envelopes are sealed before the clock starts (sealing has its own scenario), and opening runs after the
// reply is sent and the timestamp taken, so the round trip measures the system: two hops through it.

import type { Target } from "../lib/api.js";
import { FailureWatch } from "../lib/client.js";
import { type BenchContext, connectPair } from "../lib/context.js";
import { Opener, Sender, type Sealed, benchText } from "../lib/identity.js";
import { GENERATOR_BOUND_CORES, type Usage } from "../lib/meter.js";
import {
  type ScenarioResult,
  floorGoal,
  summaryMs,
  usageReport,
  cpuColumns,
  serverCpu,
} from "../lib/report.js";
import { type Summary, round, roundSummary, summarize } from "../lib/stats.js";

const WARMUP = 300;
const ROUND_TRIPS = 5000;
const TEXT_BYTES = 100;
const A = "lat-a";
const B = "lat-b";

interface Run {
  rtt: Summary;
  usage: Usage;
  opened: number;
}

async function roundTrips(
  ctx: BenchContext,
  target: Target,
  there: Sealed[],
  back: Sealed[],
  open: boolean,
): Promise<Run> {
  const watch = new FailureWatch(`latency (${target.name})`);
  const [a, b] = await connectPair(target, A, B, watch);
  const openA = open ? new Opener(ctx.shared, A, (e) => watch.fail(e)) : null;
  const openB = open ? new Opener(ctx.shared, B, (e) => watch.fail(e)) : null;
  const samples: number[] = [];
  let sentAt = 0;
  let index = 0;
  const total = there.length;

  b.onDelivery = (frame) => {
    // Reply first, then verify and open what came in.
    b.send(back[b.deliveries - 1]!.frame);
    openB?.push(frame);
  };
  const done = new Promise<void>((resolve) => {
    a.onDelivery = (frame, _id, arrivedAt) => {
      if (index >= WARMUP) samples.push(arrivedAt - sentAt);
      index++;
      if (index < total) {
        sentAt = performance.now();
        a.send(there[index]!.frame);
      } else resolve();
      openA?.push(frame);
    };
  });

  const mark = ctx.reloadMark();
  const { usage } = await ctx.measure("latency", target, async () => {
    sentAt = performance.now();
    a.send(there[0]!.frame);
    await watch.race(done, 300_000, `${total} round trips`);
  });
  await watch.race(Promise.all([openA?.drained(), openB?.drained()]), 60_000, "opening every message");
  ctx.checkNoReload(mark, "latency");
  const opened = (openA?.opened ?? 0) + (openB?.opened ?? 0);
  if (open && opened !== 2 * total) throw new Error(`latency: opened ${opened} of ${2 * total} messages`);
  await Promise.all([a.close(), b.close()]);
  return { rtt: summarize(samples), usage, opened };
}

export async function latency(ctx: BenchContext): Promise<ScenarioResult> {
  const total = WARMUP + ROUND_TRIPS;
  ctx.log(`latency: sealing ${2 * total} envelopes`);
  const a = new Sender(ctx.shared, A);
  const b = new Sender(ctx.shared, B);
  const there: Sealed[] = [];
  const back: Sealed[] = [];
  for (let i = 0; i < total; i++) {
    there.push(await a.direct(B, benchText(i, TEXT_BYTES)));
    back.push(await b.direct(A, benchText(i, TEXT_BYTES)));
  }
  ctx.log(`latency: ${total} round trips through Telepound`);
  const system = await roundTrips(ctx, ctx.system, there, back, true);
  ctx.log(`latency: Telepound ${summaryMs(system.rtt)}`);
  ctx.log(`latency: ${total} round trips through the bare relay`);
  const relay = await roundTrips(ctx, ctx.relay, there, back, false);
  ctx.log(`latency: relay ${summaryMs(relay.rtt)}`);
  ctx.log(`latency: ${total} round trips through the engine floor`);
  const floor = await roundTrips(ctx, ctx.floor, there, back, false);
  ctx.log(`latency: engine floor ${summaryMs(floor.rtt)}`);
  ctx.log(`latency: ${total} round trips through the durable floor`);
  const durable = await roundTrips(ctx, ctx.durableFloor, there, back, false);
  ctx.log(`latency: durable floor ${summaryMs(durable.rtt)}`);
  const goal = (key: "p50" | "p99", limit: number) =>
    floorGoal({
      scenario: `1:1 round trip A→B→A, ${key}`,
      unit: "ms",
      telepound: system.rtt[key],
      yardstick: durable.rtt[key],
      against: "durable floor",
      direction: "at most",
      limit,
      also: `÷ stateless floor ${round(system.rtt[key] / floor.rtt[key], 3)}×`,
    });

  const cores = system.usage.generatorCores;
  const row = (metric: string, key: keyof Summary, goal: string, limit: number | null) => ({
    scenario: "1:1 round trip A→B→A",
    metric,
    unit: "ms",
    telepound: system.rtt[key],
    baseline: relay.rtt[key],
    floor: floor.rtt[key],
    durableFloor: durable.rtt[key],
    goal,
    met: limit === null ? null : system.rtt[key] <= limit,
    ...cpuColumns(system.usage),
    note: cores >= GENERATOR_BOUND_CORES ? "load generator saturated" : undefined,
  });
  return {
    id: "latency",
    title: "1:1 round-trip latency",
    rows: [
      row("p50", "p50", "≤ 1 ms", 1),
      row("p99", "p99", "≤ 3 ms", 3),
      row("p99.9", "p999", "report", null),
    ],
    serverCpu: [
      serverCpu(
        "1:1 round trips (one message at a time)",
        "message",
        2 * (ROUND_TRIPS + WARMUP),
        system.usage,
        relay.usage,
        floor.usage,
        durable.usage,
      ),
    ],
    goals: [goal("p50", 1.5), goal("p99", 2)],
    details: {
      roundTrips: ROUND_TRIPS,
      warmup: WARMUP,
      frameBytes: there[0]!.frame.length,
      telepound: {
        rttMs: roundSummary(system.rtt),
        usage: usageReport(system.usage, { count: 2 * ROUND_TRIPS + 2 * WARMUP, per: "Message" }),
        opened: system.opened,
      },
      relay: {
        rttMs: roundSummary(relay.rtt),
        usage: usageReport(relay.usage, { count: 2 * ROUND_TRIPS + 2 * WARMUP, per: "Message" }),
      },
      floor: {
        rttMs: roundSummary(floor.rtt),
        usage: usageReport(floor.usage, { count: 2 * ROUND_TRIPS + 2 * WARMUP, per: "Message" }),
      },
      durableFloor: {
        rttMs: roundSummary(durable.rtt),
        usage: usageReport(durable.usage, { count: 2 * ROUND_TRIPS + 2 * WARMUP, per: "Message" }),
      },
    },
  };
}
