// 1:1 messages through real sockets: live and offline delivery, acknowledgement, multiple sessions,
// and every way a client might try to send as someone else or read someone else's queue.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { decodeDelivery, signedPartWithSignature, decodeUpload } from "../../protocol/envelope.js";
import { BACKLOG_BATCH_MESSAGES } from "../../durable-objects/home/queue.js";
import { fakeUpload, login, online, signup, uniqueName, type TestSocket } from "./helpers.js";

async function pair() {
  const alice = await signup(uniqueName("alice"));
  const bob = await signup(uniqueName("bob"));
  return { alice, bob };
}

async function send(socket: TestSocket, frame: Uint8Array, id: string) {
  const from = socket.received.length;
  socket.ws.send(frame);
  const reply = await socket.waitFor(
    (r) => r.kind === "json" && (r.frame.type === "sent" || r.frame.type === "error") && r.frame.id === id,
    5000,
    from,
  );
  return (reply as { frame: Record<string, unknown> }).frame;
}

describe("direct messages", () => {
  it("reach a connected recipient at once, with the signed bytes untouched", async () => {
    const { alice, bob } = await pair();
    const a = await online(alice.token);
    const b = await online(bob.token);
    const upload = await fakeUpload({ sender: alice.username, target: bob.username });
    expect(await send(a, upload.frame, upload.id)).toMatchObject({ type: "sent", status: "delivered" });
    const received = await b.waitFor((r) => r.kind === "binary");
    const delivery = decodeDelivery((received as { bytes: Uint8Array }).bytes);
    const original = decodeUpload(upload.frame);
    expect(delivery.messageIdHex).toBe(upload.id);
    expect(signedPartWithSignature(delivery)).toEqual(signedPartWithSignature(original));
    expect(delivery.slots[0]!.recipient).toBe(bob.username);
    a.close();
    b.close();
  });

  it("are stored for an offline recipient and delivered, in order, when they connect", async () => {
    const { alice, bob } = await pair();
    const a = await online(alice.token);
    const ids = [];
    for (let i = 0; i < 5; i++) {
      const upload = await fakeUpload({ sender: alice.username, target: bob.username });
      expect(await send(a, upload.frame, upload.id)).toMatchObject({ status: "stored" });
      ids.push(upload.id);
    }
    const b = await online(bob.token);
    expect(b.binaries().map((bytes) => decodeDelivery(bytes).messageIdHex)).toEqual(ids);
    a.close();
    b.close();
  });

  it("stay queued until acknowledged, and only the acknowledged ones go", async () => {
    const { alice, bob } = await pair();
    const a = await online(alice.token);
    const first = await fakeUpload({ sender: alice.username, target: bob.username });
    const second = await fakeUpload({ sender: alice.username, target: bob.username });
    await send(a, first.frame, first.id);
    await send(a, second.frame, second.id);

    const b1 = await online(bob.token);
    expect(b1.binaries()).toHaveLength(2);
    b1.sendJson({ type: "ack", ids: [first.id] });
    await new Promise((r) => setTimeout(r, 100));
    b1.close();

    const b2 = await online(bob.token);
    expect(b2.binaries().map((bytes) => decodeDelivery(bytes).messageIdHex)).toEqual([second.id]);
    b2.sendJson({ type: "ack", ids: [second.id] });
    await new Promise((r) => setTimeout(r, 100));
    b2.close();
    const b3 = await online(bob.token);
    expect(b3.binaries()).toHaveLength(0);
    a.close();
    b3.close();
  });

  it("are stored once when a sender retries the same upload", async () => {
    const { alice, bob } = await pair();
    const a = await online(alice.token);
    const upload = await fakeUpload({ sender: alice.username, target: bob.username });
    await send(a, upload.frame, upload.id);
    await send(a, upload.frame, upload.id);
    const b = await online(bob.token);
    expect(b.binaries()).toHaveLength(1);
    a.close();
    b.close();
  });

  it("reach every session of the recipient, and each session acknowledges for itself", async () => {
    const { alice, bob } = await pair();
    const bobElsewhere = await login(bob.username);
    const a = await online(alice.token);
    const b1 = await online(bob.token);
    const b2 = await online(bobElsewhere.token);
    const upload = await fakeUpload({ sender: alice.username, target: bob.username });
    expect(await send(a, upload.frame, upload.id)).toMatchObject({ status: "delivered" });
    await b1.waitFor((r) => r.kind === "binary");
    await b2.waitFor((r) => r.kind === "binary");
    b1.sendJson({ type: "ack", ids: [upload.id] });
    await new Promise((r) => setTimeout(r, 100));
    b1.close();
    b2.close();
    // The second machine never acknowledged, so it still has the message; the first does not.
    const again2 = await online(bobElsewhere.token);
    expect(again2.binaries()).toHaveLength(1);
    const again1 = await online(bob.token);
    expect(again1.binaries()).toHaveLength(0);
    for (const s of [a, again1, again2]) s.close();
  });

  it("wait for a user who logs in on a new machine after they were sent", async () => {
    const { alice, bob } = await pair();
    const a = await online(alice.token);
    const upload = await fakeUpload({ sender: alice.username, target: bob.username });
    await send(a, upload.frame, upload.id);
    const fresh = await login(bob.username);
    const b = await online(fresh.token);
    expect(b.binaries().map((bytes) => decodeDelivery(bytes).messageIdHex)).toEqual([upload.id]);
    a.close();
    b.close();
  });

  // Nearly 300 round trips one after another: a generous deadline for a loaded machine (nothing is timed).
  it("drain a large backlog in acknowledged batches", async () => {
    const { alice, bob } = await pair();
    const a = await online(alice.token);
    const total = BACKLOG_BATCH_MESSAGES + 40;
    const ids: string[] = [];
    // Sent one at a time: inside the test runtime, frames sent back to back on one socket may reach
    // the shard out of order (end-to-end tests over real sockets check ordering).
    for (let i = 0; i < total; i++) {
      const upload = await fakeUpload({ sender: alice.username, target: bob.username, ciphertextBytes: 32 });
      await send(a, upload.frame, upload.id);
      ids.push(upload.id);
    }

    const { socket } = await import("./helpers.js").then((h) => h.connectSocket(bob.token));
    const b = socket!;
    await b.waitFor(() => b.binaries().length >= BACKLOG_BATCH_MESSAGES);
    await new Promise((r) => setTimeout(r, 100));
    // One batch in flight: nothing more, and no "synced", until the batch is acknowledged.
    expect(b.binaries()).toHaveLength(BACKLOG_BATCH_MESSAGES);
    expect(b.jsonFrames("synced")).toHaveLength(0);
    const firstBatch = b.binaries().map((bytes) => decodeDelivery(bytes).messageIdHex);
    b.sendJson({ type: "ack", ids: firstBatch });
    await b.waitForJson("synced");
    expect(b.binaries().map((bytes) => decodeDelivery(bytes).messageIdHex)).toEqual(ids);
    a.close();
    b.close();
  }, 30_000);
});

