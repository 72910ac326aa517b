// What PROTOCOL.md promises an implementer about versions and answers: `GET /v1/health` names protocol 3,
// every refused upload is answered with its id whenever the id can be read (other envelope versions
// included), and the signup answer is a session of its own whose messages a later login is handed until
// it ends.

import { describe, expect, it } from "vitest";
import { ByteWriter, toHex } from "../../protocol/bytes.js";
import { decodeUpload, encodeSlot } from "../../protocol/envelope.js";
import { MAX_FRAME_BYTES } from "../../protocol/limits.js";
import { PROTOCOL_VERSION } from "../../protocol/version.js";
import { api, fakeUpload, login, online, signup, uniqueName, type TestSocket } from "./helpers.js";

/** Sends one binary frame and returns the next error or sent frame the socket receives after it. */
async function answerTo(socket: TestSocket, frame: Uint8Array): Promise<Record<string, unknown>> {
  const from = socket.received.length;
  socket.ws.send(frame);
  const reply = await socket.waitFor(
    (r) => r.kind === "json" && (r.frame.type === "error" || r.frame.type === "sent"),
    5000,
    from,
  );
  return (reply as { frame: Record<string, unknown> }).frame;
}

/** A copy of `frame` with one byte changed. */
function withByte(frame: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = frame.slice();
  copy[offset] = value;
  return copy;
}

describe("GET /v1/health", () => {
  it("names the protocol version the server speaks", async () => {
    const response = await api("/v1/health");
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body).toEqual({ ok: true, protocol: 3, shards: expect.any(Number) });
    expect(PROTOCOL_VERSION).toBe(3);
  });
});

describe("a refused upload", () => {
  it("is answered with its id whenever the id can be read", async () => {
    const alice = await signup(uniqueName("alice"));
    const bob = await signup(uniqueName("bob"));
    const a = await online(alice.token);
    const group = uniqueName("team");
    const members = [alice.username, bob.username].sort();
    const good = await fakeUpload({
      sender: alice.username,
      target: group,
      kind: "group",
      slotsFor: members,
    });
    const id = toHex(good.frame.subarray(3, 19));
    const envelope = decodeUpload(good.frame);
    const slots = envelope.slots.map(encodeSlot);
    // The same signed part and signature with the slots in the order given, as a client might send them.
    const withSlots = (list: Uint8Array[]) => {
      const writer = new ByteWriter()
        .u8(0x01)
        .bytes(envelope.signedPart)
        .bytes(envelope.signature)
        .u16(list.length);
      for (const slot of list) writer.bytes(slot);
      return writer.finish();
    };
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ["slots out of order", withSlots([slots[1]!, slots[0]!]), /sorted by recipient with no repeats/],
      ["a repeated slot", withSlots([slots[0]!, slots[0]!]), /sorted by recipient with no repeats/],
      ["no slot", withSlots([]), /slot count/],
      ["truncated just after the id", good.frame.subarray(0, 19), /malformed envelope/],
      ["truncated inside a slot", good.frame.subarray(0, good.frame.length - 10), /malformed envelope/],
      ["a trailing byte", Uint8Array.of(...good.frame, 0), /malformed envelope/],
      ["an unknown kind", withByte(good.frame, 2, 9), /unknown message kind 9/],
      ["an invalid sender", withByte(good.frame, 36, 0x41), /sender/],
      [
        "protocol 1's envelope version byte",
        withByte(good.frame, 1, 1),
        /this client seals Telepound envelopes of version 1 and this server takes version 2: update the client/,
      ],
      [
        "a later envelope version byte",
        withByte(good.frame, 1, 3),
        /envelopes of version 3 and this server takes version 2: this server is older than the client/,
      ],
    ];
    for (const [what, frame, message] of cases) {
      const reply = await answerTo(a, frame);
      expect(reply, what).toMatchObject({ type: "error", code: "bad_frame", id });
      expect(String(reply.message), what).toMatch(message);
    }
    // A frame that ends before its id, or is not an upload, has no id to name.
    for (const frame of [good.frame.subarray(0, 18), Uint8Array.of(0x02, ...good.frame.subarray(1))]) {
      const reply = await answerTo(a, frame);
      expect(reply).toMatchObject({ type: "error", code: "bad_frame" });
      expect(reply).not.toHaveProperty("id");
    }
    // Over the frame limit: refused before decoding, still by id.
    const huge = new Uint8Array(MAX_FRAME_BYTES + 1);
    huge.set(good.frame.subarray(0, 19));
    expect(await answerTo(a, huge)).toMatchObject({ type: "error", code: "too_large", id });
    // The socket still serves: a well-formed direct message goes through.
    const direct = await fakeUpload({ sender: alice.username, target: bob.username });
    expect(await answerTo(a, direct.frame)).toMatchObject({ type: "sent", id: direct.id });
    a.close();
  });
});

describe("the signup session", () => {
  it("is a session like a login's: its token works at once and receives", async () => {
    const alice = await signup(uniqueName("alice"));
    const bob = await signup(uniqueName("bob"));
    const whoami = await api("/v1/whoami", { token: bob.token });
    expect(await whoami.json()).toMatchObject({ username: bob.username, sessionId: bob.sessionId });
    const b = await online(bob.token);
    const a = await online(alice.token);
    const upload = await fakeUpload({ sender: alice.username, target: bob.username });
    expect(await answerTo(a, upload.frame)).toMatchObject({ type: "sent", status: "delivered" });
    await b.waitFor((r) => r.kind === "binary");
    a.close();
    b.close();
  });

  it("keeps every message for itself until logged out, so a client that does not use it must end it", async () => {
    const alice = await signup(uniqueName("alice"));
    const send = async () => {
      const a = await online(alice.token);
      const upload = await fakeUpload({ sender: alice.username, target: bobName });
      expect(await answerTo(a, upload.frame)).toMatchObject({ type: "sent" });
      a.close();
      return upload.id;
    };
    /** Logs bob in, takes his backlog, acknowledges all of it; returns the ids it held. */
    const drainWithNewLogin = async () => {
      const session = await login(bobName);
      const socket = await online(session.token);
      const ids = socket.binaries().map((bytes) => toHex(bytes.subarray(3, 19)));
      if (ids.length > 0) socket.sendJson({ type: "ack", ids });
      // The ack is gathered for a few milliseconds before it reaches the home.
      await new Promise((resolve) => setTimeout(resolve, 150));
      socket.close();
      return ids;
    };

    // Signed up, then (as a client that ignores the signup answer would) logged in: the signup
    // session is still alive and nothing acknowledges for it, so each later login gets it all again.
    let bobName = uniqueName("bob");
    await signup(bobName);
    const kept = await send();
    expect(await drainWithNewLogin()).toEqual([kept]);
    expect(await drainWithNewLogin()).toEqual([kept]);

    // What PROTOCOL §3.4 says to do instead: end the signup session if it is not the one used.
    bobName = uniqueName("bob");
    const signupSession = await signup(bobName);
    const logout = await api("/v1/logout", { method: "POST", token: signupSession.token });
    expect(logout.status).toBe(204);
    const once = await send();
    expect(await drainWithNewLogin()).toEqual([once]);
    expect(await drainWithNewLogin()).toEqual([]);
  });
});
