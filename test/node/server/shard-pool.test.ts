// The balancer's policy (durable-objects/balancer/shard-pool.ts): shards open when the open ones reach a
// target, in sockets or in frames per second; a surplus shard drains when the rest can carry its load at
// half their target, and closes once empty; the bounds hold; and a restarted pool goes on from what it
// persisted.

import { describe, expect, it } from "vitest";
import {
  RATE_REPORT_TTL_MS,
  type PoolChange,
  type ShardPolicy,
  ShardPool,
  TICKET_TTL_MS,
} from "../../../durable-objects/balancer/shard-pool.js";

const nameOf = (index: number) => `s${index}`;
const policy: ShardPolicy = { min: 1, max: 3, connections: 2, framesPerSecond: 100 };
/** Long after every assignment, so a report of no sockets may close a draining shard. */
const later = TICKET_TTL_MS * 10;

/** Assigns `count` connections at time `now`; returns the shards in order, and every change made. */
function assignMany(pool: ShardPool, count: number, now = 0, under = policy) {
  const shards: string[] = [];
  const changes: PoolChange[] = [];
  for (let i = 0; i < count; i++) {
    const result = pool.assign(under, now);
    shards.push(result.shard);
    changes.push(...result.changes);
  }
  return { shards, changes };
}

describe("ShardPool", () => {
  it("opens its first shard on the first connect and a new one only when every open shard is at its target", () => {
    const pool = new ShardPool([], nameOf);
    const { shards, changes } = assignMany(pool, 6);
    expect(shards).toEqual(["s0", "s0", "s1", "s1", "s2", "s2"]);
    expect(changes).toEqual([
      { shard: "s0", state: "open" },
      { shard: "s1", state: "open" },
      { shard: "s2", state: "open" },
    ]);
  });

  it("says a shard may not exist until it has reported, so the connect that creates it places it", () => {
    const pool = new ShardPool([], nameOf);
    expect(pool.assign(policy, 0)).toMatchObject({ shard: "s0", unreported: true });
    // Its first socket may still be on its way: the next connect places it too.
    expect(pool.assign(policy, 0)).toMatchObject({ shard: "s0", unreported: true });
    pool.record("s0", { connections: 2, framesPerSecond: 0, ticket: 2 }, 1);
    expect(pool.assign(policy, 1)).toMatchObject({ shard: "s1", unreported: true });
    pool.record("s1", { connections: 1, framesPerSecond: 0, ticket: 1 }, 2);
    expect(pool.assign(policy, 2)).toMatchObject({ shard: "s1", unreported: false });
    // A returning user's shard, the same.
    pool.record("s0", { connections: 0, framesPerSecond: 0, ticket: 2 }, 3);
    expect(pool.assign(policy, 3, "s0")).toMatchObject({ shard: "s0", unreported: false });
  });

  it("never opens more than max: past it the least-loaded open shard is overfilled", () => {
    const pool = new ShardPool([], nameOf);
    assignMany(pool, 6);
    const { shards, changes } = assignMany(pool, 3);
    expect(changes).toEqual([]);
    expect(shards.sort()).toEqual(["s0", "s1", "s2"]);
    expect(pool.size).toBe(3);
  });

  it("keeps min shards open however low the load, and opens them all at the first connect", () => {
    const pool = new ShardPool([], nameOf);
    const result = pool.assign({ ...policy, min: 2 }, 0);
    expect(result.changes.map((change) => change.shard)).toEqual(["s0", "s1"]);
    expect(pool.settle({ ...policy, min: 2 }, later)).toEqual([]);
  });

  it("opens a shard for frames per second, not only for sockets, and forgets a rate nobody reported again", () => {
    const pool = new ShardPool([], nameOf);
    const busy = { ...policy, connections: 1000 };
    expect(pool.assign(busy, 0).shard).toBe("s0");
    pool.record("s0", { connections: 1, framesPerSecond: 150, ticket: 0 }, 0);
    const next = pool.assign(busy, 0);
    expect(next).toMatchObject({ shard: "s1", changes: [{ shard: "s1", state: "open" }] });
    // s0's rate is old news once no report has come for a while: it is the least loaded again.
    pool.record("s1", { connections: 5, framesPerSecond: 0, ticket: 0 }, RATE_REPORT_TTL_MS);
    expect(pool.assign(busy, RATE_REPORT_TTL_MS + 1).shard).toBe("s0");
  });

  it("drains the least-loaded shard when the others can carry it at half their target, then closes it once empty", () => {
    const pool = new ShardPool([], nameOf);
    assignMany(pool, 6);
    // Load falls to one socket on each of two shards, none on the third.
    pool.record("s0", { connections: 1, framesPerSecond: 0, ticket: 0 }, later);
    pool.record("s1", { connections: 1, framesPerSecond: 0, ticket: 0 }, later);
    pool.record("s2", { connections: 0, framesPerSecond: 0, ticket: 0 }, later);
    // Two sockets fit at half the target (1 each) of two shards: s2 goes, and as it is empty, closes.
    expect(pool.settle(policy, later)).toEqual([
      { shard: "s2", state: "draining" },
      { shard: "s2", state: "closed" },
    ]);
    // Two sockets do not fit at half the target of one shard: nothing more drains.
    expect(pool.settle(policy, later)).toEqual([]);
    pool.record("s1", { connections: 0, framesPerSecond: 0, ticket: 0 }, later);
    // One socket fits in one shard at half its target: s1 drains, and being empty, closes.
    expect(pool.settle(policy, later)).toEqual([
      { shard: "s1", state: "draining" },
      { shard: "s1", state: "closed" },
    ]);
    expect(pool.shards(later).map((shard) => shard.shard)).toEqual(["s0"]);
  });

  it("sends no new connection to a draining shard, closes it when its last socket goes, and reuses its name", () => {
    const pool = new ShardPool([], nameOf);
    const big = { ...policy, connections: 4 };
    assignMany(pool, 5, 0, big);
    pool.record("s0", { connections: 1, framesPerSecond: 0, ticket: 0 }, later);
    pool.record("s1", { connections: 0, framesPerSecond: 0, ticket: 0 }, later);
    // s1 is the least loaded: it drains and, empty, closes; s0 with one socket stays.
    expect(pool.settle(big, later)).toEqual([
      { shard: "s1", state: "draining" },
      { shard: "s1", state: "closed" },
    ]);
    const { shards } = assignMany(pool, 3, later, big);
    expect(shards).toEqual(["s0", "s0", "s0"]);
    // At its target again: the lowest free index opens.
    expect(pool.assign(big, later)).toMatchObject({ shard: "s1", changes: [{ shard: "s1", state: "open" }] });
  });

  it("keeps a draining shard that still holds sockets, and reopens it before opening a new one", () => {
    const pool = new ShardPool(
      [
        { shard: "s0", state: "open" },
        { shard: "s1", state: "open" },
      ],
      nameOf,
    );
    const big = { ...policy, connections: 10 };
    pool.record("s0", { connections: 2, framesPerSecond: 0, ticket: 0 }, later);
    pool.record("s1", { connections: 1, framesPerSecond: 0, ticket: 0 }, later);
    expect(pool.settle(big, later)).toEqual([{ shard: "s1", state: "draining" }]);
    expect(assignMany(pool, 8, later, big).shards.every((shard) => shard === "s0")).toBe(true);
    // s0 is at its target: s1 still has a socket, so it is reopened rather than s2 opened.
    expect(pool.assign(big, later)).toMatchObject({ shard: "s1", changes: [{ shard: "s1", state: "open" }] });
  });

  it("counts the connections it handed out until a report covers their tickets", () => {
    const pool = new ShardPool([], nameOf);
    const first = pool.assign(policy, 0);
    const second = pool.assign(policy, 0);
    expect([first.shard, second.shard, first.ticket, second.ticket]).toEqual(["s0", "s0", 1, 2]);
    // Sent when only the first socket had arrived: the second still counts, so s0 is at its target.
    pool.record("s0", { connections: 1, framesPerSecond: 0, ticket: 1 }, 1);
    expect(pool.assign(policy, 1).shard).toBe("s1");
    // Both arrived, and one has left again: one socket, room for one more.
    pool.record("s0", { connections: 1, framesPerSecond: 0, ticket: 2 }, 2);
    expect(pool.assign(policy, 2).shard).toBe("s0");
  });

  it("does not close a shard that a connection is still on its way to, and forgets a ticket never used", () => {
    const pool = new ShardPool([], nameOf);
    const big = { ...policy, connections: 8 };
    expect(pool.assign({ ...big, min: 2 }, 0)).toMatchObject({ shard: "s0", ticket: 1 });
    expect(pool.assign(big, 0)).toMatchObject({ shard: "s1", ticket: 1 });
    pool.record("s0", { connections: 2, framesPerSecond: 0, ticket: 1 }, 1);
    // Sent before its socket arrived: s1 reports none, but its ticket is outstanding.
    pool.record("s1", { connections: 0, framesPerSecond: 0, ticket: 0 }, 1);
    // s1 is the least loaded: it drains, but stays listed while its socket may arrive.
    expect(pool.settle(big, 1)).toEqual([{ shard: "s1", state: "draining" }]);
    expect(pool.shards(1).map((shard) => [shard.shard, shard.connections])).toEqual([
      ["s0", 2],
      ["s1", 1],
    ]);
    // That socket never came: its ticket expires, and the empty draining shard closes.
    expect(pool.settle(big, 1 + TICKET_TTL_MS + 1)).toEqual([{ shard: "s1", state: "closed" }]);
  });

  it("issues tickets after the highest a shard reports, as a restarted balancer must", () => {
    const pool = new ShardPool([{ shard: "s0", state: "open" }], nameOf);
    pool.record("s0", { connections: 1, framesPerSecond: 0, ticket: 41 }, 0);
    expect(pool.assign(policy, 0)).toMatchObject({ shard: "s0", ticket: 42 });
  });

  it("sends a user's next socket where their last one went, while that shard is open and under its target", () => {
    const pool = new ShardPool([], nameOf);
    const big = { ...policy, min: 2, connections: 3 };
    expect(pool.assign(big, 0).shard).toBe("s0");
    expect(pool.assign(big, 0).shard).toBe("s1");
    // Least load would say s0 (one socket each, s0 first); the user's last socket went to s1.
    expect(pool.assign(big, 0, "s1").shard).toBe("s1");
    expect(pool.assign(big, 0, "s1").shard).toBe("s1");
    // s1 is at its target (three): the next goes by load like anyone's.
    expect(pool.assign(big, 0, "s1").shard).toBe("s0");
    // A draining shard is no one's to return to.
    const draining = new ShardPool(
      [
        { shard: "s0", state: "open" },
        { shard: "s1", state: "draining" },
      ],
      nameOf,
    );
    draining.record("s1", { connections: 1, framesPerSecond: 0, ticket: 0 }, 0);
    expect(draining.assign(policy, 0, "s1").shard).toBe("s0");
  });

  it("spreads users over equally empty shards, one socket at a time, to the one given a connection least recently", () => {
    const pool = new ShardPool([], nameOf);
    const three = { ...policy, min: 3, connections: 100 };
    const landed = [];
    for (let i = 0; i < 4; i++) {
      const { shard, ticket } = pool.assign(three, later);
      landed.push(shard);
      // Each socket is gone again before the next arrives: every shard reports none.
      pool.record(shard, { connections: 0, framesPerSecond: 0, ticket }, later);
    }
    expect(landed).toEqual(["s0", "s1", "s2", "s0"]);
  });

  it("ignores a report from a shard it closed or never had", () => {
    const pool = new ShardPool([{ shard: "s0", state: "open" }], nameOf);
    expect(pool.record("s7", { connections: 3, framesPerSecond: 0, ticket: 0 }, 0)).toBe(false);
    expect(pool.shards(later).map((shard) => shard.shard)).toEqual(["s0"]);
  });
});
