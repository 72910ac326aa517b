// eachAtMost (durable-objects/each-at-most.ts): every item done, results in order, never more than the
// limit in flight, and the next started as soon as one finishes rather than in waves.

import { describe, expect, it } from "vitest";
import { eachAtMost } from "../../../durable-objects/each-at-most.js";

describe("eachAtMost", () => {
  it("runs every item with at most `limit` in flight, starting the next as each finishes", async () => {
    let inFlight = 0;
    let most = 0;
    const started: number[] = [];
    const releases = new Map<number, () => void>();
    const work = (item: number) =>
      new Promise<number>((resolve) => {
        inFlight++;
        most = Math.max(most, inFlight);
        started.push(item);
        releases.set(item, () => {
          inFlight--;
          resolve(item * 10);
        });
      });
    const done = eachAtMost(3, [0, 1, 2, 3, 4], work);
    await Promise.resolve();
    expect(started).toEqual([0, 1, 2]);
    // The second finishing lets the fourth start at once, while the first and third still run.
    releases.get(1)!();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(started).toEqual([0, 1, 2, 3]);
    for (const item of [0, 2, 3]) releases.get(item)!();
    await new Promise((resolve) => setTimeout(resolve, 0));
    releases.get(4)!();
    expect(await done).toEqual([0, 10, 20, 30, 40]);
    expect(most).toBe(3);
  });

  it("does nothing for no items, and runs fewer items than the limit all at once", async () => {
    expect(await eachAtMost(3, [], async () => 1)).toEqual([]);
    expect(await eachAtMost(3, ["a", "b"], async (item) => item.toUpperCase())).toEqual(["A", "B"]);
  });
});
