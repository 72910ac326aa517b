// A room's queue by cursor (durable-objects/group/queue.ts), on its own: acknowledgements out of order, a
// member's second session, a member away with no session, and a member who leaves and is back before
// their hand-over is done. Each checked against the `pending` and `owed` views, which read the cursors.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { GroupQueue } from "../../durable-objects/group/queue.js";
import type { QueueQuotas } from "../../durable-objects/quotas.js";

const QUOTAS: QueueQuotas = {
  perRecipient: { items: 3, bytes: 1_000_000 },
  perSender: { items: 100, bytes: 1_000_000 },
};
const FAR = 9e12;

/** Runs `test` on a fresh room's storage, with a queue of its own and readers of its views. */
async function withQueue(
  test: (
    queue: GroupQueue,
    read: { pending(): string[]; owed(): string[]; posts(): number[] },
    sql: SqlStorage,
  ) => void,
) {
  const stub = env.GROUPS.get(env.GROUPS.idFromName(`cursors-${crypto.randomUUID()}`));
  await runInDurableObject(stub, (_, state) => {
    const sql = state.storage.sql;
    const rows = (query: string) =>
      sql
        .exec<{ a: string; b: number }>(query)
        .toArray()
        .map((row) => `${row.a}:${row.b}`);
    test(
      new GroupQueue(sql),
      {
        pending: () => rows("SELECT session_id AS a, seq AS b FROM pending ORDER BY a, b"),
        owed: () => rows("SELECT member AS a, seq AS b FROM owed ORDER BY a, b"),
        posts: () =>
          sql
            .exec<{ seq: number }>("SELECT seq FROM posts ORDER BY seq")
            .toArray()
            .map((row) => row.seq),
      },
      sql,
    );
  });
}

function store(queue: GroupQueue, id: string, members: string[]) {
  const slots = members.map((member) => ({ member, slot: new Uint8Array([1, 2, 3]) }));
  return queue.store("ann", id, new Uint8Array([9]), slots, 1, QUOTAS);
}

describe("a room's cursors", () => {
  it("take acknowledgements in any order, and a message leaves once every member is past it", async () => {
    await withQueue((queue, read, sql) => {
      queue.addSession("ann", { id: "a1", expiresAt: FAR });
      queue.addSession("bob", { id: "b1", expiresAt: FAR });
      for (const id of ["m1", "m2", "m3"]) store(queue, id, ["ann", "bob"]);
      queue.acknowledge([{ member: "ann", session: "a1", ids: ["m1", "m2", "m3"] }]);
      expect(read.pending()).toEqual(["b1:1", "b1:2", "b1:3"]);
      // Bob has 3 first, then 1: he still waits for 2, and only message 1 is nobody's.
      queue.acknowledge([{ member: "bob", session: "b1", ids: ["m3"] }]);
      queue.acknowledge([{ member: "bob", session: "b1", ids: ["m1"] }]);
      expect(read.pending()).toEqual(["b1:2"]);
      expect(read.posts()).toEqual([2, 3]);
      expect(queue.hasPendingUpTo("b1", 1)).toBe(false);
      expect(queue.hasPendingUpTo("b1", 3)).toBe(true);
      // What a later read of the backlog gives is what is pending: 2 alone.
      expect(queue.backlog("b1", 0).items).toHaveLength(1);
      // Another queue on the same storage (a wake-up) knows the out-of-order acknowledgement too.
      const woken = new GroupQueue(sql);
      woken.acknowledge([{ member: "bob", session: "b1", ids: ["m2"] }]);
      expect(read.pending()).toEqual([]);
      expect(read.posts()).toEqual([]);
    });
  });

  it("ignore an acknowledgement naming another member's session, and one for an unknown id", async () => {
    await withQueue((queue, read) => {
      queue.addSession("bob", { id: "b1", expiresAt: FAR });
      store(queue, "m1", ["bob", "eve"]);
      queue.acknowledge([
        { member: "eve", session: "b1", ids: ["m1"] },
        { member: "bob", session: "b1", ids: ["nope"] },
      ]);
      expect(read.pending()).toEqual(["b1:1"]);
    });
  });

  it("give a member's new session what they are owed, and keep it owed while they have none", async () => {
    await withQueue((queue, read) => {
      queue.addSession("bob", { id: "b1", expiresAt: FAR });
      store(queue, "m1", ["ann", "bob"]);
      store(queue, "m2", ["ann", "bob"]);
      queue.acknowledge([{ member: "bob", session: "b1", ids: ["m1"] }]);
      queue.addSession("bob", { id: "b2", expiresAt: FAR });
      expect(read.pending()).toEqual(["b1:2", "b2:2"]);
      // Ann never had a session: she is owed both from the first message that had her slot.
      expect(read.owed()).toEqual(["ann:1", "ann:2", "bob:2"]);
      // Bob's sessions end (a logout, an expiry): what he was owed stays owed.
      queue.removeSession("bob", "b1");
      queue.addSession("bob", { id: "b3", expiresAt: 5 });
      queue.removeExpiredSessions(10);
      queue.removeSession("bob", "b2");
      expect(read.owed()).toEqual(["ann:1", "ann:2", "bob:2"]);
      queue.addSession("bob", { id: "b4", expiresAt: FAR });
      expect(read.pending()).toEqual(["b4:2"]);
    });
  });

  it("refuse a message past the share of the member furthest behind, and take it once they catch up", async () => {
    await withQueue((queue) => {
      queue.addSession("ann", { id: "a1", expiresAt: FAR });
      queue.addSession("bob", { id: "b1", expiresAt: FAR });
      for (const id of ["m1", "m2", "m3"]) expect(store(queue, id, ["ann", "bob"]).ok).toBe(true);
      queue.acknowledge([{ member: "ann", session: "a1", ids: ["m1", "m2", "m3"] }]);
      expect(store(queue, "m4", ["ann", "bob"])).toMatchObject({ ok: false, member: "bob" });
      queue.acknowledge([{ member: "bob", session: "b1", ids: ["m1"] }]);
      expect(store(queue, "m4", ["ann", "bob"])).toMatchObject({ ok: true });
    });
  });

  it("forget what a departing member had handed over, and keep what a membership after it brings", async () => {
    await withQueue((queue, read) => {
      queue.addSession("bob", { id: "b1", expiresAt: FAR });
      store(queue, "m1", ["ann", "bob"]);
      store(queue, "m2", ["ann", "bob"]);
      // Bob left after message 2 and is back before the room forgot it; message 3 is his new membership's.
      store(queue, "m3", ["ann", "bob"]);
      expect(queue.owedTo("bob").map((item) => item.id)).toEqual(["m1", "m2", "m3"]);
      queue.forgetMember("bob", 2, true);
      expect(read.pending()).toEqual(["b1:3"]);
      // Gone for good: his sessions and marks go too, and only ann holds the messages now.
      queue.forgetMember("bob", 3, false);
      expect(read.pending()).toEqual([]);
      expect(read.owed()).toEqual(["ann:1", "ann:2", "ann:3"]);
    });
  });
});
