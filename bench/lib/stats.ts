// Summary statistics for the benchmark: nearest-rank percentiles over raw samples, rates and rounding.
// No interpolation: p99.9 of 5,000 samples is the 5th-slowest sample, which is what a user would see.

export interface Summary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Nearest-rank percentile (0 < p ≤ 100) of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((total, value) => total + value, 0);
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    mean: sorted.length > 0 ? sum / sorted.length : Number.NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

/** Rounds to `digits` significant digits, for results.json and the table (raw floats are noise). */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const scale = 10 ** (digits - 1 - Math.floor(Math.log10(Math.abs(value))));
  return Math.round(value * scale) / scale;
}

export function roundSummary(summary: Summary, digits = 3): Summary {
  const out = { ...summary };
  for (const key of Object.keys(out) as Array<keyof Summary>) {
    if (key !== "count") out[key] = round(out[key], digits);
  }
  return out;
}

/** Coefficient of variation (standard deviation ÷ mean): 0 is perfectly even. */
export function coefficientOfVariation(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  if (mean === 0) return 0;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return Math.sqrt(variance) / mean;
}

export const MIB = 1024 * 1024;
