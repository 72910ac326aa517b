// Sent copies (envelope kind 3): what a user sends from one device reaches the history of their other
// devices, sealed for the sender alone. Only the sender's other sessions get it; a copy claiming another
// sender, sealed for anyone else or naming no peer is refused; and every socket knows how many sessions
// the account has, so a device alone needs no copy.

import { afterEach, describe, expect, it } from "vitest";
import { decodeDelivery } from "../../protocol/envelope.js";
import type { SessionResponse } from "../../protocol/http.js";
import { api, fakeUpload, login, online, signup, uniqueName, type TestSocket } from "./helpers.js";

const openSockets: TestSocket[] = [];
afterEach(() => {
  for (const socket of openSockets.splice(0)) if (!socket.closed) socket.close();
});

async function connected(token: string, query = ""): Promise<TestSocket> {
  const socket = await online(token, query);
  openSockets.push(socket);
  return socket;
}

async function send(socket: TestSocket, frame: Uint8Array, id: string): Promise<Record<string, unknown>> {
  const from = socket.received.length;
  socket.ws.send(frame);
  const reply = await socket.waitFor(
    (r) => r.kind === "json" && (r.frame.type === "sent" || r.frame.type === "error") && r.frame.id === id,
    5000,
    from,
  );
  return (reply as { frame: Record<string, unknown> }).frame;
}

/** A copy as an honest client seals it: for its sender alone, naming the peer the message went to. */
function sentCopy(sender: string, peer: string, overrides: Parameters<typeof fakeUpload>[0] | object = {}) {
  return fakeUpload({ sender, target: peer, kind: "sentCopy", slotsFor: [sender], ...overrides });
}

/** Waits until every socket given has handled what was sent before (a round trip each). */
async function settled(...sockets: TestSocket[]): Promise<void> {
  await Promise.all(
    sockets.map(async (socket) => {
      const from = socket.received.length;
      socket.sendJson({ type: "ping", extra: 1 });
      await socket.waitForJson("error", from);
    }),
  );
}

/**
 * Live acknowledgements reach the home a moment after the socket has answered (the shard gathers them
 * for a few ms), so a socket opened at once may still be handed what was just acknowledged: waits until a
 * new socket of `token` is handed nothing, and fails if that never happens.
 */
