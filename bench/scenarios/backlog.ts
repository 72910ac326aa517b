// Offline backlog: 10,000 sealed envelopes are queued for B while B is offline; then B connects and the
// clock runs until B has received all of them and the server said "synced", acking in batches ≤ 1000.
//
// The server pushes the backlog in pages and sends the next only when the last is acknowledged, so this
// measures queue reads, acknowledgement deletes and the page round trips. B then reconnects to prove
// the queue is empty. B does not open these (the open cost is in the throughput scenario).

import type { Target } from "../lib/api.js";
import { BenchClient, FailureWatch } from "../lib/client.js";
import type { BenchContext } from "../lib/context.js";
import { Sender, type Sealed, benchText } from "../lib/identity.js";
import type { Usage } from "../lib/meter.js";
import { type ScenarioResult, usageReport, cpuColumns, serverCpu } from "../lib/report.js";
import { round } from "../lib/stats.js";

const MESSAGES = 10_000;
const WINDOW = 256;
const TEXT_BYTES = 100;
const A = "bl-a";
const B = "bl-b";

interface Run {
  fillSeconds: number;
  drainSeconds: number;
  usage: Usage;
  ackFrames: number;
}

async function fillAndDrain(ctx: BenchContext, target: Target, frames: Sealed[]): Promise<Run> {
  const watch = new FailureWatch(`backlog (${target.name})`);
  const mark = ctx.reloadMark();
  const a = await BenchClient.open({ origin: target.origin, token: target.token(A), watch });
  await a.synced;
  const fillStart = performance.now();
  let next = 0;
  await watch.race(
    new Promise<void>((resolve, reject) => {
      let answered = 0;
      const pump = () => {
        while (next < frames.length && a.inFlight < WINDOW) {
          const { frame, id } = frames[next++]!;
          void a.upload(frame, id).then((status) => {
            if (status !== "stored") reject(new Error(`B is offline, yet a message was "${status}"`));
            if (++answered === frames.length) resolve();
            pump();
          });
        }
      };
      pump();
    }),
    300_000,
    "queueing the backlog",
  );
  const fillSeconds = (performance.now() - fillStart) / 1000;
  await a.close();

  let received = 0;
  let ackFrames = 0;
  const { result: drainSeconds, usage } = await ctx.measure("backlog", target, async () => {
    const start = performance.now();
    const b = await BenchClient.open({
      origin: target.origin,
      token: target.token(B),
      watch,
      onDelivery: () => void received++,
    });
    await watch.race(b.synced, 120_000, "synced after the backlog");
    if (received !== frames.length) throw new Error(`synced after ${received} of ${frames.length} messages`);
    const seconds = (performance.now() - start) / 1000;
    await b.close();
    ackFrames = b.ackFrames;
    return seconds;
  });

  // Everything was acknowledged: a fresh connection (acking nothing itself) finds nothing waiting. The
  // last ack may still be in flight when B closes, so look a few times.
  for (let attempt = 1; ; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    const again = await BenchClient.open({
      origin: target.origin,
      token: target.token(B),
      watch,
      autoAck: false,
    });
    await watch.race(again.synced, 60_000, "synced on reconnect");
    await again.close();
    if (again.deliveries === 0) break;
    if (attempt === 5)
      throw new Error(`backlog: ${again.deliveries} messages still queued after acknowledging all`);
  }
  ctx.checkNoReload(mark, "backlog");
  return { fillSeconds, drainSeconds, usage, ackFrames };
}

export async function backlog(ctx: BenchContext): Promise<ScenarioResult> {
  ctx.log(`backlog: sealing ${MESSAGES} envelopes`);
  const sender = new Sender(ctx.shared, A);
  const frames: Sealed[] = [];
  for (let i = 0; i < MESSAGES; i++) frames.push(await sender.direct(B, benchText(i, TEXT_BYTES)));
  ctx.log("backlog: queueing and draining through Telepound");
  const system = await fillAndDrain(ctx, ctx.system, frames);
  ctx.log(
    `backlog: Telepound drained ${MESSAGES} in ${round(system.drainSeconds)} s (queued at ${round(MESSAGES / system.fillSeconds)} msgs/s)`,
  );
  ctx.log("backlog: queueing and draining through the bare relay");
  const relay = await fillAndDrain(ctx, ctx.relay, frames);
  ctx.log(`backlog: relay drained in ${round(relay.drainSeconds)} s`);

  return {
    id: "backlog",
    title: "Offline backlog drained at login",
    rows: [
      {
        scenario: `offline backlog: ${MESSAGES.toLocaleString("en-US")} queued messages drained at login`,
        metric: "connect → all received + acked, synced",
        unit: "s",
        telepound: system.drainSeconds,
        baseline: relay.drainSeconds,
        goal: "≤ 2 s",
        met: system.drainSeconds <= 2,
        ...cpuColumns(system.usage),
        note: `queueing them for an offline user ran at ${round(MESSAGES / system.fillSeconds)} msgs/s (relay ${round(MESSAGES / relay.fillSeconds)})`,
      },
    ],
    serverCpu: [serverCpu("offline backlog drain", "message", MESSAGES, system.usage, relay.usage)],
    details: {
      messages: MESSAGES,
      frameBytes: frames[0]!.frame.length,
      telepound: {
        drainSeconds: round(system.drainSeconds),
        fillMsgsPerSecond: round(MESSAGES / system.fillSeconds),
        ackFrames: system.ackFrames,
        usage: usageReport(system.usage, { count: MESSAGES, per: "Message" }),
      },
      relay: {
        drainSeconds: round(relay.drainSeconds),
        fillMsgsPerSecond: round(MESSAGES / relay.fillSeconds),
        ackFrames: relay.ackFrames,
        usage: usageReport(relay.usage, { count: MESSAGES, per: "Message" }),
      },
    },
  };
}
