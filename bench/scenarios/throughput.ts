// 1:1 sustained throughput: A streams sealed envelopes to B (on another shard) with a window of uploads
// awaiting "sent"; B timestamps and acks each delivery, then verifies and opens it with openEnvelope.
//
// The rate is taken over the steady part (after the first 10% arrived). Opening runs one message per
// event-loop turn behind socket reads, so a slow receiver shows as generator CPU, not as lost arrivals.

import type { Target } from "../lib/api.js";
import { FailureWatch } from "../lib/client.js";
import { type BenchContext, connectPair } from "../lib/context.js";
import { Opener, Sender, type Sealed, benchText } from "../lib/identity.js";
import { GENERATOR_BOUND_CORES, type Role, type Usage } from "../lib/meter.js";
import { type ScenarioResult, floorGoal, usageReport, cpuColumns, serverCpu } from "../lib/report.js";
import { round } from "../lib/stats.js";

const MESSAGES = 20_000;
/** Uploads awaiting their "sent" at any time. */
const WINDOW = 256;
const STEADY_FROM = 0.1;
const TEXT_BYTES = 100;
const A = "tp-a";
const B = "tp-b";

interface Run {
  /** Messages per second over the steady part, by arrival at B. */
  rate: number;
  /** Messages per second from the first send until B had opened the last one (Telepound only). */
  verifiedRate: number | null;
  usage: Usage;
  statuses: Record<string, number>;
}

async function stream(ctx: BenchContext, target: Target, frames: Sealed[], open: boolean): Promise<Run> {
  const watch = new FailureWatch(`throughput (${target.name})`);
  const [a, b] = await connectPair(target, A, B, watch);
  const opener = open ? new Opener(ctx.shared, B, (e) => watch.fail(e)) : null;
  const arrivals: number[] = [];
  const statuses: Record<string, number> = {};
  const done = new Promise<void>((resolve) => {
    b.onDelivery = (frame, _id, arrivedAt) => {
      arrivals.push(arrivedAt);
      opener?.push(frame);
      if (arrivals.length === frames.length) resolve();
    };
  });

  const mark = ctx.reloadMark();
  let start = 0;
  const { usage } = await ctx.measure("throughput", target, async () => {
    start = performance.now();
    let next = 0;
    await watch.race(
      new Promise<void>((resolve) => {
        // Keep WINDOW uploads in flight: every "sent" lets the next one go.
        const pump = () => {
          while (next < frames.length && a.inFlight < WINDOW) {
            const { frame, id } = frames[next++]!;
            void a.upload(frame, id).then((status) => {
              statuses[status] = (statuses[status] ?? 0) + 1;
              pump();
            });
          }
          if (next === frames.length) resolve();
        };
        pump();
      }),
      300_000,
      "sending",
    );
    await watch.race(done, 300_000, `${frames.length} deliveries`);
  });
  await watch.race(opener?.drained() ?? Promise.resolve(), 300_000, "opening every message");
  const verifiedAt = performance.now();
  ctx.checkNoReload(mark, "throughput");
  if (opener && opener.opened !== frames.length)
    throw new Error(`throughput: opened ${opener.opened} of ${frames.length}`);
  await Promise.all([a.close(), b.close()]);
  const from = Math.floor(frames.length * STEADY_FROM);
  const rate = (frames.length - 1 - from) / ((arrivals[frames.length - 1]! - arrivals[from]!) / 1000);
  return {
    rate,
    verifiedRate: opener ? frames.length / ((verifiedAt - start) / 1000) : null,
    usage,
    statuses,
  };
}

/**
 * Messages still in `user`'s durable-floor inbox once every ack had time to land: 0 unless acks are lost.
 * Removals are not awaited by anyone (as acks are not), so this polls briefly.
 */
