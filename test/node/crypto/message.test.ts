// sealMessage → (server fan-out) → readDelivery → openEnvelope, for direct and group messages, and every
// way a delivery can be wrong: tampered bytes, wrong keys, wrong recipient, members, epoch, or a replay.

import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { toHex, utf8 } from "../../../protocol/bytes.js";
import {
  decodeDelivery,
  decodeUpload,
  encodeSignedPart,
  encodeUpload,
  keyCommitment,
  membersDigest,
  signingInput,
  type EnvelopeHeader,
  type MessageKindName,
} from "../../../protocol/envelope.js";
import {
  CONVERSATION_KEY_MAX_AGE_MS,
  SenderKeyring,
  UnwrapCache,
} from "../../../client/crypto/conversation-keys.js";
import { CryptoError, PayloadTooLargeError, TamperedMessageError } from "../../../client/crypto/errors.js";
import {
  openEnvelope,
  readDelivery,
  sealMessage,
  type OpenOptions,
  type SealOptions,
} from "../../../client/crypto/message.js";
import { encodePayload } from "../../../client/crypto/payload.js";
import { randomBytes, rsaWrap, secretboxSeal, sign } from "../../../client/crypto/primitives.js";
import { ReplayGuard, replayId } from "../../../client/crypto/replay-guard.js";
import { deliveryFor, makeUsers, type TestUser } from "./helpers.js";

let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let mallory: TestUser;
beforeAll(async () => {
  [alice, bob, carol, mallory] = await makeUsers("alice", "bob", "carol", "mallory");
});
afterEach(() => {
  vi.useRealTimers();
});

const TEAM = () => ["alice", "bob", "carol"];
const ALICE_DEVICE = new Uint8Array(16).fill(0xa1);

/** alice → bob, direct, unless overridden. */
function seal(overrides: Partial<SealOptions> = {}) {
  return sealMessage({
    signingPrivateKey: alice.identity.signing.privateKey,
    sender: "alice",
    kind: "direct",
    target: "bob",
    epoch: 0,
    recipients: [bob.recipient],
    payload: { text: "hello bob" },
    counter: 1,
    deviceId: ALICE_DEVICE,
    sequence: 1,
    keyring: new SenderKeyring(),
    ...overrides,
  });
}

/** alice → team (alice, bob, carol) at epoch 7. */
function sealToTeam(overrides: Partial<SealOptions> = {}) {
  return seal({
    kind: "group",
    target: "team",
    epoch: 7,
    recipients: [alice.recipient, bob.recipient, carol.recipient],
    payload: { text: "hello team" },
    ...overrides,
  });
}

/** `user` reads a delivery frame, trusting alice's signing key unless told otherwise. */
async function openAs(user: TestUser, delivery: Uint8Array, overrides: Partial<OpenOptions> = {}) {
  return openEnvelope(readDelivery(delivery), {
    me: user.name,
    encryptionPrivateKey: user.identity.encryption.privateKey,
    senderSigningKey: alice.identity.signing.publicKey,
    unwrapCache: user.unwrapCache,
    ...overrides,
  });
}

const asTeam = { expectedMembers: TEAM(), expectedEpoch: 7 };

async function rejection(promise: Promise<unknown>): Promise<TamperedMessageError> {
  const error = await promise.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(TamperedMessageError);
  return error as TamperedMessageError;
}

/**
 * An envelope signed by alice but built by hand, to show each check on its own: a buggy or malicious
 * sender can sign anything, so these are the checks the signature cannot replace.
 */
