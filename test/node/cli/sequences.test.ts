// The per-device sequence rules a receiver applies: a gap is counted, a missing message arriving later is
// late, anything else at or below the highest shown is a replay, whatever its age; the missing ranges are
// capped; and sequences.json carries it all across processes, merged with this device's own sends.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nodeHome } from "../../../cli-client/platform/node-home.js";
import {
  ENTRIES_PER_SENDER,
  MISSING_RANGES_KEPT,
  PersistedSequences,
  SequenceTracker,
  conversationOf,
} from "../../../client/store/sequences.js";
import { tempDir } from "./helpers.js";

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await dir.remove();
});

const KEY = "bob/0123456789abcdef0123456789abcdef/u:alice";
const DEVICE = new Uint8Array(16).fill(0x42);
const OTHER_DEVICE = new Uint8Array(16).fill(0x43);
const fromBob = { sender: "bob", kind: "direct", target: "alice", sentAt: 1_000 } as const;

/** Shows `sequence` if the rules say so; returns the verdict. By default a message is sent at ms `sequence`. */
function deliver(tracker: SequenceTracker, sequence: number, key = KEY, sentAt = sequence) {
  const position = { sender: key.slice(0, key.indexOf("/")), key, sequence, sentAt };
  const verdict = tracker.verdictFor(position);
  if (verdict.kind !== "replay") tracker.record(position);
  return verdict;
}

describe("SequenceTracker", () => {
  it("shows consecutive messages with no gap and refuses each one again", () => {
    const tracker = new SequenceTracker();
    for (let sequence = 1; sequence <= 5; sequence++) {
      expect(deliver(tracker, sequence)).toEqual({ kind: "next", missedBefore: 0 });
    }
    for (let sequence = 1; sequence <= 5; sequence++) expect(deliver(tracker, sequence).kind).toBe("replay");
  });

  it("counts the messages skipped before one, then shows each late arrival once, as late", () => {
    const tracker = new SequenceTracker();
    deliver(tracker, 1);
    expect(deliver(tracker, 5)).toEqual({ kind: "next", missedBefore: 3 });
    expect(deliver(tracker, 3)).toEqual({ kind: "late" });
    expect(deliver(tracker, 3)).toEqual({ kind: "replay" });
    expect(deliver(tracker, 2)).toEqual({ kind: "late" });
    expect(deliver(tracker, 4)).toEqual({ kind: "late" });
    expect(deliver(tracker, 4)).toEqual({ kind: "replay" });
    expect(deliver(tracker, 6)).toEqual({ kind: "next", missedBefore: 0 });
  });

  it("refuses a replay of the very first message after any number of others", () => {
    const tracker = new SequenceTracker();
    for (let sequence = 1; sequence <= 30_000; sequence++) deliver(tracker, sequence);
    expect(deliver(tracker, 1)).toEqual({ kind: "replay" });
  });

  it("accepts any first sequence without a gap, and shows the ones before it once, as late", () => {
    const tracker = new SequenceTracker();
    expect(deliver(tracker, 40)).toEqual({ kind: "next", missedBefore: 0 });
    expect(deliver(tracker, 39)).toEqual({ kind: "late" });
    expect(deliver(tracker, 1)).toEqual({ kind: "late" });
    expect(deliver(tracker, 39)).toEqual({ kind: "replay" });
  });

  it("keeps sender, device and conversation apart", () => {
    const tracker = new SequenceTracker();
    deliver(tracker, 1, "bob/aa/u:alice");
    expect(deliver(tracker, 1, "bob/bb/u:alice").kind).toBe("next");
    expect(deliver(tracker, 1, "bob/aa/g:alice").kind).toBe("next");
    expect(deliver(tracker, 1, "carol/aa/u:alice").kind).toBe("next");
    expect(conversationOf("direct", "team")).not.toBe(conversationOf("group", "team"));
  });

  it(`keeps at most ${MISSING_RANGES_KEPT} missing ranges, forgetting the lowest: those are refused`, () => {
    const tracker = new SequenceTracker();
    deliver(tracker, 1);
    // Every other sequence: each skip leaves one missing range of one.
    for (let i = 1; i <= MISSING_RANGES_KEPT + 5; i++) deliver(tracker, 1 + 2 * i);
    expect(deliver(tracker, 2)).toEqual({ kind: "replay" });
    expect(deliver(tracker, 10)).toEqual({ kind: "replay" });
    expect(deliver(tracker, 12)).toEqual({ kind: "late" });
    const high = 1 + 2 * (MISSING_RANGES_KEPT + 5);
    expect(deliver(tracker, high - 1)).toEqual({ kind: "late" });
  });

  it("keeps the cap when a late arrival splits a range", () => {
    const tracker = new SequenceTracker();
    deliver(tracker, 1);
    for (let i = 1; i < MISSING_RANGES_KEPT; i++) deliver(tracker, 1 + 2 * i);
    const top = 1 + 2 * (MISSING_RANGES_KEPT - 1);
    // One wide range on top: the 1,000th. Splitting it makes 1,001 ranges, so the lowest goes.
    deliver(tracker, top + 10);
    expect(deliver(tracker, top + 5)).toEqual({ kind: "late" });
    expect(deliver(tracker, 2)).toEqual({ kind: "replay" });
    expect(deliver(tracker, 4)).toEqual({ kind: "late" });
    expect(deliver(tracker, top + 4)).toEqual({ kind: "late" });
    expect(deliver(tracker, top + 6)).toEqual({ kind: "late" });
  });
});

