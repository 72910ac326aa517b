// The envelope codec (protocol/envelope.ts) on its own, with stand-in bytes instead of real crypto:
// round trips, and a FormatError for every truncation, trailing byte, misordered slot, version and kind.

import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ByteWriter, FormatError, concatBytes, toHex } from "../../../protocol/bytes.js";
import {
  BinaryFrame,
  ENVELOPE_VERSION,
  decodeDelivery,
  decodeUpload,
  deliveryAckRoute,
  encodeDelivery,
  encodeSignedPart,
  encodeSignedUpload,
  encodeSlot,
  encodeUpload,
  keyCommitment,
  membersDigest,
  signedPartWithSignature,
  signingInput,
  type EnvelopeHeader,
  type KeySlot,
  uploadHead,
} from "../../../protocol/envelope.js";
import { PROTOCOL_VERSION } from "../../../protocol/version.js";

const filled = (size: number, value: number) => new Uint8Array(size).fill(value);

function header(overrides: Partial<EnvelopeHeader> = {}): EnvelopeHeader {
  return {
    kind: "group",
    messageId: filled(16, 0x11),
    sentAt: 1_900_000_000_000,
    counter: 7,
    sender: "alice",
    target: "team",
    epoch: 3,
    membersDigest: filled(32, 0x22),
    keyCommitment: filled(32, 0x33),
    nonce: filled(24, 0x44),
    ciphertext: filled(272, 0x55),
    ...overrides,
  };
}

function slot(recipient: string, fill: number): KeySlot {
  return {
    recipient,
    conversationKeyWrap: filled(384, fill),
    msgKeyNonce: filled(24, fill + 1),
    msgKeyBox: filled(48, fill + 2),
  };
}

const signature = filled(64, 0x66);
const slots = [slot("carol", 0x70), slot("alice", 0x80), slot("bob", 0x90)];

function upload(h: EnvelopeHeader = header(), s: KeySlot[] = slots): Uint8Array {
  return encodeUpload(encodeSignedPart(h), signature, s);
}

/** An upload frame assembled by hand, for slot lists encodeUpload would have sorted. */
function rawUpload(slotList: KeySlot[]): Uint8Array {
  const writer = new ByteWriter()
    .u8(BinaryFrame.upload)
    .bytes(encodeSignedPart(header()))
    .bytes(signature)
    .u16(slotList.length);
  for (const s of slotList) writer.bytes(encodeSlot(s));
  return writer.finish();
}

function expectAllTruncationsRejected(frame: Uint8Array, decode: (frame: Uint8Array) => unknown): void {
  for (let length = 0; length < frame.length; length++) {
    let thrown: unknown = null;
    try {
      decode(frame.subarray(0, length));
    } catch (error) {
      thrown = error;
    }
    if (!(thrown instanceof FormatError)) throw new Error(`truncation to ${length} bytes: ${String(thrown)}`);
  }
}

