// send and inbox through runCli against the stub server, with real keys: what goes on the wire, what is
// printed, that every delivery (duplicates and forgeries too) is acknowledged only after it was printed
// and recorded, and that a redelivered message is never shown twice, even by a later run.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { decodeUpload, encodeDelivery, signedPartWithSignature } from "../../../protocol/envelope.js";
import { openEnvelope, readDelivery, UnwrapCache } from "../../../cli-client/crypto/index.js";
import type { Home } from "../../../cli-client/home.js";
import { type TestUser, deliveryFrom, loggedInHome, makeUser, serveKeys, tampered } from "./fixtures.js";
import { SignedChain } from "./group-chain.js";
import {
  type FakeIo,
  type StubServer,
  type StubSocket,
  fakeIo,
  sendWelcome,
  startStubServer,
  tempDir,
  runCaptured,
} from "./helpers.js";

let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
// RSA-3072 key generation and scrypt (2^16) take seconds on a loaded 2-core machine.
vi.setConfig({ testTimeout: 30_000, hookTimeout: 60_000 });

let server: StubServer;
let dir: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  [alice, bob, carol] = await Promise.all([makeUser("alice"), makeUser("bob"), makeUser("carol")]);
});

beforeEach(async () => {
  server = await startStubServer();
  serveKeys(server, [alice, bob, carol]);
  dir = await tempDir();
});

afterEach(async () => {
  await server.close();
  await dir.remove();
});

const cli = runCaptured;

/** A receiving socket that pushes `deliveries` then synced, and records each ack with what was printed by then. */
function serveBacklog(deliveries: Uint8Array[], io: FakeIo, home: Home) {
  const acks: Array<{ id: string; printedBefore: string; seenBefore: string }> = [];
  server.onSocket = (socket: StubSocket) => {
    sendWelcome(socket.ws, "alice");
    for (const frame of deliveries) socket.ws.send(frame);
    socket.ws.send(JSON.stringify({ type: "synced" }));
    // Synchronous on purpose: the snapshot must be taken the moment the ack arrives.
    socket.ws.on("message", (data: Buffer, isBinary) => {
      if (isBinary) return;
      const frame = JSON.parse(data.toString()) as { type: string; ids?: string[] };
      if (frame.type !== "ack") return;
      let seenBefore = "";
      try {
        seenBefore = readFileSync(join(home.dir, "seen.json"), "utf8");
      } catch {
        // no seen.json yet
      }
      for (const id of frame.ids ?? []) acks.push({ id, printedBefore: io.out.text(), seenBefore });
    });
  };
  return acks;
}