describe("the bound on entries per sender", () => {
  const deviceKey = (index: number) => `bob/${index.toString(16).padStart(32, "0")}/u:alice`;

  it("drops the entry with the oldest message past the bound, and still refuses that entry's old messages", () => {
    const tracker = new SequenceTracker();
    // One message from each of ENTRIES_PER_SENDER + 1 devices, device i at time 1000 + i.
    for (let index = 0; index <= ENTRIES_PER_SENDER; index++) {
      expect(deliver(tracker, 1, deviceKey(index), 1_000 + index).kind).toBe("next");
    }
    // Device 0's entry is gone; a replay of its message (sent at 1000) is refused all the same.
    expect(deliver(tracker, 1, deviceKey(0), 1_000)).toEqual({ kind: "replay" });
    // The newer devices are still tracked as before.
    expect(deliver(tracker, 1, deviceKey(1), 1_001)).toEqual({ kind: "replay" });
    expect(deliver(tracker, 2, deviceKey(1), 2_000)).toEqual({ kind: "next", missedBefore: 0 });
    // A real new device of bob's, whose messages are newer than the floor, is shown.
    expect(deliver(tracker, 1, deviceKey(9_999), 3_000)).toEqual({ kind: "next", missedBefore: 0 });
    // Another sender is not affected by bob's floor.
    expect(deliver(tracker, 1, `carol/${"0".repeat(32)}/u:alice`, 500)).toEqual({
      kind: "next",
      missedBefore: 0,
    });
  });

  it("keeps the bound and the floor across processes", async () => {
    const home = nodeHome(dir.path);
    const first = await PersistedSequences.load(home, "alice");
    const device = (index: number) => {
      const id = new Uint8Array(16);
      new DataView(id.buffer).setUint32(12, index);
      return id;
    };
    for (let index = 0; index <= ENTRIES_PER_SENDER; index++) {
      first.accept({ ...fromBob, sentAt: 1_000 + index }, { deviceId: device(index), sequence: 1 });
    }
    await first.commit();
    const file = await home.read("sequences.json");
    expect(file!.entries.filter((entry) => entry.sender === "bob")).toHaveLength(ENTRIES_PER_SENDER);
    expect(file!.floors).toEqual([["bob", 1_000]]);

    const second = await PersistedSequences.load(home, "alice");
    expect(second.check({ ...fromBob, sentAt: 1_000 }, { deviceId: device(0), sequence: 1 })).toEqual({
      kind: "replay",
    });
    expect(second.check({ ...fromBob, sentAt: 5_000 }, { deviceId: device(0), sequence: 2 }).kind).toBe(
      "next",
    );
  });
});

describe("PersistedSequences", () => {
  it("carries what was shown to the next process only once committed", async () => {
    const home = nodeHome(dir.path);
    const first = await PersistedSequences.load(home, "alice");
    first.accept(fromBob, { deviceId: DEVICE, sequence: 1 });
    first.accept(fromBob, { deviceId: DEVICE, sequence: 4 });
    expect(
      (await PersistedSequences.load(home, "alice")).check(fromBob, { deviceId: DEVICE, sequence: 1 }),
    ).toEqual({
      kind: "next",
      missedBefore: 0,
    });
    await first.commit();

    const second = await PersistedSequences.load(home, "alice");
    expect(second.check(fromBob, { deviceId: DEVICE, sequence: 1 })).toEqual({ kind: "replay" });
    expect(second.check(fromBob, { deviceId: DEVICE, sequence: 3 })).toEqual({ kind: "late" });
    expect(second.check(fromBob, { deviceId: DEVICE, sequence: 6 })).toEqual({
      kind: "next",
      missedBefore: 1,
    });
    expect(second.check(fromBob, { deviceId: OTHER_DEVICE, sequence: 9 })).toEqual({
      kind: "next",
      missedBefore: 0,
    });
    // Another user of the home starts with nothing.
    const carol = await PersistedSequences.load(home, "carol");
    expect(carol.check(fromBob, { deviceId: DEVICE, sequence: 1 }).kind).toBe("next");
  });

  it("learns this device's own sends from another process, and keeps them when it commits", async () => {
    const home = nodeHome(dir.path);
    const receiver = await PersistedSequences.load(home, "alice");
    const own = { sender: "alice", kind: "group", target: "team", sentAt: 1_000 } as const;
    await home.withLock(() =>
      PersistedSequences.recordSentLocked(home, "alice", { deviceId: DEVICE, sequence: 2 }, "g:team"),
    );
    expect(receiver.check(own, { deviceId: DEVICE, sequence: 2 }).kind).toBe("next");
    await receiver.refresh();
    expect(receiver.check(own, { deviceId: DEVICE, sequence: 2 })).toEqual({ kind: "replay" });
    expect(receiver.check(own, { deviceId: DEVICE, sequence: 1 })).toEqual({ kind: "replay" });

    // The receiver's commit of someone else's message leaves the sender's record standing.
    await home.withLock(() =>
      PersistedSequences.recordSentLocked(home, "alice", { deviceId: DEVICE, sequence: 3 }, "g:team"),
    );
    receiver.accept(fromBob, { deviceId: DEVICE, sequence: 1 });
    await receiver.commit();
    const later = await PersistedSequences.load(home, "alice");
    expect(later.check(own, { deviceId: DEVICE, sequence: 3 })).toEqual({ kind: "replay" });
    expect(later.check(fromBob, { deviceId: DEVICE, sequence: 1 })).toEqual({ kind: "replay" });
  });
});
