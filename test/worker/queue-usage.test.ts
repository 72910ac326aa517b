// A home's quota counts live in memory (durable-objects/home/queue-usage.ts). They must equal what the
// queue holds after every kind of change, whether counted since the object woke or read anew by a fresh
// object over the same storage (an eviction), or a quota would refuse too early or let a sender past it.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { MessageQueue } from "../../durable-objects/home/queue.js";
import type { QueueQuotas } from "../../durable-objects/quotas.js";

const item = (bytes: number) => ({ kind: "envelope" as const, data: new Uint8Array(bytes) });
const now = 1;

/** Runs `work` in a fresh home whose account has two live sessions, s1 and s2. */
function inHomeWithTwoSessions(label: string, work: (sql: SqlStorage) => void): Promise<void> {
  const stub = env.HOMES.get(env.HOMES.idFromName(`${label}-${Date.now()}`));
  return runInDurableObject(stub, (_, state) => {
    const sql = state.storage.sql;
    for (const id of ["s1", "s2"])
      sql.exec("INSERT INTO sessions (id, secret_hash, created_at, expires_at) VALUES (?, 'h', 0, 9e15)", id);
    work(sql);
  });
}

/** Room for 100 items in all, and for `items` items or `bytes` bytes from one sender. */
function quotasWithSenderShare(items: number, bytes: number): QueueQuotas {
  return { perRecipient: { items: 100, bytes: 100_000 }, perSender: { items, bytes } };
}

it("keeps the quota counts equal to the queue through stores, acknowledgements and collection", async () => {
  await inHomeWithTwoSessions("queue-usage", (sql) => {
    // Room for exactly 3 items or 300 bytes from one sender.
    const quotas = quotasWithSenderShare(3, 300);
    const queue = new MessageQueue(sql);
    expect(queue.store("ann", "a1", item(100), ["s1", "s2"], now, quotas).ok).toBe(true);
    expect(queue.store("ann", "a2", item(100), ["s1", "s2"], now, quotas).ok).toBe(true);
    expect(queue.store("bob", "b1", item(50), ["s1"], now, quotas).ok).toBe(true);
    // A retry stores nothing and counts nothing.
    expect(queue.store("ann", "a2", item(100), ["s1", "s2"], now, quotas).ok).toBe(true);
    expect(queue.store("ann", "a3", item(101), ["s1"], now, quotas)).toMatchObject({
      ok: false,
      breach: { scope: "sender" },
    });

    // Acknowledged by one of two sessions: still stored, still counted.
    queue.acknowledge("s1", ["a1"]);
    expect(queue.store("ann", "a3", item(150), ["s1"], now, quotas).ok).toBe(false);
    // By both: gone, and its 100 bytes are free again.
    queue.acknowledge("s2", ["a1"]);
    expect(queue.store("ann", "a3", item(150), ["s1"], now, quotas).ok).toBe(true);

    // A session's queue dropped, then the orphans collected: a2 waited for s2 too, so only now leaves.
    queue.acknowledge("s1", ["a2"]);
    queue.forgetSessions(["s2"]);
    queue.collectOrphans();
    expect(sql.exec("SELECT id FROM messages ORDER BY seq").toArray()).toEqual([{ id: "b1" }, { id: "a3" }]);
    expect(queue.store("ann", "a4", item(150), ["s1"], now, quotas).ok).toBe(true);
    expect(queue.store("ann", "a5", item(1), ["s1"], now, quotas)).toMatchObject({ ok: false });

    // A fresh object over the same storage reads the same counts from the queue itself.
    const woken = new MessageQueue(sql);
    expect(woken.store("ann", "a5", item(1), ["s1"], now, quotas)).toMatchObject({
      ok: false,
      breach: { scope: "sender" },
    });
    expect(woken.store("bob", "b2", item(250), ["s1"], now, quotas).ok).toBe(true);
    expect(woken.store("bob", "b3", item(1), ["s1"], now, quotas)).toMatchObject({ ok: false });
  });
});

// A home that has just woken has not read its counts, and its first work may be an acknowledgement or a
// collection (a login, a restart) rather than a store. Its deletes must still leave the object usable:
// workerd fails every later statement while a DELETE … RETURNING cursor is left unread.
it("acknowledges and collects before the counts are loaded, then counts what is left", async () => {
  await inHomeWithTwoSessions("queue-usage-cold", (sql) => {
    const quotas = quotasWithSenderShare(2, 1000);
    const before = new MessageQueue(sql);
    expect(before.store("ann", "a1", item(10), ["s1"], now, quotas).ok).toBe(true);
    expect(before.store("ann", "a2", item(10), ["s2"], now, quotas).ok).toBe(true);

    // Woken: nothing has asked for the counts yet.
    const woken = new MessageQueue(sql);
    expect(woken.acknowledge("s1", ["a1"])).toBe(1);
    expect(sql.exec("SELECT id FROM messages").toArray()).toEqual([{ id: "a2" }]);

    const again = new MessageQueue(sql);
    again.forgetSessions(["s2"]);
    again.collectOrphans();
    expect(sql.exec("SELECT count(*) AS n FROM messages").one()).toEqual({ n: 0 });
    // Both items are gone, so the sender has its whole quota of two again.
    expect(again.store("ann", "a3", item(10), ["s1"], now, quotas).ok).toBe(true);
    expect(again.store("ann", "a4", item(10), ["s1"], now, quotas).ok).toBe(true);
    expect(again.store("ann", "a5", item(10), ["s1"], now, quotas)).toMatchObject({ ok: false });
  });
});
