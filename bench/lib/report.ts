// What a scenario reports and how the run writes it: results.json (every number, with CPU and process
// details) and RESULTS.md (the table the README includes, then notes and per-scenario details).

import type { Summary } from "./stats.js";
import { round } from "./stats.js";
import { GENERATOR_BOUND_CORES, type Usage } from "./meter.js";

export interface Row {
  scenario: string;
  metric: string;
  unit: string;
  telepound: number;
  /** The same traffic through the bare relay (or the raw-crypto reference where the goal names one). */
  baseline: number | null;
  /** What `baseline` is when it is not the bare relay. */
  baselineLabel?: string;
  /** The same traffic through the engine floor (bench/workerd-floor/), where the scenario runs it. */
  floor?: number;
  /** The same traffic through the durable floor (the engine floor storing each message before pushing it). */
  durableFloor?: number;
  goal: string;
  /** null: reported, no goal. */
  met: boolean | null;
  /** Load generator CPU while Telepound was measured, in cores (1 = one core fully busy). */
  generatorCores: number | null;
  /** CPU used meanwhile by processes that are neither the system, the relay nor the generator, in cores. */
  otherCores: number | null;
  note?: string;
}

/** Server CPU per unit of work, read from /proc: robust to a busy machine, unlike times and rates. */
export interface ServerCpuRow {
  scenario: string;
  unit: string;
  workerdRuntimeUs: number;
  workerdProxyUs: number;
  relayUs: number;
  /** The engine floor's runtime, where the scenario runs it. */
  floorRuntimeUs?: number;
  /** The same runtime serving the durable floor, where the scenario runs it. */
  durableFloorRuntimeUs?: number;
}

/**
 * A goal set as a ratio to a yardstick measured in the same run (a floor, or the bare relay): what the
 * machine and the engine allow right now, so a busy machine moves both sides alike.
 */
export interface FloorGoal {
  scenario: string;
  unit: string;
  telepound: number;
  yardstick: number;
  /** What the yardstick is, e.g. "durable floor". */
  against: string;
  /** Telepound ÷ yardstick must be at least (rates) or at most (times, CPU) `limit`. */
  direction: "at least" | "at most";
  limit: number;
  ratio: number;
  met: boolean;
  /** Further ratios reported beside it, e.g. "÷ stateless floor 0.4×". */
  also?: string;
}

export function floorGoal(fields: Omit<FloorGoal, "ratio" | "met">): FloorGoal {
  const r = fields.yardstick === 0 ? Number.NaN : fields.telepound / fields.yardstick;
  return {
    ...fields,
    ratio: round(r, 3),
    met: fields.direction === "at least" ? r >= fields.limit : r <= fields.limit,
  };
}

export function floorGoalsTable(results: ScenarioResult[]): string {
  const lines = [
    "| scenario | Telepound | yardstick (same run) | ratio | goal | met | also |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const goal of results.flatMap((result) => result.goals ?? [])) {
    const sign = goal.direction === "at least" ? "≥" : "≤";
    lines.push(
      `| ${goal.scenario} | ${formatCell(goal.telepound, goal.unit)} | ${goal.against}: ${formatCell(goal.yardstick, goal.unit)} | ${formatNumber(goal.ratio)}× | ${sign} ${goal.limit}× ${goal.against} | ${goal.met ? "✅ yes" : "❌ no"} | ${goal.also ?? ""} |`,
    );
  }
  return lines.join("\n");
}

export interface ScenarioResult {
  id: string;
  title: string;
  rows: Row[];
  serverCpu?: ServerCpuRow[];
  /** The goals set against floors measured in the same run (the rows' own goals are the older, vs relay). */
  goals?: FloorGoal[];
  /** Everything else worth keeping: distributions, CPU per role, process RSS, counts. */
  details: Record<string, unknown>;
}

/** A Usage with its numbers rounded, plus CPU per unit of work (e.g. µs of workerd per message). */
export function usageReport(usage: Usage, units?: { count: number; per: string }): Record<string, unknown> {
  const cpuMs = Object.fromEntries(Object.entries(usage.cpuMs).map(([role, ms]) => [role, round(ms)]));
  const out: Record<string, unknown> = {
    wallMs: round(usage.wallMs),
    cpuMs,
    otherProcessesCpuMs: round(usage.othersMs),
    generatorCores: round(usage.generatorCores),
  };
  if (units && units.count > 0) {
    out[`cpuUsPer${units.per}`] = Object.fromEntries(
      Object.entries(usage.cpuMs).map(([role, ms]) => [role, round((ms * 1000) / units.count)]),
    );
  }
  return out;
}

