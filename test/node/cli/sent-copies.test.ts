// Sent copies (PROTOCOL §5.12) through runCli against the stub server, with real keys: `send` follows a
// direct message with its copy, sealed for the sender alone, unless the server counts no other session
// (and a copy that fails never fails the send); `inbox` on another device of the sender shows the copy as
// sent by "you" to the peer, records it as outgoing, refuses a replay of it, and drops one that another
// user sealed to pass a message off as ours.

import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import {
  type EnvelopeHeader,
  decodeUpload,
  encodeDelivery,
  encodeSignedPart,
  encodeUpload,
  keyCommitment,
  membersDigest,
  signedPartWithSignature,
  signingInput,
} from "../../../protocol/envelope.js";
import { toHex } from "../../../protocol/bytes.js";
import {
  SenderKeyring,
  UnwrapCache,
  openEnvelope,
  readDelivery,
  sealMessage,
} from "../../../client/crypto/index.js";
import { encodePayload } from "../../../client/crypto/payload.js";
import { randomBytes, rsaWrap, secretboxSeal, sha256, sign } from "../../../client/crypto/primitives.js";
import { type TestUser, loggedInHome, makeUser, nextSequence, serveKeys } from "./fixtures.js";
import {
  type FakeIo,
  type StubServer,
  fakeIo,
  runCaptured,
  sendWelcome,
  startStubServer,
  tempDir,
} from "./helpers.js";

let alice: TestUser;
let bob: TestUser;
/** alice's other device: her keys, its own device id and sequences. */
let aliceLaptop: TestUser;
vi.setConfig({ testTimeout: 30_000, hookTimeout: 60_000 });

let server: StubServer;
let dir: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  [alice, bob] = await Promise.all([makeUser("alice"), makeUser("bob")]);
  aliceLaptop = { ...alice, deviceId: randomBytes(16), sequences: new Map() };
});

beforeEach(async () => {
  server = await startStubServer();
  serveKeys(server, [alice, bob]);
  dir = await tempDir();
});

afterEach(async () => {
  await server.close();
  await dir.remove();
});

const cli = runCaptured;

/** Answers every upload "sent" (or, for the n-th, what `refuse` says), after a welcome counting `sessions`. */
function acceptUploads(sessions: number | null, refuse?: (index: number, id: string) => object | null) {
  const uploads: ReturnType<typeof decodeUpload>[] = [];
  server.onSocket = (socket) => {
    sendWelcome(socket.ws, "alice", sessions);
    socket.ws.on("message", (data: Buffer, isBinary) => {
      if (!isBinary) return;
      const upload = decodeUpload(new Uint8Array(data));
      uploads.push(upload);
      const id = upload.messageIdHex;
      const answer = refuse?.(uploads.length - 1, id) ?? { type: "sent", id, status: "delivered" };
      socket.ws.send(JSON.stringify(answer));
    });
  };
  return uploads;
}

/** What the server hands `recipient` of an upload: the signed part and their slot. */
function deliveryOf(upload: ReturnType<typeof decodeUpload>, recipient: string): Uint8Array {
  const index = upload.slots.findIndex((slot) => slot.recipient === recipient);
  return encodeDelivery(signedPartWithSignature(upload), upload.slotBytes[index]!);
}

async function openAs(user: TestUser, frame: Uint8Array, signer: TestUser) {
  return openEnvelope(readDelivery(frame), {
    me: user.name,
    encryptionPrivateKey: user.identity.encryption.privateKey,
    senderSigningKey: signer.identity.signing.publicKey,
    unwrapCache: new UnwrapCache(),
  });
}

/**
 * The copy `device` (alice's laptop) seals of a direct message to `target`, under that device's next
 * sequence in the conversation (or `sequence`): the delivery alice's other devices get.
 */
async function copyFrom(device: TestUser, target: string, text: string, sequence?: number) {
  const position = nextSequence(device, `u:${target}`);
  const sealed = await sealMessage({
    signingPrivateKey: device.identity.signing.privateKey,
    sender: device.name,
    kind: "sentCopy",
    target,
    epoch: 0,
    recipients: [
      {
        username: device.name,
        encryptionKey: device.identity.encryption.publicKey,
        fingerprint: device.fingerprint,
      },
    ],
    payload: { text },
    counter: 1,
    deviceId: position.deviceId,
    sequence: sequence ?? position.sequence,
    keyring: new SenderKeyring(),
  });
  return { frame: deliveryOf(decodeUpload(sealed.frame), device.name), id: sealed.messageId };
}

