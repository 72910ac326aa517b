// Storage quotas and (sender, id) keys, against the real homes, rooms and routes: a recipient's queue and a
// sender's part of it, a member's share of a room, a user's outstanding blobs; and no message id chosen by
// one sender can make another sender's message be taken for a retry and dropped.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { groupStub, homeStub } from "../../durable-objects/names.js";
import { decodeDelivery, uploadHead } from "../../protocol/envelope.js";
import type { SessionResponse as Session } from "../../protocol/http.js";
import { createGroup, removeMember, writeTo } from "./group-changes.js";
import {
  api,
  deliveredIds,
  fakeUpload,
  online,
  postGroup,
  uniqueName,
  users,
  type TestSocket,
} from "./helpers.js";

type QuotaVars = Partial<
  Record<
    | "QUEUE_ITEMS_PER_RECIPIENT"
    | "QUEUE_BYTES_PER_RECIPIENT"
    | "QUEUE_ITEMS_PER_SENDER"
    | "QUEUE_BYTES_PER_SENDER"
    | "BLOBS_PER_OWNER"
    | "BLOB_BYTES_PER_OWNER",
    string
  >
>;

/**
 * Gives one live object small quotas: homes and rooms read their settings from their own env on every
 * store, and tests of one file share an isolate, so the deployment's defaults stay for everyone else.
 */
async function withQuotas(stub: DurableObjectStub, vars: QuotaVars): Promise<void> {
  await runInDurableObject(stub, (instance) => {
    (instance as unknown as { env: Env }).env = { ...env, ...vars } as Env;
  });
}

const home = (user: Session) => homeStub(env, user.username) as unknown as DurableObjectStub;
const room = (group: string) => groupStub(env, group) as unknown as DurableObjectStub;

/** Uploads a direct message and returns the server's answer to it ("sent" or "error"). */
async function send(
  socket: TestSocket,
  from: Session,
  to: Session,
  options: { ciphertextBytes?: number; messageId?: Uint8Array; frame?: Uint8Array } = {},
): Promise<{ id: string; frame: Uint8Array; reply: Record<string, unknown> }> {
  const upload = await fakeUpload({ sender: from.username, target: to.username, ...options });
  const frame = options.frame ?? upload.frame;
  const id = uploadHead(frame)!.id;
  const start = socket.received.length;
  socket.ws.send(frame);
  const reply = await socket.waitFor(
    (r) => r.kind === "json" && (r.frame.type === "sent" || r.frame.type === "error") && r.frame.id === id,
    5000,
    start,
  );
  return { id, frame, reply: (reply as { frame: Record<string, unknown> }).frame };
}

function queueUsage(user: Session): Promise<{ items: number; bytes: number }> {
  return runInDurableObject(home(user), (_, state) =>
    state.storage.sql
      .exec<{ items: number; bytes: number }>(
        "SELECT count(*) AS items, coalesce(sum(length(body)), 0) AS bytes FROM messages",
      )
      .one(),
  );
}

/** Connects the recipient, acknowledges everything it is handed, and returns the ids in order. */
async function drain(user: Session): Promise<string[]> {
  const socket = await online(user.token);
  const ids = deliveredIds(socket);
  if (ids.length > 0) socket.sendJson({ type: "ack", ids });
  await new Promise((resolve) => setTimeout(resolve, 150));
  socket.close();
  return ids;
}