async function inboxPending(origin: string, user: string): Promise<number> {
  let pending = Number.NaN;
  for (let attempt = 0; attempt < 20; attempt++) {
    const response = await fetch(`${origin}/floor/inbox?user=${encodeURIComponent(user)}`);
    if (!response.ok) throw new Error(`durable floor inbox: HTTP ${response.status}`);
    pending = ((await response.json()) as { pending: number }).pending;
    if (pending === 0) return 0;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return pending;
}

export async function throughput(ctx: BenchContext): Promise<ScenarioResult> {
  ctx.log(`throughput: sealing ${MESSAGES} envelopes`);
  const sender = new Sender(ctx.shared, A);
  const frames: Sealed[] = [];
  for (let i = 0; i < MESSAGES; i++) frames.push(await sender.direct(B, benchText(i, TEXT_BYTES)));
  ctx.log(`throughput: ${MESSAGES} messages through Telepound`);
  const system = await stream(ctx, ctx.system, frames, true);
  ctx.log(
    `throughput: Telepound ${round(system.rate)} msgs/s (verified ${round(system.verifiedRate ?? 0)} msgs/s)`,
  );
  ctx.log(`throughput: ${MESSAGES} messages through the bare relay`);
  const relay = await stream(ctx, ctx.relay, frames, false);
  ctx.log(`throughput: relay ${round(relay.rate)} msgs/s`);
  ctx.log(`throughput: ${MESSAGES} messages through the engine floor`);
  const floor = await stream(ctx, ctx.floor, frames, false);
  ctx.log(`throughput: engine floor ${round(floor.rate)} msgs/s`);
  ctx.log(`throughput: ${MESSAGES} messages through the durable floor`);
  const durable = await stream(ctx, ctx.durableFloor, frames, false);
  const durableLeft = await inboxPending(ctx.durableFloor.origin, B);
  ctx.log(`throughput: durable floor ${round(durable.rate)} msgs/s (${durableLeft} left unacknowledged)`);
  const cpuPerMessage = (usage: Usage, role: Role) => ((usage.cpuMs[role] ?? 0) * 1000) / MESSAGES;
  const systemCpu = cpuPerMessage(system.usage, "workerd-runtime");
  const floorCpu = cpuPerMessage(floor.usage, "floor-runtime");
  const durableCpu = cpuPerMessage(durable.usage, "floor-runtime");

  const cores = system.usage.generatorCores;
  return {
    id: "throughput",
    title: "1:1 sustained throughput",
    rows: [
      {
        scenario: "1:1 sustained throughput, users on different shards",
        metric: "msgs/s delivered",
        unit: "msgs/s",
        telepound: system.rate,
        baseline: relay.rate,
        floor: floor.rate,
        durableFloor: durable.rate,
        goal: "≥ 0.5× relay",
        met: system.rate >= 0.5 * relay.rate,
        ...cpuColumns(system.usage),
        note:
          `all ${MESSAGES} verified and opened by B: ${round(system.verifiedRate ?? 0)} msgs/s end to end` +
          (cores >= GENERATOR_BOUND_CORES ? "; load generator saturated" : ""),
      },
    ],
    serverCpu: [
      serverCpu(
        "1:1 sustained throughput",
        "message",
        MESSAGES,
        system.usage,
        relay.usage,
        floor.usage,
        durable.usage,
      ),
    ],
    goals: [
      floorGoal({
        scenario: "1:1 sustained throughput",
        unit: "msgs/s",
        telepound: system.rate,
        yardstick: durable.rate,
        against: "durable floor",
        direction: "at least",
        limit: 0.8,
        also: `÷ stateless floor ${round(system.rate / floor.rate, 3)}×`,
      }),
      floorGoal({
        scenario: "workerd CPU per delivered 1:1 message (sustained)",
        unit: "µs",
        telepound: systemCpu,
        yardstick: durableCpu,
        against: "durable floor",
        direction: "at most",
        limit: 1.3,
        also: `÷ stateless floor ${round(systemCpu / floorCpu, 3)}×`,
      }),
    ],
    details: {
      messages: MESSAGES,
      window: WINDOW,
      frameBytes: frames[0]!.frame.length,
      telepound: {
        msgsPerSecond: round(system.rate),
        verifiedMsgsPerSecond: round(system.verifiedRate ?? 0),
        sentStatuses: system.statuses,
        usage: usageReport(system.usage, { count: MESSAGES, per: "Message" }),
      },
      relay: {
        msgsPerSecond: round(relay.rate),
        sentStatuses: relay.statuses,
        usage: usageReport(relay.usage, { count: MESSAGES, per: "Message" }),
      },
      floor: {
        msgsPerSecond: round(floor.rate),
        sentStatuses: floor.statuses,
        usage: usageReport(floor.usage, { count: MESSAGES, per: "Message" }),
      },
      durableFloor: {
        msgsPerSecond: round(durable.rate),
        sentStatuses: durable.statuses,
        usage: usageReport(durable.usage, { count: MESSAGES, per: "Message" }),
        leftUnacknowledged: durableLeft,
      },
    },
  };
}