/** A receiving socket that pushes `deliveries` then synced, and collects the acks. */
function serveBacklog(deliveries: Uint8Array[]): string[] {
  const acks: string[] = [];
  server.onSocket = (socket) => {
    sendWelcome(socket.ws, "alice", 2);
    for (const frame of deliveries) socket.ws.send(frame);
    socket.ws.send(JSON.stringify({ type: "synced" }));
    socket.ws.on("message", (data: Buffer, isBinary) => {
      if (isBinary) return;
      const frame = JSON.parse(data.toString()) as { type: string; ids?: string[] };
      if (frame.type === "ack") acks.push(...(frame.ids ?? []));
    });
  };
  return acks;
}

function lines(text: string): Array<Record<string, unknown>> {
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("send, with other sessions on the account", () => {
  it("follows the message with its copy: for alice alone, naming bob, the same device and sequence", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const uploads = acceptUploads(2);
    const { code, stdout, stderr } = await cli(["--home", home.location, "send", "bob", "see you at 5"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toBe("delivered to bob\n");

    expect(uploads).toHaveLength(2);
    const [message, copy] = uploads as [ReturnType<typeof decodeUpload>, ReturnType<typeof decodeUpload>];
    expect(message.header).toMatchObject({ kind: "direct", sender: "alice", target: "bob", counter: 1 });
    expect(copy.header).toMatchObject({
      kind: "sentCopy",
      sender: "alice",
      target: "bob",
      epoch: 0,
      counter: 2,
    });
    expect(copy.slots.map((slot) => slot.recipient)).toEqual(["alice"]);
    expect(toHex(copy.header.membersDigest)).toBe(toHex(membersDigest(["alice"], sha256)));
    expect(copy.messageIdHex).not.toBe(message.messageIdHex);

    const sent = await openAs(bob, deliveryOf(message, "bob"), alice);
    const copied = await openAs(alice, deliveryOf(copy, "alice"), alice);
    expect(copied.payload).toEqual(sent.payload);
    expect(copied.payload.text).toBe("see you at 5");

    // This device keeps the copy's sequence as its own too, so a copy handed back to it is not shown.
    const state = await home.read("state.json");
    expect(state?.counter).toBe(2);
    expect(state?.sequences).toEqual([["u:bob", 1]]);
    const entries = (await home.read("sequences.json"))?.entries ?? [];
    expect(entries.map(({ conversation, high }) => [conversation, high]).sort()).toEqual([
      ["s:bob", 1],
      ["u:bob", 1],
    ]);
  });

  it("sends a copy to a server that does not count sessions", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const uploads = acceptUploads(null);
    expect((await cli(["--home", home.location, "send", "bob", "hi"])).code).toBe(0);
    expect(uploads.map((upload) => upload.header.kind)).toEqual(["direct", "sentCopy"]);
  });

  it("seals no copy when the server counts this session alone, nor for a message to oneself", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const uploads = acceptUploads(1);
    expect((await cli(["--home", home.location, "send", "bob", "hi"])).code).toBe(0);
    expect(uploads.map((upload) => upload.header.kind)).toEqual(["direct"]);
    expect((await home.read("state.json"))?.counter).toBe(1);

    const toSelf = acceptUploads(3);
    expect((await cli(["--home", home.location, "send", "alice", "note to self"])).code).toBe(0);
    expect(toSelf.map((upload) => [upload.header.kind, upload.header.target])).toEqual([["direct", "alice"]]);
  });

  it("reports a copy the server refuses as a warning: the message was sent, the exit code is 0", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const uploads = acceptUploads(2, (index, id) =>
      index === 1 ? { type: "error", code: "quota_exceeded", message: "your queue is full", id } : null,
    );
    const { code, stdout, stderr } = await cli(["--home", home.location, "send", "bob", "hi", "--json"]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ to: "bob", status: "delivered" });
    expect(uploads).toHaveLength(2);
    expect(lines(stderr)).toEqual([
      { warning: "sent to bob, but not copied to your other devices: not sent: your queue is full" },
    ]);
  });
});

