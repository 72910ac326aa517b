// What a shard keeps for sockets that do not acknowledge: held pushes lost from memory (a cap, a wake-up
// from hibernation) come again from the queue, and a socket silent past its deadline is closed with 4408.

import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { connectionOf, setConnection } from "../../durable-objects/shard/connection.js";
import { CloseCode } from "../../protocol/frames.js";
import { type TestSocket, connectSocket, deliveredIds, fakeUpload, online, users } from "./helpers.js";

/** A ciphertext size that puts a backlog past one 1 MiB batch within a few messages. */
const LARGE = 64 * 1024;

async function send(from: TestSocket, sender: string, target: string, ciphertextBytes = 32): Promise<string> {
  const upload = await fakeUpload({ sender, target, ciphertextBytes });
  const start = from.received.length;
  from.ws.send(upload.frame);
  await from.waitFor((r) => r.kind === "json" && r.frame.id === upload.id, 5000, start);
  return upload.id;
}

function shardOf(socket: TestSocket): DurableObjectStub {
  const welcome = socket.jsonFrames("welcome")[0]!;
  return env.SHARDS.get(env.SHARDS.idFromName(String(welcome.shard)));
}

/** The attachments of a user's sockets on a shard. */
async function attachments(shard: DurableObjectStub, user: string): Promise<Array<Record<string, unknown>>> {
  return runInDurableObject(shard, (_, state) =>
    state
      .getWebSockets()
      .map((ws) => ws.deserializeAttachment() as Record<string, unknown> | null)
      .filter((a): a is Record<string, unknown> => a?.user === user),
  );
}

describe("a shard's sockets that do not acknowledge", () => {
  it("get pushes held while draining from the queue again once memory lost them, once and in order", async () => {
    const [alice, bob] = await users("holder", "drainer");
    const a = await online(alice!.token, "?receive=0");
    const backlog: string[] = [];
    for (let i = 0; i < 17; i++) backlog.push(await send(a, alice!.username, bob!.username, LARGE));
    const { socket } = await connectSocket(bob!.token);
    const b = socket!;
    await b.waitForJson("welcome");
    // The first batch (1 MiB) is not all of it; the rest waits for an acknowledgement.
    await b.waitFor(() => b.binaries().length > 0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(deliveredIds(b).length).toBeLessThan(backlog.length);
    // Live pushes while the backlog drains are held back in the shard's memory...
    const live: string[] = [];
    for (let i = 0; i < 3; i++) live.push(await send(a, alice!.username, bob!.username));
    const shard = shardOf(b);
    const [attachment] = await attachments(shard, bob!.username);
    expect(attachment!.held).toEqual([""]);
    // ...which a wake-up from hibernation empties, as a cap would drop them.
    await runInDurableObject(shard, (instance) =>
      (instance as unknown as { drain: { forget(id: string): void } }).drain.forget(String(attachment!.id)),
    );
    const seen = new Set<string>();
    while (b.jsonFrames("synced").length === 0) {
      const ids = deliveredIds(b).filter((id) => !seen.has(id));
      if (ids.length > 0) b.sendJson({ type: "ack", ids });
      for (const id of ids) seen.add(id);
      await b.waitFor(() => b.jsonFrames("synced").length > 0 || deliveredIds(b).length > seen.size, 5000);
    }
    expect(deliveredIds(b)).toEqual([...backlog, ...live]);
    a.close();
    b.close();
  }, 30_000);

  it("are closed with 4408 past their deadline, and what they left waits in their queue", async () => {
    const [alice, bob, carol] = await users("sender", "silent", "acker");
    const a = await online(alice!.token, "?receive=0");
    const b = await online(bob!.token);
    const c = await online(carol!.token);
    const toBob = await send(a, alice!.username, bob!.username);
    const toCarol = await send(a, alice!.username, carol!.username);
    await b.waitFor(() => deliveredIds(b).includes(toBob));
    await c.waitFor(() => deliveredIds(c).includes(toCarol));
    c.sendJson({ type: "ack", ids: [toCarol] });
    const shard = shardOf(b);
    // Carol's acknowledgement stopped her clock; Bob's runs.
    await expect.poll(async () => (await attachments(shardOf(c), carol!.username))[0]?.ackDueAt).toBe(0);
    const [bobs] = await attachments(shard, bob!.username);
    expect(bobs!.ackDueAt).toBeGreaterThan(Date.now());
    // As if the timeout had passed: the deadline moves into the past and the alarm runs.
    await runInDurableObject(shard, (_, state) => {
      // Through the shard's own writer, which keeps its in-memory copy of the attachment.
      for (const ws of state.getWebSockets()) {
        const connection = connectionOf(ws);
        if (connection?.user === bob!.username)
          setConnection(ws, { ...connection, ackDueAt: Date.now() - 1 });
      }
    });
    await runDurableObjectAlarm(shard);
    await b.waitFor(() => b.closed, 5000).catch(() => undefined);
    expect(b.closeCode).toBe(CloseCode.ackTimeout);
    expect(c.closed).toBe(false);
    const again = await online(bob!.token);
    expect(deliveredIds(again)).toEqual([toBob]);
    for (const socket of [a, c, again]) socket.close();
  });
});
