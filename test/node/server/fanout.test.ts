// How a room reaches its audience (durable-objects/group/fanout.ts): directly or through relays, and how
// long each shard gathers acknowledgements. Plain TypeScript, tested here.

import { describe, expect, it } from "vitest";
import {
  MAX_ACK_WINDOW_MS,
  MIN_ACK_WINDOW_MS,
  RELAY_BUCKETS,
  ROOM_ACK_CALLS_PER_SECOND,
  ackWindowMs,
  boundedAckWindowMs,
  planFanout,
  relayBucketOf,
} from "../../../durable-objects/group/fanout.js";

const targets = (count: number) =>
  Array.from({ length: count }, (_, i) => ({ shard: `shard:weur:0:${i}`, members: null }));

describe("planFanout", () => {
  it("pushes directly up to the threshold, and through relays past it", () => {
    expect(planFanout(targets(32), 32)).toEqual({ route: "direct", targets: targets(32) });
    const plan = planFanout(targets(33), 32);
    expect(plan.route).toBe("relayed");
  });

  it("gives every shard to exactly one relay, the one its name hashes to, and no relay an empty list", () => {
    const all = targets(1000);
    const plan = planFanout(all, 32);
    if (plan.route !== "relayed") throw new Error("expected relays");
    const given = plan.relays.flatMap(({ bucket, targets: list }) => {
      expect(list.length).toBeGreaterThan(0);
      for (const target of list) expect(relayBucketOf(target.shard)).toBe(bucket);
      return list.map((target) => target.shard);
    });
    expect(given.sort()).toEqual(all.map((target) => target.shard).sort());
    expect(plan.relays.length).toBeLessThanOrEqual(RELAY_BUCKETS);
    // Spread: 1,000 shards over 32 relays, none carrying more than twice its share.
    expect(Math.max(...plan.relays.map(({ targets: list }) => list.length))).toBeLessThan((2 * 1000) / 32);
  });

  it("keeps a shard's relay when the audience around it changes", () => {
    const bucketIn = (plan: ReturnType<typeof planFanout>, shard: string) =>
      plan.route === "relayed"
        ? plan.relays.find(({ targets: list }) => list.some((target) => target.shard === shard))?.bucket
        : undefined;
    const shard = "shard:weur:0:7";
    expect(bucketIn(planFanout(targets(40), 2), shard)).toBe(bucketIn(planFanout(targets(900), 2), shard));
  });
});

describe("ackWindowMs", () => {
  it("spreads an audience's acknowledgements so the room gets at most its budget of calls a second", () => {
    expect(ackWindowMs(1)).toBe(MIN_ACK_WINDOW_MS);
    for (const shards of [50, 200, 1000]) {
      const windowSeconds = ackWindowMs(shards) / 1000;
      expect(shards / windowSeconds).toBeLessThanOrEqual(ROOM_ACK_CALLS_PER_SECOND);
    }
    expect(ackWindowMs(1_000_000)).toBe(MAX_ACK_WINDOW_MS);
  });

  it("holds what a shard is asked for to the bounds", () => {
    expect(boundedAckWindowMs(undefined)).toBe(MIN_ACK_WINDOW_MS);
    expect(boundedAckWindowMs(Number.NaN)).toBe(MIN_ACK_WINDOW_MS);
    expect(boundedAckWindowMs(-5)).toBe(MIN_ACK_WINDOW_MS);
    expect(boundedAckWindowMs(1e9)).toBe(MAX_ACK_WINDOW_MS);
    expect(boundedAckWindowMs(500)).toBe(500);
  });
});
