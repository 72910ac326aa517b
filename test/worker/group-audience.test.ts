// A room pushes each group message only to its audience: the shards that hold its members' receiving
// sockets (durable-objects/group/audience.ts). Sockets are placed on named shards here, as the balancer
// would place them, and the pushes each shard receives are counted.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { Audience } from "../../durable-objects/group/audience.js";
import { groupStub, shardStub } from "../../durable-objects/names.js";
import type { SessionResponse } from "../../protocol/http.js";
import { addMember, writeTo } from "./group-changes.js";
import { audienceRows, countPushes, freshShard, groupOf as group, names } from "./group-pushes.js";
import { deliveredIds, onShard, postGroup, users } from "./helpers.js";

describe("a group room's audience", () => {
  it("pushes a message to the shards that hold members and to no other", async () => {
    const [alice, bob, carol] = await users("alice", "bob", "carol");
    const name = await group([alice!, bob!]);
    const [shardA, shardB, shardC] = [freshShard("a"), freshShard("b"), freshShard("c")];
    const a = await onShard(alice!, shardA);
    const b = await onShard(bob!, shardB);
    // A live shard with only a stranger on it: nothing of the group's belongs there.
    const c = await onShard(carol!, shardC);
    const counts = await Promise.all([shardA, shardB, shardC].map((shard) => countPushes(shard)));

    const { id, reply } = await postGroup(a, alice!, name, 1, names([alice!, bob!]));
    expect(reply).toMatchObject({ type: "sent", status: "delivered" });
    await b.waitFor((r) => r.kind === "binary");
    expect(deliveredIds(b)).toEqual([id]);
    expect(counts.map((count) => count.calls)).toEqual([1, 1, 0]);
    expect(c.binaries()).toEqual([]);
    expect(await audienceRows(name)).toEqual([shardA, shardB].sort());
    for (const socket of [a, b, c]) socket.close();
  });

  it("reaches a member added while connected, on a shard no other member uses", async () => {
    const [alice, bob, carol] = await users("alice", "bob", "carol");
    const name = await group([alice!, bob!]);
    const [shardA, shardC] = [freshShard("a"), freshShard("c")];
    const a = await onShard(alice!, shardA);
    // Connected before the add: this socket never opens the group's backlog.
    const c = await onShard(carol!, shardC);
    await writeTo(alice!, [carol!]);
    expect((await addMember(alice!, name, carol!.username)).status).toBe(200);
    await c.waitForJson("event");

    const { id, reply } = await postGroup(a, alice!, name, 2, names([alice!, bob!, carol!]));
    expect(reply).toMatchObject({ type: "sent", status: "delivered" });
    await c.waitFor((r) => r.kind === "binary");
    expect(deliveredIds(c)).toEqual([id]);
    for (const socket of [a, c]) socket.close();
  });

  it("drops a shard whose members are gone, and keeps one a socket joined from during the push", async () => {
    const [alice, bob, carol] = await users("alice", "bob", "carol");
    const name = await group([alice!, bob!, carol!]);
    const [shardA, shardB, shardC] = [freshShard("a"), freshShard("b"), freshShard("c")];
    const a = await onShard(alice!, shardA);
    const b = await onShard(bob!, shardB);
    const c = await onShard(carol!, shardC);
    const members = names([alice!, bob!, carol!]);
    // Bob's only socket there closes: the next push finds no member on his shard.
    b.close();
    await vi.waitUntil(
      () =>
        runInDurableObject(shardStub(env, shardB), (_, state) =>
          state.getWebSockets().every((ws) => ws.deserializeAttachment() === null),
        ),
      { timeout: 5000, interval: 20 },
    );
    // Carol's shard answers her push as if nobody were there, and her socket's backlog open reaches the
    // room meanwhile (after the push was sent): the room must not drop the shard her socket is on.
    let reopened = false;
    const countC = await countPushes(shardC, async (original, groupName, deliveries) => {
      if (reopened) return original(groupName, deliveries);
      reopened = true;
      await groupStub(env, groupName).openBacklog(
        carol!.username,
        { id: carol!.sessionId, expiresAt: carol!.expiresAt },
        shardC,
      );
      return deliveries.map(({ slots }) => ({
        reachedOther: false,
        absent: slots.map(({ member }) => member),
      }));
    });
    const countB = await countPushes(shardB);

    const first = await postGroup(a, alice!, name, 1, members);
    expect(first.reply).toMatchObject({ type: "sent" });
    expect(await audienceRows(name)).toEqual([shardA, shardC].sort());

    const second = await postGroup(a, alice!, name, 1, members);
    expect(second.reply).toMatchObject({ type: "sent", status: "delivered" });
    await c.waitFor((r) => r.kind === "binary" && deliveredIds(c).includes(second.id));
    expect(countB.calls).toBe(1);
    expect(countC.calls).toBe(2);
    for (const socket of [a, c]) socket.close();
  });

  it("survives the room's restart: a member connected before it still gets the live message", async () => {
    const [alice, bob] = await users("alice", "bob");
    const name = await group([alice!, bob!]);
    const [shardA, shardB] = [freshShard("a"), freshShard("b")];
    const a = await onShard(alice!, shardA);
    const b = await onShard(bob!, shardB);
    // The room leaves memory (its sockets' shards do not): everything it knew must come from storage.
    await runInDurableObject(groupStub(env, name), (_, state) => state.abort("evicted")).catch(
      () => undefined,
    );

    const { id, reply } = await postGroup(a, alice!, name, 1, names([alice!, bob!]));
    expect(reply).toMatchObject({ type: "sent", status: "delivered" });
    await b.waitFor((r) => r.kind === "binary");
    expect(deliveredIds(b)).toEqual([id]);
    for (const socket of [a, b]) socket.close();
  });

  it("learns its audience from the members' homes once, in a room older than audiences", async () => {
    const [alice, bob] = await users("alice", "bob");
    const name = await group([alice!, bob!]);
    const [shardA, shardB] = [freshShard("a"), freshShard("b")];
    const a = await onShard(alice!, shardA);
    const b = await onShard(bob!, shardB);
    // As the migration leaves a room that had members: no audience, and not yet filled.
    await runInDurableObject(groupStub(env, name), (_, state) => {
      state.storage.sql.exec("DELETE FROM audience");
      state.storage.sql.exec("UPDATE audience_state SET filled = 0");
      state.abort("upgraded");
    }).catch(() => undefined);

    const { id, reply } = await postGroup(a, alice!, name, 1, names([alice!, bob!]));
    expect(reply).toMatchObject({ type: "sent", status: "delivered" });
    await b.waitFor((r) => r.kind === "binary");
    expect(deliveredIds(b)).toEqual([id]);
    expect(await audienceRows(name)).toEqual([shardA, shardB].sort());
    for (const socket of [a, b]) socket.close();
  });

  it("sends each shard only the slots of its members, and every slot where that is not known", async () => {
    const [alice, bob, carol, dave] = await users("alice", "bob", "carol", "dave");
    const members = [alice!, bob!, carol!, dave!];
    const name = await group(members);
    const [shardA, shardB] = [freshShard("a"), freshShard("b")];
    const a = await onShard(alice!, shardA);
    const b = await onShard(bob!, shardB);
    const c = await onShard(carol!, shardB);
    // Dave is offline: his slot goes to no shard, and waits in the room's queue.
    const slotsSent = new Map<string, string[][]>();
    for (const shard of [shardA, shardB]) {
      slotsSent.set(shard, []);
      await countPushes(shard, async (own, groupName, deliveries) => {
        slotsSent.get(shard)!.push(...deliveries.map(({ slots }) => slots.map(({ member }) => member)));
        return own(groupName, deliveries);
      });
    }
    const sorted = (list: SessionResponse[]) => names(list).sort();

    const first = await postGroup(a, alice!, name, 1, names(members));
    expect(first.reply).toMatchObject({ type: "sent", status: "delivered" });
    await c.waitFor((r) => r.kind === "binary");
    expect(slotsSent.get(shardA)).toEqual([[alice!.username]]);
    expect(slotsSent.get(shardB)!.map((list) => list.sort())).toEqual([sorted([bob!, carol!])]);

    // After a restart the room knows its shards (SQLite) but not who is on them: every slot goes, once.
    await runInDurableObject(groupStub(env, name), (_, state) => state.abort("evicted")).catch(
      () => undefined,
    );
    // Sent from the shard that called the room before the restart: it must not keep a stub that broke.
    const second = await postGroup(a, alice!, name, 1, names(members));
    const third = await postGroup(a, alice!, name, 1, names(members));
    expect(third.reply).toMatchObject({ type: "sent", status: "delivered" });
    await b.waitFor((r) => r.kind === "binary" && deliveredIds(b).includes(third.id));
    expect(
      slotsSent
        .get(shardB)!
        .slice(1)
        .map((list) => list.sort()),
    ).toEqual([sorted(members), sorted([bob!, carol!])]);
    expect(deliveredIds(b)).toEqual([first.id, second.id, third.id]);
    expect(deliveredIds(c)).toEqual([first.id, second.id, third.id]);
    for (const socket of [a, b, c]) socket.close();
  });

  it("places members by what joins and what pushes find, each judged by when it happened", async () => {
    const stub = env.GROUPS.get(env.GROUPS.idFromName(`audience-unit-${Date.now()}`));
    await runInDurableObject(stub, (_, state) => {
      const audience = new Audience(state.storage.sql);
      const placed = () =>
        Object.fromEntries(
          audience.snapshot().targets.map(({ shard, members }) => [shard, members && [...members].sort()]),
        );
      audience.join("s1", "ann");
      audience.join("s1", "bob");
      audience.join("s2", "cat");
      expect(placed()).toEqual({ s1: ["ann", "bob"], s2: ["cat"] });
      // A push sent now finds bob gone from s1; cat joins s1 while it is on its way.
      const { generation } = audience.snapshot();
      audience.join("s1", "cat");
      audience.settle("s1", generation, ["ann", "bob"], ["bob"], false);
      expect(placed()).toEqual({ s1: ["ann", "cat"], s2: ["cat"] });
      // Nobody found on s2, and nobody joined it since: it leaves the audience, row and all.
      audience.settle("s2", audience.snapshot().generation, ["cat"], ["cat"], false);
      expect(placed()).toEqual({ s1: ["ann", "cat"] });
      // Ann leaves the group: her slot goes nowhere, so she is unplaced at once.
      audience.forget("ann");
      expect(placed()).toEqual({ s1: ["cat"] });
      // Read back after a restart: the shard is known, who is on it is not, until a push with every slot.
      const restarted = new Audience(state.storage.sql);
      expect(restarted.snapshot().targets).toEqual([{ shard: "s1", members: null }]);
      restarted.settle("s1", restarted.snapshot().generation, ["ann", "cat", "dan"], ["ann"], true);
      expect(restarted.snapshot().targets).toEqual([{ shard: "s1", members: new Set(["cat", "dan"]) }]);
    });
  });
});
