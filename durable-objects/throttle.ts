// Throttle: fixed-window counters for abuse limits that span requests (signups and logins per client
// address, uploads per user). A fixed pool of objects shares the counters by hash (names.ts), so no single
// object sees every request and no client can make one object per invented key.
//
// Counts live in memory: an evicted throttle forgets, which errs on the side of letting people in. The
// limits are there to slow floods, not to account precisely.

import { DurableObject } from "cloudflare:workers";

export type ThrottleResult = { ok: true } | { ok: false; retryAfterMs: number };

/** Windows are swept at most this often: each sweep costs a pass over every counter here. */
const SWEEP_INTERVAL_MS = 60_000;

export class Throttle extends DurableObject<Env> {
  private readonly windows = new Map<string, { start: number; count: number; windowMs: number }>();
  private lastSweep = 0;

  /**
   * Counts `cost` (one request, or the users one request adds) in the bucket's window, or nothing when
   * that would take it past `limit`.
   */
  hit(bucket: string, limit: number, windowMs: number, cost = 1): ThrottleResult {
    const now = Date.now();
    this.sweep(now);
    let window = this.windows.get(bucket);
    if (!window || now - window.start >= windowMs) {
      window = { start: now, count: 0, windowMs };
      this.windows.set(bucket, window);
    }
    if (window.count + cost > limit) return { ok: false, retryAfterMs: window.start + windowMs - now };
    window.count += cost;
    return { ok: true };
  }

  /** Gives back what a hit counted for something that did not happen after all. */
  refund(bucket: string, cost: number): void {
    const window = this.windows.get(bucket);
    if (window) window.count = Math.max(0, window.count - cost);
  }

  /** Forgets windows that have ended, so counters for addresses seen once do not pile up in memory. */
  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    for (const [bucket, window] of this.windows)
      if (now - window.start >= window.windowMs) this.windows.delete(bucket);
  }
}
