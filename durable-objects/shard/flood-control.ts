// Flood control: a token bucket per user on each shard, shared by all of that user's sockets there (so
// more sockets buy no more frames). A client over the rate has frames refused with a "rate_limited"
// error (nothing it sent is silently dropped), and a socket that keeps flooding after being told is
// disconnected. Other users on the shard are served all the while.

/** Refused frames, without slowing down in between, after which the flooding socket is closed (1008). */
export const FLOOD_DISCONNECT_AFTER = 1000;

interface Bucket {
  tokens: number;
  updatedAt: number;
  /** Refusals since the client last slowed down enough to half refill its bucket. */
  refusedInARow: number;
}

export type Admission = "ok" | "refuse" | "disconnect";

export class FloodControl {
  private readonly buckets = new Map<string, Bucket>();

  /** `ratePerSecond` sustained; bursts of twice that. */
  constructor(private readonly ratePerSecond: number) {}

  /** `key`: whose budget the frame spends (the user's). */
  admit(key: string, now = Date.now()): Admission {
    if (!(this.ratePerSecond > 0)) return "ok";
    const capacity = this.ratePerSecond * 2;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = { tokens: capacity, updatedAt: now, refusedInARow: 0 };
      this.buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(
      capacity,
      bucket.tokens + ((now - bucket.updatedAt) / 1000) * this.ratePerSecond,
    );
    bucket.updatedAt = now;
    // Only a client that really slowed down (its bucket half refilled) is forgiven its refusals; one
    // that floods on gets the odd token back but keeps counting towards the disconnect.
    if (bucket.tokens >= capacity / 2) bucket.refusedInARow = 0;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return "ok";
    }
    bucket.refusedInARow++;
    return bucket.refusedInARow >= FLOOD_DISCONNECT_AFTER ? "disconnect" : "refuse";
  }

  forget(key: string): void {
    this.buckets.delete(key);
  }
}
