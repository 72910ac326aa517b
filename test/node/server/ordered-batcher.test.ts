// OrderedBatcher (durable-objects/ordered-batcher.ts) is plain TypeScript: its ordering and batching are
// tested here with a fake destination that records every call and answers when told to.

import { describe, expect, it, vi } from "vitest";
import { OrderedBatcher, OrderedBatchers } from "../../../durable-objects/ordered-batcher.js";

/** A destination whose calls wait until `answer` is called; each call's items are recorded. */
function fakeDestination() {
  const calls: number[][] = [];
  const waiting: Array<() => void> = [];
  const send = (items: number[]) => {
    calls.push(items);
    return new Promise<string[]>((resolve) => waiting.push(() => resolve(items.map((n) => `r${n}`))));
  };
  const answer = async () => {
    waiting.shift()!();
    // Let the batcher see the answer and send what queued meanwhile.
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { calls, send, answer };
}

describe("OrderedBatcher", () => {
  it("keeps one call in flight and sends what queued meanwhile as the next batch, in order", async () => {
    const destination = fakeDestination();
    const batcher = new OrderedBatcher(destination.send);
    const results = [1, 2, 3, 4].map((n) => batcher.submit(n));
    expect(destination.calls).toEqual([[1]]);
    await destination.answer();
    expect(destination.calls).toEqual([[1], [2, 3, 4]]);
    await destination.answer();
    expect(await Promise.all(results)).toEqual(["r1", "r2", "r3", "r4"]);
    expect(batcher.idle).toBe(true);
  });

  it("sends items submitted together as one call", async () => {
    const destination = fakeDestination();
    const batcher = new OrderedBatcher(destination.send);
    const results = batcher.submitAll([1, 2, 3]);
    expect(destination.calls).toEqual([[1, 2, 3]]);
    await destination.answer();
    expect(await results).toEqual(["r1", "r2", "r3"]);
  });

  it("splits a long queue at maxBatch", async () => {
    const destination = fakeDestination();
    const batcher = new OrderedBatcher(destination.send, 2);
    const results = batcher.submitAll([1, 2, 3, 4, 5]);
    await destination.answer();
    await destination.answer();
    await destination.answer();
    expect(destination.calls).toEqual([[1, 2], [3, 4], [5]]);
    expect(await results).toEqual(["r1", "r2", "r3", "r4", "r5"]);
  });

  it("rejects every item of a failed call and carries on with the next", async () => {
    let fail = true;
    const batcher = new OrderedBatcher<number, number>(async (items) => {
      if (fail) {
        fail = false;
        throw new Error("destination down");
      }
      return items;
    });
    const failed = batcher.submitAll([1, 2]);
    await expect(failed).rejects.toThrow("destination down");
    expect(await batcher.submit(3)).toBe(3);
  });

  it("asks a linger given as a function before each batch, and gathers for as long as it says", async () => {
    vi.useFakeTimers();
    try {
      const calls: number[][] = [];
      let linger = 10;
      const batcher = new OrderedBatcher<number, number>(
        async (items) => {
          calls.push(items);
          return items;
        },
        256,
        () => linger,
      );
      const first = batcher.submit(1);
      await vi.advanceTimersByTimeAsync(9);
      expect(calls).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(await first).toBe(1);
      // The destination now wants a longer window: what arrives within it goes as one call.
      linger = 5000;
      const later = [batcher.submit(2), batcher.submit(3)];
      await vi.advanceTimersByTimeAsync(4000);
      const last = batcher.submit(4);
      expect(calls).toEqual([[1]]);
      await vi.advanceTimersByTimeAsync(1000);
      expect(await Promise.all([...later, last])).toEqual([2, 3, 4]);
      expect(calls).toEqual([[1], [2, 3, 4]]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("keeps one batcher per destination", async () => {
    const sent: Array<[string, number[]]> = [];
    const batchers = new OrderedBatchers<number, number>(
      (destination) =>
        new OrderedBatcher(async (items) => {
          sent.push([destination, items]);
          return items;
        }),
    );
    await Promise.all([batchers.submitAll("a", [1, 2]), batchers.submit("b", 3)]);
    expect(sent).toEqual([
      ["a", [1, 2]],
      ["b", [3]],
    ]);
  });
});