async function handedNothing(token: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const socket = await connected(token);
    const handed = socket.binaries().length;
    socket.close();
    if (handed === 0) return;
    if (attempt === 20)
      throw new Error(`a new socket is still handed ${handed} item(s) after ${attempt} tries`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function twoDevices(): Promise<{
  alice: SessionResponse;
  aliceLaptop: SessionResponse;
  bob: SessionResponse;
}> {
  const alice = await signup(uniqueName("alice"));
  const aliceLaptop = await login(alice.username);
  const bob = await signup(uniqueName("bob"));
  return { alice, aliceLaptop, bob };
}

describe("sent copies", () => {
  it("reach the sender's other session, and neither the sealing session nor the peer", async () => {
    const { alice, aliceLaptop, bob } = await twoDevices();
    const phone = await connected(alice.token);
    const laptop = await connected(aliceLaptop.token);
    const b = await connected(bob.token);
    const message = await fakeUpload({ sender: alice.username, target: bob.username });
    expect(await send(phone, message.frame, message.id)).toMatchObject({ type: "sent", status: "delivered" });
    const copy = await sentCopy(alice.username, bob.username);
    expect(await send(phone, copy.frame, copy.id)).toMatchObject({ type: "sent", status: "delivered" });

    const delivered = await laptop.waitFor((r) => r.kind === "binary");
    const opened = decodeDelivery((delivered as { bytes: Uint8Array }).bytes);
    expect(opened.messageIdHex).toBe(copy.id);
    expect(opened.header).toMatchObject({ kind: "sentCopy", sender: alice.username, target: bob.username });
    expect(opened.slots.map((slot) => slot.recipient)).toEqual([alice.username]);

    await settled(phone, laptop, b);
    expect(phone.binaries()).toHaveLength(0);
    expect(b.binaries().map((bytes) => decodeDelivery(bytes).messageIdHex)).toEqual([message.id]);
  });

  it("wait in the queue for an offline session, which acknowledges them like any message", async () => {
    const { alice, aliceLaptop, bob } = await twoDevices();
    const phone = await connected(alice.token);
    const copy = await sentCopy(alice.username, bob.username);
    expect(await send(phone, copy.frame, copy.id)).toMatchObject({ type: "sent", status: "stored" });

    const laptop = await connected(aliceLaptop.token);
    expect(laptop.binaries().map((bytes) => decodeDelivery(bytes).messageIdHex)).toEqual([copy.id]);
    laptop.sendJson({ type: "ack", ids: [copy.id] });
    await settled(laptop);
    laptop.close();
    await handedNothing(aliceLaptop.token);
    // The sealing session never had it pending.
    phone.close();
    const phoneAgain = await connected(alice.token);
    expect(phoneAgain.binaries()).toHaveLength(0);
  });

  it("are stored for nobody when the account has no other session, so no later login is handed them", async () => {
    const alice = await signup(uniqueName("alice"));
    const bob = await signup(uniqueName("bob"));
    const phone = await connected(alice.token);
    const copy = await sentCopy(alice.username, bob.username);
    expect(await send(phone, copy.frame, copy.id)).toMatchObject({ type: "sent", status: "stored" });
    const later = await connected((await login(alice.username)).token);
    expect(later.binaries()).toHaveLength(0);
  });

  it("are sent from a send-only socket too", async () => {
    const { alice, aliceLaptop, bob } = await twoDevices();
    const laptop = await connected(aliceLaptop.token);
    const sender = await connected(alice.token, "?receive=0");
    const copy = await sentCopy(alice.username, bob.username);
    expect(await send(sender, copy.frame, copy.id)).toMatchObject({ type: "sent", status: "delivered" });
    await laptop.waitFor((r) => r.kind === "binary");
  });
});

describe("forged and misaddressed sent copies", () => {
  it("refuse a copy claiming another sender", async () => {
    const { alice, aliceLaptop, bob } = await twoDevices();
    const laptop = await connected(aliceLaptop.token);
    const mallory = await signup(uniqueName("mallory"));
    const m = await connected(mallory.token);
    const forged = await sentCopy(alice.username, bob.username);
    expect(await send(m, forged.frame, forged.id)).toMatchObject({ type: "error", code: "forbidden" });
    await settled(laptop);
    expect(laptop.binaries()).toHaveLength(0);
  });

  it("refuse a copy sealed for someone other than its sender, and deliver nothing", async () => {
    const { alice, aliceLaptop, bob } = await twoDevices();
    const laptop = await connected(aliceLaptop.token);
    const b = await connected(bob.token);
    const mallory = await signup(uniqueName("mallory"));
    const m = await connected(mallory.token);
    // Mallory's "copy" with a slot for alice would land in alice's history as alice's own message.
    const forAlice = await sentCopy(mallory.username, bob.username, { slotsFor: [alice.username] });
    expect(await send(m, forAlice.frame, forAlice.id)).toMatchObject({
      type: "error",
      code: "bad_frame",
      message: `a sent copy carries exactly one key slot, for its sender ${mallory.username}`,
      id: forAlice.id,
    });
    const forBoth = await sentCopy(mallory.username, bob.username, {
      slotsFor: [alice.username, mallory.username].sort(),
    });
    expect(await send(m, forBoth.frame, forBoth.id)).toMatchObject({ type: "error", code: "bad_frame" });
    // The right slot, but a digest naming alice: its receiver's check would differ from what was sealed.
    const wrongDigest = await sentCopy(mallory.username, bob.username, { digestFor: [alice.username] });
    expect(await send(m, wrongDigest.frame, wrongDigest.id)).toMatchObject({
      type: "error",
      code: "bad_frame",
      message: "a sent copy's members digest must be that of its sender alone",
    });
    await settled(laptop, b, m);
    expect(laptop.binaries()).toHaveLength(0);
    expect(b.binaries()).toHaveLength(0);
    expect(m.binaries()).toHaveLength(0);
  });

  it("refuse a copy of a message to oneself, to a group name, or with an epoch", async () => {
    const { alice } = await twoDevices();
    const phone = await connected(alice.token);
    const toSelf = await sentCopy(alice.username, alice.username);
    expect(await send(phone, toSelf.frame, toSelf.id)).toMatchObject({
      code: "bad_frame",
      message: "a message to yourself reaches all your sessions: it needs no sent copy",
    });
    const withEpoch = await sentCopy(alice.username, "bob-the-peer", { epoch: 3 });
    expect(await send(phone, withEpoch.frame, withEpoch.id)).toMatchObject({
      code: "bad_frame",
      message: "malformed envelope: sent copies carry epoch 0",
    });
    const toGroupName = await sentCopy(alice.username, "Not A Name");
    expect(await send(phone, toGroupName.frame, toGroupName.id)).toMatchObject({
      code: "bad_frame",
      message: "malformed envelope: target is not a valid username",
    });
  });
});

describe("the account's session count", () => {
  it("is in every welcome, receiving or send-only, and follows logins and logouts", async () => {
    const alice = await signup(uniqueName("alice"));
    const phone = await connected(alice.token);
    expect(phone.jsonFrames("welcome")[0]).toMatchObject({ sessions: 1 });

    const from = phone.received.length;
    const laptop = await login(alice.username);
    expect(await phone.waitForJson("sessions", from)).toEqual({ type: "sessions", count: 2 });
    const laptopSocket = await connected(laptop.token);
    expect(laptopSocket.jsonFrames("welcome")[0]).toMatchObject({ sessions: 2 });
    const sendOnly = await connected(laptop.token, "?receive=0");
    expect(sendOnly.jsonFrames("welcome")[0]).toMatchObject({ sessions: 2 });

    const beforeLogout = phone.received.length;
    const logout = await api("/v1/logout", { method: "POST", token: laptop.token });
    expect(logout.status).toBe(204);
    expect(await phone.waitForJson("sessions", beforeLogout)).toEqual({ type: "sessions", count: 1 });
  });

  it("drops when another device revokes a session", async () => {
    const alice = await signup(uniqueName("alice"));
    const laptop = await login(alice.username);
    const phone = await connected(alice.token);
    const from = phone.received.length;
    const revoked = await api(`/v1/sessions/${laptop.sessionId}`, { method: "DELETE", token: alice.token });
    expect(revoked.status).toBe(204);
    expect(await phone.waitForJson("sessions", from)).toEqual({ type: "sessions", count: 1 });
  });
});
