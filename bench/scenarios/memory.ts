// Memory: resident set size of the workerd processes wrangler started (runtime and proxy, found in /proc)
// with the login storm's 1,000 users connected and idle, against the bare relay's RSS with the same crowd.

import type { BenchContext } from "../lib/context.js";
import { type ScenarioResult, cpuColumns } from "../lib/report.js";
import { MIB, round } from "../lib/stats.js";
import type { Crowd } from "./login-storm.js";

/** Lets connection set-up finish and the garbage collectors run before reading RSS. */
const SETTLE_MS = 3000;
/** A second reading after this much more idleness shows what the runtime gives back (evicted objects). */
const LONG_IDLE_MS = 15_000;

export async function memory(ctx: BenchContext, system: Crowd, relay: Crowd): Promise<ScenarioResult> {
  ctx.log(`memory: ${system.clients.length} idle users connected; settling ${SETTLE_MS} ms`);
  await ctx.meter.settle();
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  if (system.watch.error) throw system.watch.error;
  if (relay.watch.error) throw relay.watch.error;
  const now = ctx.rss();
  const mib = (role: string, rss: Record<string, number>) => (rss[role] ?? 0) / MIB;
  const workerd = (rss: Record<string, number>) => mib("workerd-runtime", rss) + mib("workerd-proxy", rss);
  const idle = system.clients.length;
  const systemMiB = workerd(now);
  const systemDelta = systemMiB - workerd(system.rssBefore);
  const relayMiB = mib("relay", now);
  const relayDelta = relayMiB - mib("relay", relay.rssBefore);
  ctx.log(`memory: idle ${LONG_IDLE_MS} ms more for a second reading`);
  await new Promise((resolve) => setTimeout(resolve, LONG_IDLE_MS));
  if (system.watch.error) throw system.watch.error;
  const later = ctx.rss();
  ctx.log(
    `memory: workerd ${round(systemMiB)} MiB (+${round(systemDelta)} for the crowd), relay ${round(relayMiB)} MiB (+${round(relayDelta)}); ${round(workerd(later))} MiB after ${(SETTLE_MS + LONG_IDLE_MS) / 1000} s idle`,
  );
  return {
    id: "memory",
    title: "Memory with idle users connected",
    rows: [
      {
        scenario: `memory: ${idle} idle users connected`,
        metric: "workerd RSS (runtime + proxy)",
        unit: "MiB",
        telepound: systemMiB,
        baseline: relayMiB,
        goal: "report",
        met: null,
        ...cpuColumns(null),
        note: `+${round(systemDelta)} MiB for the crowd, ${round((systemDelta * 1024) / idle)} KiB per user (relay +${round(
          (relayDelta * 1024) / idle,
        )} KiB); runtime ${round(mib("workerd-runtime", now))} MiB, wrangler's proxy ${round(mib("workerd-proxy", now))} MiB; after ${(SETTLE_MS + LONG_IDLE_MS) / 1000} s idle ${round(workerd(later))} MiB (runtime ${round(mib("workerd-runtime", later))})`,
      },
    ],
    details: {
      idleUsers: idle,
      rssMiB: Object.fromEntries(Object.entries(now).map(([role, bytes]) => [role, round(bytes / MIB)])),
      rssAfterLongIdleMiB: Object.fromEntries(
        Object.entries(later).map(([role, bytes]) => [role, round(bytes / MIB)]),
      ),
      rssBeforeCrowdMiB: {
        telepound: Object.fromEntries(
          Object.entries(system.rssBefore).map(([role, bytes]) => [role, round(bytes / MIB)]),
        ),
        relay: round(mib("relay", relay.rssBefore)),
      },
      workerdDeltaMiB: round(systemDelta),
      workerdKiBPerUser: round((systemDelta * 1024) / idle),
      relayDeltaMiB: round(relayDelta),
      relayKiBPerUser: round((relayDelta * 1024) / idle),
    },
  };
}