describe("a recipient's queue", () => {
  it("holds at most QUEUE_ITEMS_PER_RECIPIENT items; over it nothing is stored, and reading frees it", async () => {
    const [alice, carol, bob] = (await users("alice", "carol", "bob")) as [Session, Session, Session];
    await withQuotas(home(bob), { QUEUE_ITEMS_PER_RECIPIENT: "5" });
    const a = await online(alice.token);
    const c = await online(carol.token);
    const firstSent = await send(a, alice, bob);
    const stored: string[] = [firstSent.id];
    for (let i = 0; i < 2; i++) stored.push((await send(a, alice, bob)).id);
    for (let i = 0; i < 2; i++) stored.push((await send(c, carol, bob)).id);
    const over = await send(c, carol, bob);
    expect(over.reply).toMatchObject({ type: "error", code: "quota_exceeded", id: over.id });
    expect(String(over.reply.message)).toContain(`${bob.username}'s queue is full`);
    expect(await queueUsage(bob)).toMatchObject({ items: 5 });
    // A retry of a message already stored is answered as before, not refused.
    expect((await send(a, alice, bob, { frame: firstSent.frame })).reply).toMatchObject({
      type: "sent",
      status: "stored",
    });
    // Everything stored arrives, in order, and once read the queue takes messages again.
    expect(await drain(bob)).toEqual(stored);
    expect(await queueUsage(bob)).toEqual({ items: 0, bytes: 0 });
    expect((await send(c, carol, bob)).reply).toMatchObject({ type: "sent", status: "stored" });
    a.close();
    c.close();
  });

  it("holds at most QUEUE_BYTES_PER_RECIPIENT bytes", async () => {
    const [alice, bob] = (await users("alice", "bob")) as [Session, Session];
    const a = await online(alice.token);
    const first = await send(a, alice, bob, { ciphertextBytes: 4000 });
    expect(first.reply).toMatchObject({ type: "sent" });
    const oneMessage = (await queueUsage(bob)).bytes;
    await withQuotas(home(bob), { QUEUE_BYTES_PER_RECIPIENT: String(Math.floor(oneMessage * 2.5)) });
    expect((await send(a, alice, bob, { ciphertextBytes: 4000 })).reply).toMatchObject({ type: "sent" });
    const over = await send(a, alice, bob, { ciphertextBytes: 4000 });
    expect(over.reply).toMatchObject({ type: "error", code: "quota_exceeded" });
    // A smaller one still fits in what is left.
    expect((await send(a, alice, bob, { ciphertextBytes: 16 })).reply).toMatchObject({ type: "sent" });
    expect(await drain(bob)).toHaveLength(3);
    a.close();
  });

  it("lets one sender fill only its share (items and bytes); other senders still get through", async () => {
    const [mallory, alice, bob] = (await users("mallory", "alice", "bob")) as [Session, Session, Session];
    const m = await online(mallory.token);
    const a = await online(alice.token);
    await send(m, mallory, bob);
    const oneMessage = (await queueUsage(bob)).bytes;
    await withQuotas(home(bob), {
      QUEUE_ITEMS_PER_SENDER: "3",
      QUEUE_BYTES_PER_SENDER: String(oneMessage * 100),
    });
    await send(m, mallory, bob);
    await send(m, mallory, bob);
    const over = await send(m, mallory, bob);
    expect(over.reply).toMatchObject({ type: "error", code: "quota_exceeded" });
    expect(String(over.reply.message)).toContain("from one sender");
    expect((await send(a, alice, bob)).reply).toMatchObject({ type: "sent" });

    await withQuotas(home(bob), {
      QUEUE_ITEMS_PER_SENDER: "1000",
      QUEUE_BYTES_PER_SENDER: String(Math.floor(oneMessage * 4.5)),
    });
    expect((await send(m, mallory, bob)).reply).toMatchObject({ type: "sent" });
    expect((await send(m, mallory, bob)).reply).toMatchObject({ type: "error", code: "quota_exceeded" });
    expect((await send(a, alice, bob)).reply).toMatchObject({ type: "sent" });
    expect(await drain(bob)).toHaveLength(6);
    expect((await send(m, mallory, bob)).reply).toMatchObject({ type: "sent" });
    m.close();
    a.close();
  });
});

/** Connects a member, acknowledges the group's messages it is handed, and returns their ids in order. */
async function drainGroup(user: Session, group: string): Promise<string[]> {
  const socket = await online(user.token);
  const ids = deliveredIds(socket);
  if (ids.length > 0) socket.sendJson({ type: "ack", ids, group });
  await new Promise((resolve) => setTimeout(resolve, 150));
  socket.close();
  return ids;
}

async function newGroup(owner: Session, members: Session[]): Promise<string> {
  const name = uniqueName("g");
  await writeTo(owner, members);
  expect((await createGroup(owner, name, members)).status).toBe(201);
  return name;
}

describe("a group's room", () => {
  it("counts a message against each member's share; a full share refuses it until the member reads", async () => {
    const [carol, bob] = (await users("carol", "bob")) as [Session, Session];
    const group = await newGroup(carol, [bob]);
    await withQuotas(room(group), { QUEUE_ITEMS_PER_RECIPIENT: "3" });
    const c = await online(carol.token, "?receive=0");
    const members = [carol.username, bob.username];
    const stored: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { id, reply } = await postGroup(c, carol, group, 1, members);
      expect(reply).toMatchObject({ type: "sent", status: "stored" });
      stored.push(id);
    }
    const over = await postGroup(c, carol, group, 1, members);
    expect(over.reply).toMatchObject({ type: "error", code: "quota_exceeded", id: over.id });
    expect(String(over.reply.message)).toMatch(/queue is full .*\(in group /);
    expect(await drainGroup(bob, group)).toEqual(stored);
    expect(await drainGroup(carol, group)).toEqual(stored);
    expect((await postGroup(c, carol, group, 1, members)).reply).toMatchObject({ type: "sent" });
    c.close();
  });

  it("lets one sender fill only its share of the room; other members still post", async () => {
    const [mallory, alice, bob] = (await users("mallory", "alice", "bob")) as [Session, Session, Session];
    const group = await newGroup(alice, [mallory, bob]);
    await withQuotas(room(group), { QUEUE_ITEMS_PER_SENDER: "2" });
    const m = await online(mallory.token, "?receive=0");
    const a = await online(alice.token, "?receive=0");
    const members = [alice.username, mallory.username, bob.username];
    expect((await postGroup(m, mallory, group, 1, members)).reply).toMatchObject({ type: "sent" });
    expect((await postGroup(m, mallory, group, 1, members)).reply).toMatchObject({ type: "sent" });
    const over = await postGroup(m, mallory, group, 1, members);
    expect(over.reply).toMatchObject({ type: "error", code: "quota_exceeded" });
    expect(String(over.reply.message)).toContain("from one sender");
    expect((await postGroup(a, alice, group, 1, members)).reply).toMatchObject({ type: "sent" });
    m.close();
    a.close();
  });
});