async function forge(options: {
  to: TestUser;
  kind?: MessageKindName;
  target?: string;
  epoch?: number;
  digestOver?: string[];
  plaintext?: Uint8Array;
  ciphertextKey?: Uint8Array;
  committedKey?: Uint8Array;
}): Promise<Uint8Array> {
  const messageKey = randomBytes(32);
  const nonce = randomBytes(24);
  const header: EnvelopeHeader = {
    kind: options.kind ?? "direct",
    messageId: randomBytes(16),
    sentAt: Date.now(),
    counter: 1,
    sender: "alice",
    target: options.target ?? options.to.name,
    epoch: options.epoch ?? 0,
    membersDigest: await membersDigest(options.digestOver ?? [options.to.name]),
    keyCommitment: await keyCommitment(options.committedKey ?? messageKey),
    nonce,
    ciphertext: secretboxSeal(
      options.plaintext ?? encodePayload({ text: "forged" }, { deviceId: ALICE_DEVICE, sequence: 1 }),
      nonce,
      options.ciphertextKey ?? messageKey,
    ),
  };
  const signedPart = encodeSignedPart(header);
  const signature = await sign(alice.identity.signing.privateKey, signingInput(signedPart));
  const conversationKey = randomBytes(32);
  const msgKeyNonce = randomBytes(24);
  const slot = {
    recipient: options.to.name,
    conversationKeyWrap: await rsaWrap(options.to.identity.encryption.publicKey, conversationKey),
    msgKeyNonce,
    msgKeyBox: secretboxSeal(messageKey, msgKeyNonce, conversationKey),
  };
  return deliveryFor(encodeUpload(signedPart, signature, [slot]), options.to.name);
}