describe("inbox", () => {
  it("prints each message once, warns about a forgery, and acks everything only after printing it", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const first = await deliveryFrom(bob, alice, "hello alice");
    const second = await deliveryFrom(bob, alice, "line one\nline two");
    // Sealed last, so the sequence it would take leaves no gap between the two real ones.
    const forged = await deliveryFrom(bob, alice, "forged");
    const io = fakeIo();
    const acks = serveBacklog([first.frame, first.frame, tampered(forged.frame), second.frame], io, home);

    const { code, stdout, stderr } = await cli(["--home", home.dir, "inbox", "--json"], io);

    expect(code).toBe(0);
    const printed = stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line));
    expect(printed).toEqual([
      {
        id: first.id,
        from: "bob",
        to: "alice",
        text: "hello alice",
        sentAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      },
      { id: second.id, from: "bob", to: "alice", text: "line one\nline two", sentAt: expect.any(String) },
    ]);
    const warnings = stderr
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line));
    expect(warnings).toHaveLength(1);
    expect(warnings[0].warning).toMatch(
      new RegExp(`dropped a message from bob \\(${forged.id}\\): verification failed: the signature`),
    );

    // The duplicate and the forgery are acknowledged too, or the server would redeliver them forever.
    expect(new Set(acks.map((ack) => ack.id))).toEqual(new Set([first.id, forged.id, second.id]));
    for (const ack of acks.filter((ack) => ack.id !== forged.id)) {
      expect(ack.printedBefore).toContain(ack.id);
      expect(ack.seenBefore).toContain(ack.id);
    }
  });

  it("does not show a message again in a later run, but acknowledges it again", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const message = await deliveryFrom(bob, alice, "only once");
    const firstIo = fakeIo();
    serveBacklog([message.frame], firstIo, home);
    expect((await cli(["--home", home.dir, "inbox"], firstIo)).stdout).toMatch(/\] bob: only once\n$/);

    const secondIo = fakeIo();
    const acks = serveBacklog([message.frame], secondIo, home);
    const again = await cli(["--home", home.dir, "inbox"], secondIo);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe("no new messages\n");
    expect(acks.map((ack) => ack.id)).toEqual([message.id]);
  });

  it("reports messages withheld before one, and marks one that arrives after a later one", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const sealed = [];
    for (const text of ["one", "two", "three", "four", "five"])
      sealed.push(await deliveryFrom(bob, alice, text));
    // 2 never comes; 4 comes after 5.
    const io = fakeIo();
    serveBacklog([sealed[0]!.frame, sealed[2]!.frame, sealed[4]!.frame, sealed[3]!.frame], io, home);
    const { code, stdout, stderr } = await cli(["--home", home.dir, "inbox", "--json"], io);
    expect(code).toBe(0);
    const shown = stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(shown.map(({ text, missedBefore, outOfOrder }) => ({ text, missedBefore, outOfOrder }))).toEqual([
      { text: "one" },
      { text: "three", missedBefore: 1 },
      { text: "five", missedBefore: 1 },
      { text: "four", outOfOrder: true },
    ]);
    const warnings = stderr
      .split("\n")
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { warning: string }).warning);
    expect(warnings).toEqual([
      expect.stringMatching(/^1 message from bob \(device [0-9a-f]{8}\) before this one was not delivered$/),
      expect.stringMatching(/^1 message from bob \(device [0-9a-f]{8}\) before this one was not delivered$/),
    ]);

    // People see the mark too, and the history keeps it.
    const history = await cli(["--home", home.dir, "history"]);
    expect(history.stdout).toMatch(/\] \(arrived out of order\) bob → alice: four\n$/);
  });

  it("never shows a message again once its id is forgotten: the sequence refuses it", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const old = await deliveryFrom(bob, alice, "old news");
    const firstIo = fakeIo();
    serveBacklog([old.frame], firstIo, home);
    expect((await cli(["--home", home.dir, "inbox"], firstIo)).stdout).toMatch(/bob: old news\n$/);

    // As if 20,000 later ids had pushed it out of seen.json.
    await home.write("seen.json", { owner: "alice", ids: [] });
    const againIo = fakeIo();
    const acks = serveBacklog([old.frame], againIo, home);
    const again = await cli(["--home", home.dir, "inbox"], againIo);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe("no new messages\n");
    expect(again.stderr).toMatch(
      new RegExp(`dropped a message from bob \\(${old.id}\\): a replay of message \\d+ from their device`),
    );
    expect(acks.map((ack) => ack.id)).toEqual([old.id]);
  });

  it("pins an unknown sender's keys from the server on first contact", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    server.http.set("GET /v1/users/carol", (request) => {
      expect(request.headers.authorization).toBe("Bearer token-of-alice");
      return { status: 200, body: { username: "carol", publicKeys: carol.publicKeys } };
    });
    const io = fakeIo();
    serveBacklog([(await deliveryFrom(carol, alice, "hi, I'm carol")).frame], io, home);
    const { code, stdout } = await cli(["--home", home.dir, "inbox"], io);
    expect(code).toBe(0);
    expect(stdout).toMatch(/carol: hi, I'm carol/);
    expect((await home.read("contacts.json"))?.contacts.get("carol")?.fingerprint).toBe(carol.fingerprint);
  });

  it("shows group events to people and acknowledges them", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const chain = new SignedChain("devs", [alice, bob]);
    chain.create(bob, []);
    const event = chain.event(chain.add(bob, "alice"));
    const eventId = event.id;
    const acked: string[] = [];
    server.onSocket = (socket) => {
      sendWelcome(socket.ws);
      socket.ws.send(JSON.stringify(event));
      socket.ws.send(JSON.stringify({ type: "synced" }));
      socket.ws.on("message", (data: Buffer) => acked.push(...(JSON.parse(data.toString()).ids ?? [])));
    };
    const human = await cli(["--home", home.dir, "inbox"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/group devs: bob added you \(members: alice, bob\) \[signed by bob\]\n/);
    expect(acked).toEqual([eventId]);
    // Shown once: a redelivered event is acknowledged silently.
    const again = await cli(["--home", home.dir, "inbox"]);
    expect(again.stdout).toBe("no new messages\n");
    expect(acked).toEqual([eventId, eventId]);
  });

  it("keeps listening for --wait seconds after the backlog", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const late = await deliveryFrom(bob, alice, "arrived late");
    server.onSocket = (socket) => {
      sendWelcome(socket.ws);
      socket.ws.send(JSON.stringify({ type: "synced" }));
      setTimeout(() => socket.ws.send(late.frame), 300);
    };
    const started = Date.now();
    const { code, stdout } = await cli(["--home", home.dir, "inbox", "--wait", "0.8"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/bob: arrived late/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(800);
  });

  it("exits 5 when the server drops the connection before synced, keeping what it printed", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const message = await deliveryFrom(bob, alice, "before the drop");
    server.onSocket = (socket) => {
      sendWelcome(socket.ws);
      socket.ws.send(message.frame);
      setTimeout(() => socket.ws.close(1011, "shard restarting"), 200);
    };
    const { code, stdout, stderr } = await cli(["--home", home.dir, "inbox"]);
    expect(code).toBe(5);
    expect(stdout).toMatch(/before the drop/);
    expect(stderr).toMatch(/shard restarting/);
  });
});