describe("a user's blobs", () => {
  function createBlob(owner: Session, to: Session, size: number): Promise<Response> {
    return api("/v1/blobs", {
      method: "POST",
      token: owner.token,
      body: JSON.stringify({ to: to.username, size }),
    });
  }

  it("outstanding at once are capped in bytes and in number (413 quota_exceeded), and free up when gone", async () => {
    const [alice, bob] = (await users("alice", "bob")) as [Session, Session];
    await withQuotas(home(alice), { BLOB_BYTES_PER_OWNER: "1000", BLOBS_PER_OWNER: "3" });
    const first = await createBlob(alice, bob, 600);
    expect(first.status).toBe(201);
    const over = await createBlob(alice, bob, 600);
    expect(over.status).toBe(413);
    const body = (await over.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("quota_exceeded");
    expect(body.error.message).toContain("not yet fetched");
    expect((await createBlob(alice, bob, 200)).status).toBe(201);
    expect((await createBlob(alice, bob, 100)).status).toBe(201);
    // Three outstanding: a fourth is refused however small.
    expect((await createBlob(alice, bob, 16)).status).toBe(413);
    // Withdrawing one (or its recipient fetching it, or its expiry) frees its place.
    const { id } = (await first.json()) as { id: string };
    expect((await api(`/v1/blobs/${id}`, { method: "DELETE", token: alice.token })).status).toBe(204);
    expect((await createBlob(alice, bob, 600)).status).toBe(201);
    // Other users have their own quota.
    expect((await createBlob(bob, alice, 900)).status).toBe(201);
  });
});

describe("queued items are keyed by sender and id", () => {
  it("a member cannot make a departing member's hand-over drop a message by reusing its id", async () => {
    const [alice, bob, carol] = (await users("alice", "bob", "carol")) as [Session, Session, Session];
    const group = await newGroup(alice, [bob, carol]);
    const a = await online(alice.token, "?receive=0");
    const c = await online(carol.token, "?receive=0");
    const { id } = await postGroup(a, alice, group, 1, [alice.username, bob.username, carol.username].sort());
    // Carol saw the id: she sends Bob a direct message with it before Bob is removed.
    const messageId = Uint8Array.from(id.match(/../g)!.map((byte) => parseInt(byte, 16)));
    expect((await send(c, carol, bob, { messageId })).reply).toMatchObject({ type: "sent" });
    expect((await removeMember(alice, group, bob.username)).status).toBe(200);
    const b = await online(bob.token);
    const deliveries = b.binaries().map((bytes) => decodeDelivery(bytes));
    expect(deliveries.map((d) => [d.header.sender, d.messageIdHex])).toEqual([
      [carol.username, id],
      [alice.username, id],
    ]);
    for (const socket of [a, b, c]) socket.close();
  });

  it("two senders' messages with one id are both stored and delivered, and one ack of the id takes both", async () => {
    const [alice, carol, bob] = (await users("alice", "carol", "bob")) as [Session, Session, Session];
    const a = await online(alice.token);
    const c = await online(carol.token);
    const messageId = crypto.getRandomValues(new Uint8Array(16));
    const fromAlice = await send(a, alice, bob, { messageId });
    const fromCarol = await send(c, carol, bob, { messageId });
    expect(fromAlice.reply).toMatchObject({ type: "sent", status: "stored" });
    expect(fromCarol.reply).toMatchObject({ type: "sent", status: "stored" });
    expect((await queueUsage(bob)).items).toBe(2);
    const b = await online(bob.token);
    const senders = b.binaries().map((bytes) => decodeDelivery(bytes).header.sender);
    expect(senders).toEqual([alice.username, carol.username]);
    b.sendJson({ type: "ack", ids: [fromAlice.id] });
    await new Promise((resolve) => setTimeout(resolve, 150));
    b.close();
    expect(await queueUsage(bob)).toEqual({ items: 0, bytes: 0 });
    a.close();
    c.close();
  });
});