describe("upload frames", () => {
  it("round-trip, with slots sorted by recipient and views of the exact bytes", () => {
    const h = header();
    const frame = upload(h);
    const decoded = decodeUpload(frame);
    expect(decoded.header).toEqual(h);
    expect(decoded.messageIdHex).toBe("11".repeat(16));
    expect(decoded.signedPart).toEqual(encodeSignedPart(h));
    expect(decoded.signature).toEqual(signature);
    expect(decoded.slots.map((s) => s.recipient)).toEqual(["alice", "bob", "carol"]);
    expect(decoded.slots[0]).toEqual(slots[1]);
    decoded.slots.forEach((s, i) => expect(decoded.slotBytes[i]).toEqual(encodeSlot(s)));
    expect(frame[0]).toBe(BinaryFrame.upload);
  });

  it("lay out the signed part field by field, big-endian", () => {
    const signed = encodeSignedPart(header({ kind: "direct", target: "bob", epoch: 0 }));
    expect(toHex(signed.subarray(0, 2))).toBe("0201"); // version 2, kind direct
    expect(toHex(signed.subarray(18, 26))).toBe((1_900_000_000_000).toString(16).padStart(16, "0"));
    expect(toHex(signed.subarray(26, 34))).toBe("0000000000000007");
    expect(toHex(signed.subarray(34, 40))).toBe("05" + toHex(new TextEncoder().encode("alice")));
    expect(signingInput(signed)).toEqual(
      concatBytes(new TextEncoder().encode("telepound/v1/message\0"), signed),
    );
  });

  it("reject every truncation", () => {
    expectAllTruncationsRejected(upload(), decodeUpload);
  });

  it("reject trailing bytes", () => {
    expect(() => decodeUpload(concatBytes(upload(), Uint8Array.of(0)))).toThrow(/unexpected bytes/);
  });

  it("reject unsorted and repeated slots", () => {
    const [a, b] = [slot("alice", 1), slot("bob", 2)];
    expect(decodeUpload(rawUpload([a, b])).slots).toHaveLength(2); // the control
    expect(() => decodeUpload(rawUpload([b, a]))).toThrow(/sorted by recipient with no repeats/);
    expect(() => decodeUpload(rawUpload([a, a]))).toThrow(/sorted by recipient with no repeats/);
  });

  it("reject zero slots", () => {
    expect(() => decodeUpload(rawUpload([]))).toThrow(/slot count/);
  });

  it("reject a bad version, kind or frame tag", () => {
    const frame = upload();
    const at = (offset: number, value: number) => {
      const copy = frame.slice();
      copy[offset] = value;
      return copy;
    };
    // Protocol 3 changed groups, not envelopes: they stay version 2.
    expect(PROTOCOL_VERSION).toBe(3);
    expect(ENVELOPE_VERSION).toBe(2);
    expect(frame[1]).toBe(2);
    // Protocol 1's envelopes are laid out alike but are not this protocol's: refused by version.
    expect(() => decodeUpload(at(1, 1))).toThrow(/unsupported envelope version 1: version 2 is read here/);
    expect(() => decodeUpload(at(1, 3))).toThrow(/unsupported envelope version 3/);
    expect(() => decodeUpload(at(1, 0))).toThrow(/unsupported envelope version 0/);
    expect(() => decodeUpload(at(2, 0))).toThrow(/unknown message kind 0/);
    expect(() => decodeUpload(at(2, 4))).toThrow(/unknown message kind 4/);
    expect(() => decodeUpload(at(0, BinaryFrame.delivery))).toThrow(/expected binary frame/);
    expect(() => decodeDelivery(frame)).toThrow(/expected binary frame/);
  });

  it("read kind 3 as a sent copy: a username as target, epoch 0", () => {
    const copy = upload(header({ kind: "sentCopy", target: "bob", epoch: 0 }));
    expect(copy[2]).toBe(3);
    expect(decodeUpload(copy).header).toMatchObject({ kind: "sentCopy", target: "bob", epoch: 0 });
    expect(() => decodeUpload(upload(header({ kind: "sentCopy", target: "bob", epoch: 1 })))).toThrow(
      /sent copies carry epoch 0/,
    );
    expect(() => decodeUpload(upload(header({ kind: "sentCopy", target: "x", epoch: 0 })))).toThrow(
      /target is not a valid username/,
    );
  });

  it("reject invalid names, a non-zero epoch on direct messages, and a ciphertext shorter than its MAC", () => {
    expect(() => decodeUpload(upload(header({ sender: "Alice" })))).toThrow(/sender/);
    expect(() => decodeUpload(upload(header({ target: "x" })))).toThrow(/target/);
    expect(() => decodeUpload(upload(header({ kind: "direct", target: "bob", epoch: 1 })))).toThrow(
      /epoch 0/,
    );
    expect(() => decodeUpload(upload(header({ ciphertext: filled(15, 1) })))).toThrow(/MAC/);
    expect(() => decodeUpload(upload(header(), [slot("Bob!", 1)]))).toThrow(/slot recipient/);
    expect(() =>
      decodeUpload(upload(header(), [{ ...slot("bob", 1), conversationKeyWrap: filled(513, 1) }])),
    ).toThrow(/conversation key wrap/);
  });

  it("come out the same from the sender's one-pass encoder, which signs the signed part in place", async () => {
    for (const h of [header(), header({ sender: "zoë", target: "équipe", ciphertext: filled(70_000, 1) })]) {
      let signed: Uint8Array | null = null;
      const frame = await encodeSignedUpload(h, slots, (signedPart) => {
        signed = signedPart.slice();
        return signature;
      });
      expect(frame).toEqual(upload(h));
      expect(signed).toEqual(encodeSignedPart(h));
    }
    await expect(encodeSignedUpload(header(), slots, () => filled(63, 0))).rejects.toThrow(FormatError);
  });

  it("write names as UTF-8 whatever their characters, and 64-bit fields above 2^32", () => {
    const names = ["zoë", "名前", "a\u{1F600}b", "lone\uD800", "x".repeat(100)];
    for (const sender of names) {
      const h = header({ sender, sentAt: 2 ** 52 + 3, counter: 2 ** 32 });
      const signed = encodeSignedPart(h);
      const bytes = new TextEncoder().encode(sender);
      expect(signed[34]).toBe(bytes.length);
      expect(signed.subarray(35, 35 + bytes.length)).toEqual(bytes);
      expect(toHex(signed.subarray(18, 34))).toBe("0010000000000003" + "0000000100000000");
    }
  });

  it("refuse to encode fixed-width fields of the wrong size", () => {
    expect(() => encodeSignedPart(header({ nonce: filled(23, 0) }))).toThrow(FormatError);
    expect(() => encodeSignedPart(header({ messageId: filled(17, 0) }))).toThrow(FormatError);
    expect(() => encodeUpload(encodeSignedPart(header()), filled(63, 0), slots)).toThrow(FormatError);
  });
});