describe("send", () => {
  it("uploads a sealed message bob can open, over a send-only socket, and reports the server's answer", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    server.onSocket = (socket) => {
      sendWelcome(socket.ws);
      socket.ws.on("message", (data: Buffer, isBinary) => {
        if (!isBinary) return;
        const id = decodeUpload(new Uint8Array(data)).messageIdHex;
        socket.ws.send(JSON.stringify({ type: "sent", id, status: "stored" }));
      });
    };
    const { code, stdout, stderr } = await cli(["--home", home.dir, "send", "Bob", "hi", "there", "--json"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    expect(result).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
      to: "bob",
      status: "stored",
      sentAt: expect.any(String),
    });

    const socket = server.sockets[0]!;
    expect(socket.request.url).toBe("/v1/connect?receive=0");
    const upload = decodeUpload(socket.binaries[0]!);
    expect(upload.messageIdHex).toBe(result.id);
    expect(upload.header).toMatchObject({ sender: "alice", target: "bob", kind: "direct", counter: 1 });
    expect(upload.slots.map((slot) => slot.recipient)).toEqual(["bob"]);

    // Bob can open exactly what was sent.
    const delivery = readDelivery(encodeDelivery(signedPartWithSignature(upload), upload.slotBytes[0]!));
    const opened = await openEnvelope(delivery, {
      me: "bob",
      encryptionPrivateKey: bob.identity.encryption.privateKey,
      senderSigningKey: alice.identity.signing.publicKey,
      unwrapCache: new UnwrapCache(),
    });
    expect(opened.payload.text).toBe("hi there");
    expect((await home.read("state.json"))?.counter).toBe(1);
  });

  it("counts up across sends and reuses the stored conversation key", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    server.onSocket = (socket) => {
      sendWelcome(socket.ws);
      socket.ws.on("message", (data: Buffer) => {
        const id = decodeUpload(new Uint8Array(data)).messageIdHex;
        socket.ws.send(JSON.stringify({ type: "sent", id, status: "delivered" }));
      });
    };
    expect((await cli(["--home", home.dir, "send", "bob", "one"])).stdout).toBe("delivered to bob\n");
    expect((await cli(["--home", home.dir, "send", "bob", "two"])).code).toBe(0);
    const [one, two] = server.sockets.map((socket) => decodeUpload(socket.binaries[0]!));
    expect([one!.header.counter, two!.header.counter]).toEqual([1, 2]);
    expect(two!.slots[0]!.conversationKeyWrap).toEqual(one!.slots[0]!.conversationKeyWrap);
    // The conversation's sequence, stored before the upload, and recorded as this device's own.
    const state = await home.read("state.json");
    expect(state?.deviceId).toMatch(/^[0-9a-f]{32}$/);
    expect(state?.sequences).toEqual([["u:bob", 2]]);
    expect((await home.read("sequences.json"))?.entries).toEqual([
      {
        sender: "alice",
        device: state?.deviceId,
        conversation: "u:bob",
        high: 2,
        missing: [],
        lastSentAt: expect.any(Number),
      },
    ]);
  });

  it.each([
    ["unknown_user", 4],
    ["rate_limited", 6],
    ["too_large", 7],
    ["forbidden", 7],
    ["internal", 5],
  ])("exits with the code for a %s error frame", async (errorCode, exitCode) => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    server.onSocket = (socket) => {
      sendWelcome(socket.ws);
      socket.ws.on("message", (data: Buffer) => {
        const id = decodeUpload(new Uint8Array(data)).messageIdHex;
        socket.ws.send(JSON.stringify({ type: "error", code: errorCode, message: "no", id }));
      });
    };
    const { code, stderr } = await cli(["--home", home.dir, "send", "bob", "x"]);
    expect(code).toBe(exitCode);
    expect(stderr.split("\n").filter(Boolean)).toHaveLength(1);
  });

  it("retries the same frame when the server's flood control refuses it", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    server.onSocket = (socket) => {
      sendWelcome(socket.ws);
      socket.ws.on("message", (data: Buffer) => {
        const id = decodeUpload(new Uint8Array(data)).messageIdHex;
        const answer =
          socket.binaries.length < 3
            ? { type: "error", code: "rate_limited", message: "too many frames: slow down and retry", id }
            : { type: "sent", id, status: "delivered" };
        socket.ws.send(JSON.stringify(answer));
      });
    };
    const { code, stdout } = await cli(["--home", home.dir, "send", "bob", "patience"]);
    expect(code).toBe(0);
    expect(stdout).toBe("delivered to bob\n");
    const frames = server.sockets[0]!.binaries;
    expect(frames).toHaveLength(3);
    expect(frames[2]).toEqual(frames[0]);
    expect((await home.read("state.json"))?.counter).toBe(1);
  });

  it("exits 4 for a user the server does not know, without connecting", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, []);
    const { code, stderr } = await cli(["--home", home.dir, "send", "nobody", "hello"]);
    expect(code).toBe(4);
    expect(stderr).toBe("telepound: no such user: nobody\n");
    expect(server.sockets).toHaveLength(0);
  });

  it("exits 3 without a session, and 3 when --server names another server than the session's", async () => {
    expect((await cli(["--home", dir.path, "send", "bob", "hi"])).code).toBe(3);
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const other = await cli(["--home", home.dir, "--server", "http://127.0.0.1:1", "send", "bob", "hi"]);
    expect(other.code).toBe(3);
    expect(other.stderr).toMatch(/logged in to http:\/\/127\.0\.0\.1:\d+, not http:\/\/127\.0\.0\.1:1/);
  });

  it("refuses text over the protocol's limit before connecting (exit 7)", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    server.onSocket = (socket) => sendWelcome(socket.ws);
    const { code, stderr } = await cli(["--home", home.dir, "send", "bob", "x".repeat(64 * 1024 + 1)]);
    expect(code).toBe(7);
    expect(stderr).toMatch(/too large/);
  });
});

