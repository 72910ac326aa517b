// A home's presence (durable-objects/home/presence.ts) lives in memory: after a wake-up it asks the shards,
// and it may overcount (a push that reaches nobody drops a shard) but must never miss a live socket.

import { describe, expect, it } from "vitest";
import { Presence } from "../../../durable-objects/home/presence.js";

/** A Presence whose shards answer `answers` when asked, counting how often they were asked. */
function presenceAnswering(answers: Record<string, number>) {
  const asked = { times: 0 };
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const presence = new Presence(async () => {
    asked.times++;
    await gate;
    return new Map(Object.entries(answers));
  });
  return { presence, asked, release };
}

describe("Presence", () => {
  it("asks the shards once after a wake-up, even for concurrent pushes, and lists only shards with sockets", async () => {
    const { presence, asked, release } = presenceAnswering({ "shard-0": 2, "shard-1": 0, "shard-2": 1 });
    const first = presence.shards();
    const second = presence.shards();
    release();
    expect(await first).toEqual(["shard-0", "shard-2"]);
    expect(await second).toEqual(["shard-0", "shard-2"]);
    expect(await presence.shards()).toEqual(["shard-0", "shard-2"]);
    expect(asked.times).toBe(1);
  });

  it("keeps sockets attached while the shards were being asked, even if a shard's answer missed them", async () => {
    const { presence, release } = presenceAnswering({ "shard-0": 1 });
    const shards = presence.shards();
    presence.attach("shard-3");
    release();
    expect(await shards).toEqual(["shard-0", "shard-3"]);
  });

  it("counts sockets once known: a shard goes with its last close", async () => {
    const { presence, release } = presenceAnswering({});
    release();
    expect(await presence.shards()).toEqual([]);
    presence.attach("shard-1");
    presence.attach("shard-1");
    presence.detach("shard-1");
    expect(await presence.shards()).toEqual(["shard-1"]);
    presence.detach("shard-1");
    expect(await presence.shards()).toEqual([]);
  });

  it("ignores a close before the counts are known rather than risk undercounting", async () => {
    const { presence, release } = presenceAnswering({ "shard-0": 1 });
    presence.attach("shard-0");
    presence.detach("shard-0");
    release();
    // The answer already counted the socket and the attach counted it again: two, never zero.
    expect(await presence.shards()).toEqual(["shard-0"]);
    presence.detach("shard-0");
    expect(await presence.shards()).toEqual(["shard-0"]);
  });

  it("drops a shard a push found empty", async () => {
    const { presence, release } = presenceAnswering({ "shard-0": 1, "shard-1": 1 });
    release();
    await presence.shards();
    presence.forgetShard("shard-0");
    expect(await presence.shards()).toEqual(["shard-1"]);
  });
});