describe("uploadHead", () => {
  it("reads an upload's id and version whatever follows them, so a refusal can name the upload", () => {
    const frame = upload();
    const id = toHex(filled(16, 0x11));
    expect(uploadHead(frame)).toEqual({ id, version: 2 });
    // Truncated just after the id, of another version, or broken further on: the id is still there.
    expect(uploadHead(frame.subarray(0, 19))).toEqual({ id, version: 2 });
    const old = frame.slice();
    old[1] = 1;
    expect(uploadHead(old)).toEqual({ id, version: 1 });
    const [a, b] = [slot("alice", 1), slot("bob", 2)];
    expect(() => decodeUpload(rawUpload([b, a]))).toThrow(FormatError);
    expect(uploadHead(rawUpload([b, a]))?.id).toBe(id);
  });

  it("is null for a frame that ends before its id, and for anything but an upload", () => {
    expect(uploadHead(upload().subarray(0, 18))).toBeNull();
    expect(uploadHead(new Uint8Array(0))).toBeNull();
    const decoded = decodeUpload(upload());
    expect(uploadHead(encodeDelivery(signedPartWithSignature(decoded), decoded.slotBytes[0]!))).toBeNull();
  });
});

describe("delivery frames", () => {
  const decoded = decodeUpload(upload());
  const deliveries = decoded.slotBytes.map((bytes) =>
    encodeDelivery(signedPartWithSignature(decoded), bytes),
  );

  it("carry the signed part and signature unchanged, and exactly one slot", () => {
    deliveries.forEach((frame, i) => {
      expect(frame[0]).toBe(BinaryFrame.delivery);
      const delivery = decodeDelivery(frame);
      expect(delivery.header).toEqual(decoded.header);
      expect(delivery.signedPart).toEqual(decoded.signedPart);
      expect(delivery.signature).toEqual(signature);
      expect(delivery.slots).toEqual([decoded.slots[i]]);
      expect(delivery.slotBytes[0]).toEqual(decoded.slotBytes[i]);
    });
  });

  it("reject every truncation and trailing bytes", () => {
    expectAllTruncationsRejected(deliveries[0]!, decodeDelivery);
    expect(() => decodeDelivery(concatBytes(deliveries[0]!, Uint8Array.of(0)))).toThrow(/unexpected bytes/);
    expect(() => decodeDelivery(concatBytes(deliveries[0]!, decoded.slotBytes[1]!))).toThrow(
      /unexpected bytes/,
    );
  });

  it("reject a bad version or kind", () => {
    for (const [offset, value, message] of [
      [1, 9, /unsupported envelope version 9/],
      [2, 9, /unknown message kind 9/],
    ] as const) {
      const copy = deliveries[0]!.slice();
      copy[offset] = value;
      expect(() => decodeDelivery(copy)).toThrow(message);
    }
  });

  it("name where their ack goes from the header alone: the group for a group message, else the home", () => {
    expect(deliveryAckRoute(deliveries[0]!)).toEqual({ id: toHex(filled(16, 0x11)), group: "team" });
    const direct = decodeUpload(
      encodeUpload(encodeSignedPart(header({ kind: "direct", target: "bob", epoch: 0 })), signature, [
        slot("bob", 1),
      ]),
    );
    const directDelivery = encodeDelivery(signedPartWithSignature(direct), direct.slotBytes[0]!);
    expect(deliveryAckRoute(directDelivery)).toEqual({ id: toHex(filled(16, 0x11)), group: null });
    // Names of other lengths move the target; the decoder agrees on it.
    const long = decodeUpload(
      encodeUpload(encodeSignedPart(header({ sender: "a".repeat(32), target: "x_y-9" })), signature, slots),
    );
    const longDelivery = encodeDelivery(signedPartWithSignature(long), long.slotBytes[0]!);
    expect(deliveryAckRoute(longDelivery)?.group).toBe(decodeDelivery(longDelivery).header.target);
    expect(deliveryAckRoute(deliveries[0]!.subarray(0, 30))).toBeNull();
    expect(deliveryAckRoute(deliveries[0]!.subarray(0, 40))).toBeNull();
    expect(deliveryAckRoute(upload())).toBeNull();
  });
});

describe("membersDigest and keyCommitment", () => {
  it("membersDigest ignores order and repeats, and changes with membership", async () => {
    const hex = async (names: string[]) => toHex(await membersDigest(names));
    expect(await hex(["bob", "alice"])).toBe(await hex(["alice", "bob", "alice"]));
    expect(await hex(["alice", "bob"])).not.toBe(await hex(["alice", "bob", "carol"]));
    expect(await hex(["alice"])).not.toBe(await hex(["alicf"]));
    // Length-prefixed names: splitting one name into two cannot collide.
    expect(await hex(["abc", "def"])).not.toBe(await hex(["abcdef"]));
  });

  it("keyCommitment is SHA-256 over its context and the key", async () => {
    const key = filled(32, 9);
    const expected = new Uint8Array(
      createHash("sha256").update("telepound/v1/key-commitment\0").update(key).digest(),
    );
    expect(await keyCommitment(key)).toEqual(expected);
    expect(toHex(await keyCommitment(filled(32, 8)))).not.toBe(toHex(expected));
  });
});