describe("no one can act as someone else", () => {
  it("refuses an envelope whose sender is not the connected user", async () => {
    const { alice, bob } = await pair();
    const mallory = await signup(uniqueName("mallory"));
    const m = await online(mallory.token);
    const b = await online(bob.token);
    const forged = await fakeUpload({ sender: alice.username, target: bob.username });
    expect(await send(m, forged.frame, forged.id)).toMatchObject({ type: "error", code: "forbidden" });
    await new Promise((r) => setTimeout(r, 100));
    expect(b.binaries()).toHaveLength(0);
    m.close();
    b.close();
  });

  it("cannot acknowledge (and so delete) another user's queued messages", async () => {
    const { alice, bob } = await pair();
    const mallory = await signup(uniqueName("mallory"));
    const a = await online(alice.token);
    const upload = await fakeUpload({ sender: alice.username, target: bob.username });
    await send(a, upload.frame, upload.id);
    const m = await online(mallory.token);
    m.sendJson({ type: "ack", ids: [upload.id] });
    await new Promise((r) => setTimeout(r, 100));
    // Mallory's socket never received Bob's message either.
    expect(m.binaries()).toHaveLength(0);
    const b = await online(bob.token);
    expect(b.binaries().map((bytes) => decodeDelivery(bytes).messageIdHex)).toEqual([upload.id]);
    for (const s of [a, b, m]) s.close();
  });

  it("refuses envelopes whose key slots or member digest do not match the recipient", async () => {
    const { alice, bob } = await pair();
    const carol = await signup(uniqueName("carol"));
    const a = await online(alice.token);
    const extraSlot = await fakeUpload({
      sender: alice.username,
      target: bob.username,
      slotsFor: [bob.username, carol.username],
    });
    expect(await send(a, extraSlot.frame, extraSlot.id)).toMatchObject({ code: "bad_frame" });
    const wrongSlot = await fakeUpload({
      sender: alice.username,
      target: bob.username,
      slotsFor: [carol.username],
    });
    expect(await send(a, wrongSlot.frame, wrongSlot.id)).toMatchObject({ code: "bad_frame" });
    const wrongDigest = await fakeUpload({
      sender: alice.username,
      target: bob.username,
      digestFor: [carol.username],
    });
    expect(await send(a, wrongDigest.frame, wrongDigest.id)).toMatchObject({ code: "bad_frame" });
    const nobody = uniqueName("nobody");
    const unknown = await fakeUpload({ sender: alice.username, target: nobody });
    expect(await send(a, unknown.frame, unknown.id)).toMatchObject({ code: "unknown_user" });
    a.close();
  });

  it("a send-only socket receives nothing", async () => {
    const { alice, bob } = await pair();
    const a = await online(alice.token);
    const quiet = await online(bob.token, "?receive=0");
    const upload = await fakeUpload({ sender: alice.username, target: bob.username });
    expect(await send(a, upload.frame, upload.id)).toMatchObject({ status: "stored" });
    await new Promise((r) => setTimeout(r, 100));
    expect(quiet.binaries()).toHaveLength(0);
    a.close();
    quiet.close();
  });
});