describe("chat (piped, no terminal)", () => {
  it("sends every line of piped input in order, shows incoming messages, and ends at end of input", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const incoming = await deliveryFrom(bob, alice, "hi from bob");
    server.onSocket = (socket) => {
      sendWelcome(socket.ws);
      socket.ws.send(incoming.frame);
      socket.ws.send(JSON.stringify({ type: "synced" }));
      socket.ws.on("message", (data: Buffer, isBinary) => {
        if (!isBinary) return;
        const id = decodeUpload(new Uint8Array(data)).messageIdHex;
        socket.ws.send(JSON.stringify({ type: "sent", id, status: "delivered" }));
      });
    };
    const lines = ["/msg bob", "first", "second", "/msg bob one-off text", "/msg nobody-x", "third"];
    server.http.set("GET /v1/users/nobody-x", () => ({
      status: 404,
      body: { error: { code: "not_found", message: "x" } },
    }));
    const io = fakeIo({}, `${lines.join("\n")}\n`);
    const { code, stdout, stderr } = await cli(["--home", home.dir, "chat"], io);
    expect(code).toBe(0);
    expect(stdout).toMatch(/bob: hi from bob/);
    expect(stdout).toMatch(/now talking to bob/);
    // A failed /msg is reported and the session goes on.
    expect(stderr).toBe("telepound: no such user: nobody-x\n");
    const socket = server.sockets[0]!;
    expect(socket.request.url).toBe("/v1/connect");
    const texts = await Promise.all(
      socket.binaries.map(async (frame) => {
        const upload = decodeUpload(frame);
        const opened = await openEnvelope(
          readDelivery(encodeDelivery(signedPartWithSignature(upload), upload.slotBytes[0]!)),
          {
            me: "bob",
            encryptionPrivateKey: bob.identity.encryption.privateKey,
            senderSigningKey: alice.identity.signing.publicKey,
            unwrapCache: new UnwrapCache(),
          },
        );
        return [upload.header.counter, opened.payload.text];
      }),
    );
    expect(texts).toEqual([
      [1, "first"],
      [2, "second"],
      [3, "one-off text"],
      [4, "third"],
    ]);
    expect(socket.texts).toContainEqual({ type: "ack", ids: [incoming.id] });
  });
});