describe("inbox on another device of the sender", () => {
  it("shows a copy as sent by you to bob, records it as outgoing, and acknowledges it", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const copy = await copyFrom(aliceLaptop, "bob", "sent from the laptop");
    const acks = serveBacklog([copy.frame]);
    const io: FakeIo = fakeIo();
    const { code, stdout, stderr } = await cli(["--home", home.location, "inbox", "--json"], io);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(lines(stdout)).toEqual([
      {
        id: copy.id,
        from: "alice",
        to: "bob",
        direction: "out",
        text: "sent from the laptop",
        sentAt: expect.any(String),
      },
    ]);
    expect(acks).toEqual([copy.id]);

    const history = await cli(["--home", home.location, "history", "bob", "--json"]);
    expect(lines(history.stdout)).toEqual([
      expect.objectContaining({ id: copy.id, direction: "out", from: "alice", to: "bob" }),
    ]);
    const sequences = (await home.read("sequences.json"))?.entries ?? [];
    expect(sequences).toEqual([
      expect.objectContaining({
        sender: "alice",
        device: toHex(aliceLaptop.deviceId),
        conversation: "s:bob",
      }),
    ]);
  });

  it("prints it for people as you → bob", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    serveBacklog([(await copyFrom(aliceLaptop, "bob", "hello from my laptop")).frame]);
    const { code, stdout } = await cli(["--home", home.location, "inbox"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^\[[\d-]+ [\d:]+\] you → bob: hello from my laptop\n/);
  });

  it("refuses a replay of a copy, also sealed anew under the same sequence, but shows the next one", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const first = await copyFrom(aliceLaptop, "bob", "once");
    serveBacklog([first.frame]);
    expect((await cli(["--home", home.location, "inbox", "--json"])).stdout).toContain('"text":"once"');

    // The same frame again, and a copy with a fresh id under the sequence already shown.
    const resealed = await copyFrom(aliceLaptop, "bob", "once, again", aliceLaptop.sequences.get("u:bob"));
    const next = await copyFrom(aliceLaptop, "bob", "twice");
    // Another conversation of the same device counts apart: its first sequence is no replay.
    const toCarol = await copyFrom(aliceLaptop, "carol", "to carol");
    const acks = serveBacklog([first.frame, resealed.frame, next.frame, toCarol.frame]);
    const again = await cli(["--home", home.location, "inbox", "--json"]);
    expect(again.code).toBe(0);
    expect(lines(again.stdout).map((line) => [line.to, line.text])).toEqual([
      ["bob", "twice"],
      ["carol", "to carol"],
    ]);
    expect(new Set(acks)).toEqual(new Set([first.id, resealed.id, next.id, toCarol.id]));
  });

  it("drops a sent copy signed by someone else, which would show their words as ours", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    // bob builds a kind-3 envelope with a slot for alice, naming carol as the peer, and signs it.
    const messageKey = randomBytes(32);
    const nonce = randomBytes(24);
    const header: EnvelopeHeader = {
      kind: "sentCopy",
      messageId: randomBytes(16),
      sentAt: Date.now(),
      counter: 1,
      sender: "bob",
      target: "carol",
      epoch: 0,
      membersDigest: membersDigest(["alice"], sha256),
      keyCommitment: keyCommitment(messageKey, sha256),
      nonce,
      ciphertext: secretboxSeal(
        encodePayload({ text: "I owe bob 1000 euros" }, nextSequence(bob, "u:carol")),
        nonce,
        messageKey,
      ),
    };
    const signedPart = encodeSignedPart(header);
    const signature = await sign(bob.identity.signing.privateKey, signingInput(signedPart));
    const conversationKey = randomBytes(32);
    const msgKeyNonce = randomBytes(24);
    const slot = {
      recipient: "alice",
      conversationKeyWrap: await rsaWrap(alice.identity.encryption.publicKey, conversationKey),
      msgKeyNonce,
      msgKeyBox: secretboxSeal(messageKey, msgKeyNonce, conversationKey),
    };
    const id = toHex(header.messageId);
    const acks = serveBacklog([
      deliveryOf(decodeUpload(encodeUpload(signedPart, signature, [slot])), "alice"),
    ]);
    const { code, stdout, stderr } = await cli(["--home", home.location, "inbox", "--json"]);
    expect(code).toBe(0);
    expect(stdout).toBe("");
    expect(lines(stderr)).toEqual([
      {
        warning: `dropped a message from bob (${id}): verification failed: a sent copy from bob, not from me (alice)`,
      },
    ]);
    expect(acks).toEqual([id]);
  });
});
