// A room whose audience spans more than GROUP_RELAY_ABOVE_SHARDS shards (2 in this suite: vitest.config.ts)
// reaches them through its relays (durable-objects/group-relay.ts, group/fanout.ts): the room calls each
// relay once per batch, each relay pushes to its shards, and each shard still hears every message once,
// in the order stored, even while the route switches between direct and relayed.

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ackWindowMs, relayBucketOf } from "../../durable-objects/group/fanout.js";
import { deliveredIds, onShard, postGroup, users } from "./helpers.js";
import { audienceRows, countPushes, countRelayCalls, freshShard, groupOf, names } from "./group-pushes.js";

describe("a large group's relays", () => {
  it("carry a message to an audience past the threshold: one call per relay, one push per shard", async () => {
    expect(env.GROUP_RELAY_ABOVE_SHARDS).toBe("2");
    const members = await users("alice", "bob", "carol", "dave");
    const alice = members[0]!;
    const name = await groupOf(members);
    const shards = ["a", "b", "c", "d"].map(freshShard);
    const sockets = await Promise.all(members.map((member, i) => onShard(member, shards[i]!)));
    const pushes = await Promise.all(shards.map((shard) => countPushes(shard)));
    const relays = await countRelayCalls(name);

    const { id, reply } = await postGroup(sockets[0]!, alice, name, 1, names(members));
    expect(reply).toMatchObject({ type: "sent", status: "delivered" });
    for (const socket of sockets.slice(1)) await socket.waitFor((r) => r.kind === "binary");
    for (const socket of sockets.slice(1)) expect(deliveredIds(socket)).toEqual([id]);
    // Every shard heard it once; the room called only the relays its shards hash to, once each.
    expect(pushes.map((count) => count.calls)).toEqual([1, 1, 1, 1]);
    const buckets = new Set(shards.map(relayBucketOf));
    expect(relays.calls).toBe(buckets.size);
    expect([...relays.relays].sort()).toEqual([...buckets].map((b) => `relay:${name}:${b}`).sort());
    // And each shard was asked to gather acknowledgements for as long as a 4-shard audience wants.
    expect(pushes.map((count) => count.ackWindows)).toEqual(shards.map(() => [ackWindowMs(4)]));
    expect(await audienceRows(name)).toEqual([...shards].sort());
    for (const socket of sockets) socket.close();
  });

  it("keep each shard's order when the route switches: a relayed message waits for a direct one", async () => {
    const members = await users("alice", "bob", "carol", "dave");
    const [alice, bob, carol, dave] = members;
    const name = await groupOf(members);
    const [shardA, shardB, shardC, shardD] = ["a", "b", "c", "d"].map(freshShard) as [
      string,
      string,
      string,
      string,
    ];
    // Two receiving shards: direct. Bob only sends, so his shard is not in the audience.
    const a = await onShard(alice!, shardA);
    const d = await onShard(dave!, shardD);
    const b = await onShard(bob!, shardB, { receive: false });
    // Dave's shard holds the first push it gets until told; it records the order it handles them in.
    const handled: number[] = [];
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let first = true;
    await countPushes(shardD, async (own, group, deliveries) => {
      if (first) {
        first = false;
        await held;
      }
      handled.push(...deliveries.map(({ seq }) => seq));
      return own(group, deliveries);
    });

    const direct = postGroup(a, alice!, name, 1, names(members));
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Carol's receiving socket makes three shards: the next message goes through relays.
    const c = await onShard(carol!, shardC);
    const relays = await countRelayCalls(name);
    const relayed = postGroup(b, bob!, name, 1, names(members));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(handled).toEqual([]);
    release();
    const [one, two] = await Promise.all([direct, relayed]);
    expect(one.reply).toMatchObject({ type: "sent", status: "delivered" });
    expect(two.reply).toMatchObject({ type: "sent", status: "delivered" });
    await d.waitFor(() => deliveredIds(d).length === 2);
    expect(deliveredIds(d)).toEqual([one.id, two.id]);
    expect(handled).toHaveLength(2);
    expect(handled[0]).toBeLessThan(handled[1]!);
    expect(relays.calls).toBeGreaterThan(0);
    // Carol connected after the first was stored: it came in her backlog, the second live, after it.
    await c.waitFor(() => deliveredIds(c).length === 2);
    expect(deliveredIds(c)).toEqual([one.id, two.id]);
    for (const socket of [a, b, c, d]) socket.close();
  });

  it("leave a message queued for the members of a shard a relay could not reach, and reach the rest", async () => {
    const members = await users("alice", "bob", "carol");
    const [alice, bob, carol] = members;
    const name = await groupOf(members);
    const [shardA, shardB, shardC] = ["a", "b", "c"].map(freshShard) as [string, string, string];
    const a = await onShard(alice!, shardA);
    const b = await onShard(bob!, shardB);
    const c = await onShard(carol!, shardC);
    await countPushes(shardC, async () => {
      throw new Error("shard unreachable");
    });

    const { id, reply } = await postGroup(a, alice!, name, 1, names(members));
    expect(reply).toMatchObject({ type: "sent", status: "delivered" });
    await b.waitFor((r) => r.kind === "binary");
    expect(deliveredIds(b)).toEqual([id]);
    expect(deliveredIds(c)).toEqual([]);
    // The failed shard stays in the audience, and Carol's next socket gets the message from the queue.
    expect(await audienceRows(name)).toContain(shardC);
    c.close();
    const again = await onShard(carol!, freshShard("c2"));
    await again.waitFor((r) => r.kind === "binary");
    expect(deliveredIds(again)).toEqual([id]);
    for (const socket of [a, b, again]) socket.close();
  });
});