describe("direct messages", () => {
  it("round-trip from sealMessage through the server's fan-out to openEnvelope", async () => {
    const before = Date.now();
    const sealed = await seal({
      payload: { text: "hello bob 👋", attachment: { name: "a.txt" } },
      counter: 42,
      sequence: 9,
    });
    const upload = decodeUpload(sealed.frame);
    expect(upload.slots.map((slot) => slot.recipient)).toEqual(["bob"]);
    expect(sealed.messageId).toMatch(/^[0-9a-f]{32}$/);
    expect(upload.messageIdHex).toBe(sealed.messageId);
    expect(sealed.header).toMatchObject({
      kind: "direct",
      sender: "alice",
      target: "bob",
      epoch: 0,
      counter: 42,
    });
    expect(sealed.header.sentAt).toBeGreaterThanOrEqual(before);
    expect(sealed.header.sentAt).toBeLessThanOrEqual(Date.now());
    expect(toHex(sealed.frame)).not.toContain(toHex(utf8("hello bob")));

    const opened = await openAs(bob, deliveryFor(sealed.frame, "bob"));
    // The device and sequence travel inside the ciphertext, signed with it, and come out with the text.
    expect(sealed.position).toEqual({ deviceId: ALICE_DEVICE, sequence: 9 });
    expect(opened.payload).toEqual({
      text: "hello bob 👋",
      attachment: { name: "a.txt" },
      deviceId: ALICE_DEVICE,
      sequence: 9,
    });
    expect(opened.header).toMatchObject({ sender: "alice", target: "bob", counter: 42 });
    expect(toHex(opened.header.messageId)).toBe(sealed.messageId);
  });

  it("use a fresh message id, message key and nonce every time", async () => {
    const keyring = new SenderKeyring();
    const [a, b] = [await seal({ keyring }), await seal({ keyring })];
    expect(a.messageId).not.toBe(b.messageId);
    expect(toHex(a.header.nonce)).not.toBe(toHex(b.header.nonce));
    expect(toHex(a.header.keyCommitment)).not.toBe(toHex(b.header.keyCommitment));
  });

  it("are refused when the slot's recipient is not me", async () => {
    const delivery = deliveryFor((await seal()).frame, "bob");
    const error = await rejection(openAs(carol, delivery));
    expect(error.reason).toBe("the key slot is for bob, not carol");
  });

  it("are refused when the pinned sender key is not the signer's", async () => {
    const delivery = deliveryFor((await seal()).frame, "bob");
    const error = await rejection(
      openAs(bob, delivery, { senderSigningKey: mallory.identity.signing.publicKey }),
    );
    expect(error.reason).toMatch(/signature does not verify against alice's pinned key/);
  });

  it("are refused when my private key cannot unwrap the conversation key", async () => {
    const delivery = deliveryFor((await seal()).frame, "bob");
    const error = await rejection(
      openAs(bob, delivery, {
        encryptionPrivateKey: carol.identity.encryption.privateKey,
        unwrapCache: new UnwrapCache(),
      }),
    );
    expect(error.reason).toMatch(/conversation key wrap does not decrypt/);
  });

  it("are refused when signed for another target or another recipient set", async () => {
    // The control: the forging helper makes envelopes that do open when nothing is wrong.
    expect((await openAs(bob, await forge({ to: bob }))).payload.text).toBe("forged");
    const otherTarget = await rejection(
      openAs(bob, await forge({ to: bob, target: "carol", digestOver: ["bob"] })),
    );
    expect(otherTarget.reason).toBe("the direct message is addressed to carol, not bob");
    const wider = await rejection(openAs(bob, await forge({ to: bob, digestOver: ["bob", "carol"] })));
    expect(wider.reason).toMatch(/members digest does not name me/);
  });

  it("are refused when a slot carries a message key other than the committed one", async () => {
    const error = await rejection(openAs(bob, await forge({ to: bob, committedKey: randomBytes(32) })));
    expect(error.reason).toMatch(/does not match the signed key commitment/);
  });

  it("are refused when the ciphertext does not open, or opens to a malformed payload", async () => {
    const wrongKey = await rejection(openAs(bob, await forge({ to: bob, ciphertextKey: randomBytes(32) })));
    expect(wrongKey.reason).toMatch(/ciphertext does not open/);
    const badPayload = new Uint8Array(256);
    badPayload[0] = 9;
    const malformed = await rejection(openAs(bob, await forge({ to: bob, plaintext: badPayload })));
    expect(malformed.reason).toMatch(/malformed payload: unsupported payload version 9/);
  });

  it("refuse to seal for anyone but exactly the target", async () => {
    await expect(seal({ recipients: [bob.recipient, carol.recipient] })).rejects.toThrow(CryptoError);
    await expect(seal({ recipients: [carol.recipient] })).rejects.toThrow(/exactly its target/);
    await expect(seal({ epoch: 1 })).rejects.toThrow(/epoch 0/);
    await expect(seal({ sender: "Alice!" })).rejects.toThrow(/not a username/);
  });

  it("refuse an oversize payload before touching the keyring", async () => {
    const keyring = new SenderKeyring();
    await expect(seal({ keyring, payload: { text: "x".repeat(64 * 1024 + 1) } })).rejects.toThrow(
      PayloadTooLargeError,
    );
    expect(keyring.toJSON().recipients).toEqual([]);
  });
});

describe("every tampered byte of a delivery is rejected, by the check for its region", () => {
  it("flips each byte of bob's delivery in turn", async () => {
    const delivery = deliveryFor((await seal({ payload: { text: "tamper with me" } })).frame, "bob");
    await openAs(bob, delivery); // the untouched frame opens (and warms bob's cache for the slot's wrap)

    const envelope = decodeDelivery(delivery);
    const slot = envelope.slots[0]!;
    const signedEnd = 1 + envelope.signedPart.length;
    const ciphertextStart = signedEnd - envelope.header.ciphertext.length;
    const signatureEnd = signedEnd + 64;
    const wrapStart = signatureEnd + 1 + slot.recipient.length + 2;
    const wrapEnd = wrapStart + slot.conversationKeyWrap.length;
    const regions: Array<[end: number, name: string, reason: RegExp]> = [
      [1, "frame tag", /^malformed delivery/],
      // A flipped length, name byte or high sentAt byte breaks the format; any other flip, the signature.
      [ciphertextStart, "header fields", /^malformed delivery|^the signature does not verify/],
      [signedEnd, "ciphertext", /^the signature does not verify/],
      [signatureEnd, "signature", /^the signature does not verify/],
      [wrapStart, "slot recipient", /^malformed delivery|^the key slot is for/],
      [wrapEnd, "slot wrap", /^the conversation key wrap does not decrypt/],
      [delivery.length, "slot nonce and box", /^the message key box does not open/],
    ];
    expect(wrapEnd + 24 + 48).toBe(delivery.length);

    let position = 0;
    for (const [end, name, reason] of regions) {
      for (; position < end; position++) {
        const tampered = delivery.slice();
        tampered[position]! ^= 0x01;
        const error = await openAs(bob, tampered).then(
          () => new Error(`accepted a flip at byte ${position} (${name})`),
          (thrown: unknown) => thrown,
        );
        if (!(error instanceof TamperedMessageError) || !reason.test(error.reason)) {
          throw new Error(`byte ${position} (${name}): ${String(error)}`);
        }
      }
    }
    expect(position).toBe(delivery.length);
  });
});

describe("group messages", () => {
  it("open for every member, the sender included, with the member list and epoch they expect", async () => {
    const sealed = await sealToTeam({ payload: { text: "hello team", attachment: [1, 2] } });
    expect(decodeUpload(sealed.frame).slots.map((slot) => slot.recipient)).toEqual(["alice", "bob", "carol"]);
    for (const member of [alice, bob, carol]) {
      // Any order of the member list gives the same digest.
      const opened = await openAs(member, deliveryFor(sealed.frame, member.name), {
        expectedMembers: ["carol", "alice", "bob"],
        expectedEpoch: 7,
      });
      expect(opened.payload).toMatchObject({ text: "hello team", attachment: [1, 2], sequence: 1 });
      expect(opened.header).toMatchObject({ kind: "group", target: "team", epoch: 7 });
    }
  });

  it("are refused when the server added or dropped a member", async () => {
    const delivery = deliveryFor((await sealToTeam()).frame, "bob");
    const added = await rejection(
      openAs(bob, delivery, { ...asTeam, expectedMembers: [...TEAM(), "mallory"] }),
    );
    expect(added.reason).toMatch(/members digest does not match the members of team at epoch 7/);
    const dropped = await rejection(openAs(bob, delivery, { ...asTeam, expectedMembers: ["alice", "bob"] }));
    expect(dropped.reason).toMatch(/members digest does not match/);
  });

  it("are refused for another epoch", async () => {
    const delivery = deliveryFor((await sealToTeam()).frame, "bob");
    const error = await rejection(openAs(bob, delivery, { ...asTeam, expectedEpoch: 8 }));
    expect(error.reason).toBe("sealed for epoch 7, expected 8");
  });

  it("are refused when my slot is given to another member", async () => {
    const delivery = deliveryFor((await sealToTeam()).frame, "bob");
    const error = await rejection(openAs(carol, delivery, asTeam));
    expect(error.reason).toBe("the key slot is for bob, not carol");
  });

  it("are refused when the sender is not a member", async () => {
    // Signed by alice for {bob, carol} only: the digest matches that list, but alice is not on it.
    const delivery = await forge({
      to: bob,
      kind: "group",
      target: "team",
      epoch: 7,
      digestOver: ["bob", "carol"],
    });
    const error = await rejection(
      openAs(bob, delivery, { expectedMembers: ["bob", "carol"], expectedEpoch: 7 }),
    );
    expect(error.reason).toBe("alice is not a member of team at epoch 7");
  });

  it("need the caller's member list and epoch", async () => {
    const delivery = deliveryFor((await sealToTeam()).frame, "bob");
    await expect(openAs(bob, delivery)).rejects.toThrow(TypeError);
  });

  it("refuse to seal without the sender among the recipients, or for a bad group name", async () => {
    await expect(sealToTeam({ recipients: [bob.recipient, carol.recipient] })).rejects.toThrow(/sender too/);
    await expect(sealToTeam({ recipients: [alice.recipient, bob.recipient, bob.recipient] })).rejects.toThrow(
      /twice/,
    );
    await expect(sealToTeam({ target: "Team!" })).rejects.toThrow(/not a group name/);
  });
});

/** alice's copy, for her own other devices, of a direct message she sent to bob (PROTOCOL §5.12). */
function sealCopy(overrides: Partial<SealOptions> = {}) {
  return seal({ kind: "sentCopy", target: "bob", recipients: [alice.recipient], ...overrides });
}

/** alice reads a delivery on another of her devices: the signer she pinned for herself is her own key. */
function openAsAlice(delivery: Uint8Array) {
  return openAs(alice, delivery, { unwrapCache: new UnwrapCache() });
}

describe("sent copies", () => {
  it("open for the sender alone, with the copied payload, device and sequence, naming the peer", async () => {
    const sealed = await sealCopy({ payload: { text: "hello bob", attachment: { name: "a.txt" } } });
    const upload = decodeUpload(sealed.frame);
    expect(upload.slots.map((slot) => slot.recipient)).toEqual(["alice"]);
    expect(sealed.frame[2]).toBe(3);
    expect(sealed.header).toMatchObject({ kind: "sentCopy", sender: "alice", target: "bob", epoch: 0 });
    expect(toHex(sealed.header.membersDigest)).toBe(toHex(await membersDigest(["alice"])));

    const opened = await openAsAlice(deliveryFor(sealed.frame, "alice"));
    expect(opened.header.kind).toBe("sentCopy");
    expect(opened.payload).toEqual({
      text: "hello bob",
      attachment: { name: "a.txt" },
      deviceId: ALICE_DEVICE,
      sequence: 1,
    });
  });

  it("are refused from anyone but me: another user cannot make my devices show a message as mine", async () => {
    // Signed by alice, with a slot for bob: on bob's devices it would read "you → carol".
    const error = await rejection(
      openAs(bob, await forge({ to: bob, kind: "sentCopy", target: "carol", digestOver: ["bob"] })),
    );
    expect(error.reason).toBe("a sent copy from alice, not from me (bob)");
  });

  it("are refused when they name me as the user the message went to", async () => {
    const error = await rejection(
      openAsAlice(await forge({ to: alice, kind: "sentCopy", target: "alice", digestOver: ["alice"] })),
    );
    expect(error.reason).toBe("a sent copy names me as the user the message went to");
  });

  it("are refused when the members digest is not mine alone", async () => {
    // The control: the same forgery with the right digest opens.
    const right = await forge({ to: alice, kind: "sentCopy", target: "bob", digestOver: ["alice"] });
    expect((await openAsAlice(right)).payload.text).toBe("forged");
    for (const digestOver of [["bob"], ["alice", "bob"]]) {
      const error = await rejection(
        openAsAlice(await forge({ to: alice, kind: "sentCopy", target: "bob", digestOver })),
      );
      expect(error.reason).toBe("the members digest of the sent copy does not name me as the only recipient");
    }
  });

  it("refuse to seal for anyone but exactly the sender, to oneself, or with an epoch", async () => {
    await expect(sealCopy({ recipients: [bob.recipient] })).rejects.toThrow(/exactly its sender/);
    await expect(sealCopy({ recipients: [alice.recipient, bob.recipient] })).rejects.toThrow(
      /exactly its sender/,
    );
    await expect(sealCopy({ target: "alice" })).rejects.toThrow(/needs no sent copy/);
    await expect(sealCopy({ target: "team!" })).rejects.toThrow(/not a username/);
    await expect(sealCopy({ epoch: 3 })).rejects.toThrow(/epoch 0/);
  });
});

describe("replay", () => {
  it("ReplayGuard accepts a message once; a re-delivered copy still verifies but is refused", async () => {
    const guard = new ReplayGuard();
    const delivery = deliveryFor((await seal()).frame, "bob");
    const first = await openAs(bob, delivery);
    expect(guard.accept(replayId(first.header))).toBe(true);
    const replayed = await openAs(bob, delivery);
    expect(guard.accept(replayId(replayed.header))).toBe(false);
    const next = await openAs(bob, deliveryFor((await seal()).frame, "bob"));
    expect(guard.accept(replayId(next.header))).toBe(true);
  });

  it("keys ids by sender, so one sender cannot burn another's message id", () => {
    const messageId = randomBytes(16);
    const guard = new ReplayGuard();
    expect(guard.accept(replayId({ sender: "mallory", messageId }))).toBe(true);
    expect(guard.accept(replayId({ sender: "alice", messageId }))).toBe(true);
    expect(replayId({ sender: "alice", messageId })).toBe(`alice/${toHex(messageId)}`);
  });

  it("stores ids in the injected set", () => {
    const stored: string[] = [];
    const guard = new ReplayGuard({ has: (id) => stored.includes(id), add: (id) => void stored.push(id) });
    expect(guard.accept("a/01")).toBe(true);
    expect(guard.accept("a/01")).toBe(false);
    expect(stored).toEqual(["a/01"]);
  });
});

describe("conversation keys across messages", () => {
  const wrapFor = (frame: Uint8Array, name: string) =>
    toHex(decodeUpload(frame).slots.find((slot) => slot.recipient === name)!.conversationKeyWrap);

  it("reuse one RSA wrap per recipient, with a fresh message-key box each message", async () => {
    const keyring = new SenderKeyring();
    const messages = [
      await sealToTeam({ keyring }),
      await sealToTeam({ keyring }),
      await sealToTeam({ keyring }),
    ];
    for (const name of TEAM()) {
      const wraps = new Set(messages.map((m) => wrapFor(m.frame, name)));
      expect(wraps.size, name).toBe(1);
      const boxes = new Set(
        messages.map((m) => toHex(decodeUpload(m.frame).slots.find((s) => s.recipient === name)!.msgKeyBox)),
      );
      expect(boxes.size, name).toBe(3);
    }
    expect(new Set(TEAM().map((name) => wrapFor(messages[0]!.frame, name))).size).toBe(3);
    expect(keyring.toJSON().recipients.map((r) => r.messages)).toEqual([3, 3, 3]);
    for (const message of messages) {
      expect((await openAs(carol, deliveryFor(message.frame, "carol"), asTeam)).payload.text).toBe(
        "hello team",
      );
    }
  });

  it("rotate when the recipient's fingerprint changes", async () => {
    const keyring = new SenderKeyring();
    const before = wrapFor((await seal({ keyring })).frame, "bob");
    const changed = { ...bob.recipient, fingerprint: "0000 ".repeat(15) + "0000" };
    const after = wrapFor((await seal({ keyring, recipients: [changed] })).frame, "bob");
    expect(after).not.toBe(before);
  });

  it("rotate after 7 days, and old and new messages both open", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const keyring = new SenderKeyring();
    const start = Date.UTC(2030, 0, 1);
    vi.setSystemTime(start);
    const early = await seal({ keyring });
    vi.setSystemTime(start + CONVERSATION_KEY_MAX_AGE_MS - 1);
    const stillSame = await seal({ keyring });
    vi.setSystemTime(start + CONVERSATION_KEY_MAX_AGE_MS);
    const late = await seal({ keyring });
    expect(late.header.sentAt).toBe(start + CONVERSATION_KEY_MAX_AGE_MS);
    expect(wrapFor(stillSame.frame, "bob")).toBe(wrapFor(early.frame, "bob"));
    expect(wrapFor(late.frame, "bob")).not.toBe(wrapFor(early.frame, "bob"));
    for (const message of [early, late]) {
      expect((await openAs(bob, deliveryFor(message.frame, "bob"))).payload.text).toBe("hello bob");
    }
  });
});
