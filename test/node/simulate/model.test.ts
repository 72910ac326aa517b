// The capacity model's own logic (scripts/simulate/model.ts) on the bench's checked-in results: the
// elastic layout opens just enough shards and balancers, the fixed layout breaks where its single objects
// take the whole load, and the costs add up from the counted rows and calls.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_ASSUMPTIONS,
  costs,
  measuredCpu,
  simulate,
  type Verdict,
} from "../../../scripts/simulate/model.js";
import { DIRECT_MESSAGE } from "../../../scripts/simulate/operations.js";
import { PRICES } from "../../../scripts/simulate/platform.js";

const cpu = measuredCpu(JSON.parse(readFileSync("bench/results.json", "utf8")));
const share = (verdict: Verdict, kind: string, limit: string) =>
  (verdict.objects.find((o) => o.kind === kind)!.shares as Record<string, number>)[limit]!;

describe("the capacity model", () => {
  it("opens shards until each is under half its request and CPU limits, and no more", () => {
    for (const registeredUsers of [10_000, 1_000_000, 100_000_000]) {
      const assumptions = { ...DEFAULT_ASSUMPTIONS, registeredUsers };
      const verdict = simulate(assumptions, cpu, "elastic");
      expect(share(verdict, "shard", "requestsPerSecond")).toBeLessThanOrEqual(0.5);
      expect(share(verdict, "shard", "cpuMicrosPerSecond")).toBeLessThanOrEqual(0.5);
      expect(share(verdict, "balancer", "requestsPerSecond")).toBeLessThanOrEqual(0.5);
      // One shard fewer would be over half of a limit, or under the connection target.
      const byConnections = Math.ceil(verdict.concurrentUsers / assumptions.usersPerShard);
      if (verdict.shards > byConnections) {
        const perShard = share(verdict, "shard", "requestsPerSecond") * verdict.shards;
        expect(perShard / (verdict.shards - 1)).toBeGreaterThan(0.5 * 0.98);
      }
    }
  });

  it("finds the fixed layout's single balancer and four shards over their limits at a million users", () => {
    const verdict = simulate({ ...DEFAULT_ASSUMPTIONS, registeredUsers: 1_000_000 }, cpu, "fixed");
    expect(verdict.shards).toBe(4);
    expect(verdict.balancers).toBe(1);
    expect(share(verdict, "balancer", "requestsPerSecond")).toBeGreaterThan(1);
    expect(verdict.goalHolds).toBe(false);
  });

  it("keeps every object under half of every limit at 100 million registered and 10 million concurrent", () => {
    const verdict = simulate({ ...DEFAULT_ASSUMPTIONS, registeredUsers: 100_000_000 }, cpu, "elastic");
    expect(verdict.concurrentUsers).toBe(10_000_000);
    for (const object of verdict.objects)
      for (const [limit, value] of Object.entries(object.shares))
        expect({ kind: object.kind, limit, share: value }).toEqual({
          kind: object.kind,
          limit,
          share: expect.toSatisfy((n: number) => n <= 0.5),
        });
    expect(verdict.goalHolds).toBe(true);
  });

  it("sends the largest group's messages through relays once its audience passes the threshold", () => {
    const large = simulate({ ...DEFAULT_ASSUMPTIONS, registeredUsers: 100_000_000 }, cpu, "elastic");
    // 1,000 member shards: the room calls 32 relays per message, not 1,000 shards.
    expect(large.objects.map((object) => object.kind)).toContain("relay");
    expect(share(large, "room", "requestsPerSecond")).toBeLessThan(0.5);
    const small = simulate({ ...DEFAULT_ASSUMPTIONS, registeredUsers: 10_000 }, cpu, "elastic");
    expect(small.objects.map((object) => object.kind)).not.toContain("relay");
  });

  it("prices a 1:1 message mostly by its rows written", () => {
    const dollars = costs(DEFAULT_ASSUMPTIONS, cpu, 4);
    const rowsWritten = DIRECT_MESSAGE.rowsWritten.home! * PRICES.rowWritten * 1e6;
    expect(dollars.perMillionDirectMessages).toBeGreaterThan(rowsWritten);
    expect(rowsWritten / dollars.perMillionDirectMessages).toBeGreaterThan(0.9);
  });
});
