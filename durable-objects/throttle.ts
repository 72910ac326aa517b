// Throttle: fixed-window counters for abuse limits that span requests (signups and logins per client
// address, uploads per user). One object per counted key, so no single object sees every request.
//
// Counts live in memory: an evicted throttle forgets, which errs on the side of letting people in. The
// limits are there to slow floods, not to account precisely.

import { DurableObject } from "cloudflare:workers";

export type ThrottleResult = { ok: true } | { ok: false; retryAfterMs: number };

export class Throttle extends DurableObject<Env> {
  private readonly windows = new Map<string, { start: number; count: number }>();

  hit(bucket: string, limit: number, windowMs: number): ThrottleResult {
    const now = Date.now();
    let window = this.windows.get(bucket);
    if (!window || now - window.start >= windowMs) {
      window = { start: now, count: 0 };
      this.windows.set(bucket, window);
    }
    if (window.count >= limit) return { ok: false, retryAfterMs: window.start + windowMs - now };
    window.count++;
    return { ok: true };
  }
}
