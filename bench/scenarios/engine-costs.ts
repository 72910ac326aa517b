// What the engine's own operations cost on this machine, measured on the engine floor's objects
// (bench/workerd-floor/) in the same run: a call between two Durable Objects, a call that reads SQLite, and
// a call that commits a one-row write, alone and on four objects at once. Everything Telepound does is made
// of these; the numbers say what each costs before any of Telepound's own work.
//
// Time stands still inside the runtime, so each kind is timed from outside: one request makes `CALLS` calls
// (its own cost, spread over them, is small), and the CPU is the engine floor's runtime's from /proc over
// the same interval.

import type { BenchContext } from "../lib/context.js";
import type { ScenarioResult } from "../lib/report.js";
import { round } from "../lib/stats.js";

const CALLS = 2000;

export interface EngineOperation {
  what: string;
  /** Wall time per call, µs: with several objects at once, the whole run's wall time over all calls. */
  wallUs: number;
  /** The engine floor's runtime CPU per call, µs. */
  cpuUs: number;
}

const KINDS = [
  { kind: "call", objects: 1, what: "a call between two objects (no-op RPC)" },
  { kind: "read", objects: 1, what: "a call that reads SQLite (SELECT 1)" },
  { kind: "write", objects: 1, what: "a call that writes one row (one committed write transaction)" },
  { kind: "write", objects: 4, what: "the same on 4 objects at once (wall time per call over all)" },
] as const;

export async function engineCosts(ctx: BenchContext): Promise<ScenarioResult> {
  const operations: EngineOperation[] = [];
  for (const [index, { kind, objects, what }] of KINDS.entries()) {
    const url = (calls: number) =>
      `${ctx.floor.origin}/floor/operation?kind=${kind}&objects=${objects}&calls=${calls}&run=${index}`;
    // A first request wakes the objects and creates their tables, outside the measurement.
    const warm = await fetch(url(objects));
    if (warm.status !== 204)
      throw new Error(`engine operation ${kind}: HTTP ${warm.status} ${await warm.text()}`);
    const { usage } = await ctx.measure(`engine-${kind}-${objects}`, ctx.floor, async () => {
      const response = await fetch(url(CALLS));
      if (response.status !== 204) throw new Error(`engine operation ${kind}: HTTP ${response.status}`);
    });
    const operation = {
      what,
      wallUs: round((usage.wallMs * 1000) / CALLS),
      cpuUs: round(((usage.cpuMs["floor-runtime"] ?? 0) * 1000) / CALLS),
    };
    ctx.log(`engine: ${what}: ${operation.wallUs} µs wall, ${operation.cpuUs} µs runtime CPU per call`);
    operations.push(operation);
  }
  return {
    id: "engine-costs",
    title: "What the engine's own operations cost here",
    rows: [],
    details: { calls: CALLS, operations },
  };
}