/** The two CPU columns of a row, from the Telepound measurement (null where none applies). */
export function cpuColumns(usage: Usage | null): Pick<Row, "generatorCores" | "otherCores"> {
  return usage
    ? { generatorCores: usage.generatorCores, otherCores: usage.othersMs / usage.wallMs }
    : { generatorCores: null, otherCores: null };
}

export function serverCpu(
  scenario: string,
  unit: string,
  count: number,
  telepound: Usage,
  relay: Usage,
  floor?: Usage,
  durableFloor?: Usage,
): ServerCpuRow {
  const us = (ms: number | undefined) => round(((ms ?? 0) * 1000) / count);
  return {
    scenario,
    unit,
    workerdRuntimeUs: us(telepound.cpuMs["workerd-runtime"]),
    workerdProxyUs: us(telepound.cpuMs["workerd-proxy"]),
    relayUs: us(relay.cpuMs.relay),
    ...(floor ? { floorRuntimeUs: us(floor.cpuMs["floor-runtime"]) } : {}),
    ...(durableFloor ? { durableFloorRuntimeUs: us(durableFloor.cpuMs["floor-runtime"]) } : {}),
  };
}

export function serverCpuTable(results: ScenarioResult[]): string {
  const lines = [
    "| scenario | CPU per | workerd runtime | wrangler's proxy (dev only) | engine floor's runtime | durable floor's runtime | bare relay | runtime ÷ relay |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const row of results.flatMap((result) => result.serverCpu ?? [])) {
    const r = ratio(row.workerdRuntimeUs, row.relayUs);
    lines.push(
      `| ${row.scenario} | ${row.unit} | ${formatNumber(row.workerdRuntimeUs)} µs | ${formatNumber(row.workerdProxyUs)} µs | ${formatCell(row.floorRuntimeUs ?? null, "µs")} | ${formatCell(row.durableFloorRuntimeUs ?? null, "µs")} | ${formatNumber(row.relayUs)} µs | ${r === null ? "–" : `${formatNumber(r)}×`} |`,
    );
  }
  return lines.join("\n");
}

export function ratio(telepound: number, baseline: number | null): number | null {
  return baseline === null || baseline === 0 ? null : telepound / baseline;
}

function formatNumber(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return "–";
  const rounded = round(value, 3);
  return Math.abs(rounded) >= 1000 ? Math.round(rounded).toLocaleString("en-US") : String(rounded);
}

function formatCell(value: number | null, unit: string): string {
  return value === null ? "–" : `${formatNumber(value)} ${unit}`;
}

export function markdownTable(results: ScenarioResult[]): string {
  const lines = [
    "| scenario | metric | Telepound | baseline (bare relay) | ratio T÷B | engine floor (÷B) | durable floor | goal vs relay | met | generator CPU | other load |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const result of results) {
    for (const row of result.rows) {
      const r = ratio(row.telepound, row.baseline);
      const baseline = row.baselineLabel
        ? `${formatCell(row.baseline, row.unit)} (${row.baselineLabel})`
        : formatCell(row.baseline, row.unit);
      const met = row.met === null ? "report" : row.met ? "✅ yes" : "❌ no";
      const cpu =
        row.generatorCores === null
          ? "–"
          : `${Math.round(row.generatorCores * 100)}%${row.generatorCores >= GENERATOR_BOUND_CORES ? " ⚠ generator-bound" : ""}`;
      const others = row.otherCores === null ? "–" : `${round(row.otherCores, 2)} cores`;
      const floorRatio = row.floor === undefined ? null : ratio(row.floor, row.baseline);
      const floor =
        row.floor === undefined
          ? "–"
          : `${formatCell(row.floor, row.unit)}${floorRatio === null ? "" : ` (${formatNumber(floorRatio)}×)`}`;
      lines.push(
        `| ${row.scenario} | ${row.metric} | ${formatCell(row.telepound, row.unit)} | ${baseline} | ${r === null ? "–" : `${formatNumber(r)}×`} | ${floor} | ${formatCell(row.durableFloor ?? null, row.unit)} | ${row.goal} | ${met} | ${cpu} | ${others} |`,
      );
    }
  }
  return lines.join("\n");
}

export function summaryMs(summary: Summary): string {
  return `p50 ${formatNumber(summary.p50)} / p99 ${formatNumber(summary.p99)} / p99.9 ${formatNumber(summary.p999)} / max ${formatNumber(summary.max)} ms (n=${summary.count})`;
}