describe("bad frames", () => {
  it("are answered with an error and leave the connection and other users working", async () => {
    const { alice, bob } = await pair();
    const a = await online(alice.token);
    const b = await online(bob.token);
    const garbage: Array<string | Uint8Array> = [
      "not json",
      "{}",
      '{"type":"ack"}',
      '{"type":"ack","ids":["xyz"]}',
      '{"type":"nope"}',
      '{"type":"ping","extra":1}',
      "[]",
      "null",
      new Uint8Array([]),
      new Uint8Array([9, 9, 9]),
      new Uint8Array([1, 1, 1]),
      (await fakeUpload({ sender: alice.username, target: bob.username })).frame.slice(0, 100),
    ];
    for (const frame of garbage) {
      const from = a.received.length;
      a.ws.send(frame);
      const reply = await a.waitFor((r) => r.kind === "json", 5000, from);
      expect(reply, String(frame)).toMatchObject({ frame: { type: "error", code: "bad_frame" } });
    }
    const upload = await fakeUpload({ sender: alice.username, target: bob.username });
    expect(await send(a, upload.frame, upload.id)).toMatchObject({ status: "delivered" });
    await b.waitFor((r) => r.kind === "binary");
    a.close();
    b.close();
  });
});

describe("a failure inside the shard", () => {
  it("answers only the frame it hit, by id, and loses none of the others", async () => {
    const { alice, bob } = await pair();
    const a = await online(alice.token);
    const shard = String((await a.waitForJson("welcome")).shard);
    const uploads = await Promise.all(
      [1, 2, 3].map(() => fakeUpload({ sender: alice.username, target: bob.username })),
    );
    const poisoned = uploads[1]!.id;
    // Make the shard's route to homes throw for exactly one message, as a bug or a lost object would.
    await runInDurableObject(env.SHARDS.get(env.SHARDS.idFromName(shard)), (instance) => {
      const routes = (
        instance as unknown as {
          routes: { toHome: (recipient: string, message: { id: string }) => Promise<unknown> };
        }
      ).routes;
      const original = routes.toHome;
      routes.toHome = (recipient, message) =>
        message.id === poisoned ? Promise.reject(new Error("injected fault")) : original(recipient, message);
    });
    const replies = [];
    for (const upload of uploads) replies.push(await send(a, upload.frame, upload.id));
    expect(replies.map((reply) => reply.type)).toEqual(["sent", "error", "sent"]);
    expect(replies[1]).toMatchObject({ code: "internal", id: poisoned });
    const b = await online(bob.token);
    expect(b.binaries().map((bytes) => decodeDelivery(bytes).messageIdHex)).toEqual([
      uploads[0]!.id,
      uploads[2]!.id,
    ]);
    a.close();
    b.close();
  });
});
