// The padded plaintext layout inside the message secretbox: device and sequence, sizes, limits, and a
// strict decoder.

import { describe, expect, it } from "vitest";
import { ByteWriter, FormatError } from "../../../protocol/bytes.js";
import { MAX_ATTACHMENT_BYTES, MAX_CIPHERTEXT_BYTES, MAX_TEXT_BYTES } from "../../../protocol/limits.js";
import { PayloadTooLargeError } from "../../../client/crypto/errors.js";
import { decodePayload, encodePayload as encodeWithPosition } from "../../../client/crypto/payload.js";
import type { Payload } from "../../../protocol/payload.js";

const DEVICE = new Uint8Array(16).map((_, i) => 0xa0 + i);
/** Header bytes before the text: version, device id, sequence, text length. */
const TEXT_AT = 1 + 16 + 8 + 4;

/** Most tests are about the text and descriptor: sealed by DEVICE, sequence 7. */
function encodePayload(payload: Payload): Uint8Array {
  return encodeWithPosition(payload, { deviceId: DEVICE, sequence: 7 });
}

/** A payload built by hand, so the decoder is tested on bytes the encoder would never make. */
function raw(
  version: number,
  text: Uint8Array,
  attachment: Uint8Array,
  size: number,
  pad = 0,
  sequence = 7,
): Uint8Array {
  const writer = new ByteWriter(size)
    .u8(version)
    .bytes(DEVICE)
    .u64(sequence)
    .bytes32(text)
    .bytes32(attachment);
  return writer.bytes(new Uint8Array(Math.max(0, size - writer.offset)).fill(pad)).finish();
}
const utf8 = (text: string) => new TextEncoder().encode(text);
const position = { deviceId: DEVICE, sequence: 7 };

describe("encodePayload", () => {
  it("lays out version, device, sequence, lengths, text, descriptor and zero padding, big-endian", () => {
    const bytes = encodeWithPosition(
      { text: "hi", attachment: { n: 1 } },
      { deviceId: DEVICE, sequence: 2 ** 40 + 5 },
    );
    expect(bytes.length).toBe(256);
    expect(bytes[0]).toBe(2);
    expect([...bytes.subarray(1, 17)]).toEqual([...DEVICE]);
    expect([...bytes.subarray(17, 25)]).toEqual([0, 0, 1, 0, 0, 0, 0, 5]);
    expect([...bytes.subarray(25, 31)]).toEqual([0, 0, 0, 2, 0x68, 0x69]);
    expect([...bytes.subarray(31, 35)]).toEqual([0, 0, 0, 7]);
    expect(new TextDecoder().decode(bytes.subarray(35, 42))).toBe('{"n":1}');
    expect(bytes.subarray(42).every((b) => b === 0)).toBe(true);
  });

  it("refuses a device id that is not 16 bytes and a sequence that is not a positive safe integer", () => {
    for (const sequence of [0, -1, 1.5, 2 ** 53]) {
      expect(() => encodeWithPosition({ text: "" }, { deviceId: DEVICE, sequence }), `${sequence}`).toThrow(
        TypeError,
      );
    }
    expect(() => encodeWithPosition({ text: "" }, { deviceId: DEVICE.subarray(1), sequence: 1 })).toThrow(
      /16 bytes/,
    );
  });

  it("pads to the next multiple of 256, never adding a whole block when already aligned", () => {
    // 1 + 16 + 8 + 4 + text + 4 framing bytes: 223 bytes of text fill one block exactly.
    expect(encodePayload({ text: "" }).length).toBe(256);
    expect(encodePayload({ text: "x".repeat(223) }).length).toBe(256);
    expect(encodePayload({ text: "x".repeat(224) }).length).toBe(512);
    expect(encodePayload({ text: "x".repeat(479) }).length).toBe(512);
    expect(encodePayload({ text: "x".repeat(480) }).length).toBe(768);
  });

  it("enforces MAX_TEXT_BYTES in UTF-8 bytes, not characters", () => {
    expect(() => encodePayload({ text: "x".repeat(MAX_TEXT_BYTES) })).not.toThrow();
    expect(() => encodePayload({ text: "x".repeat(MAX_TEXT_BYTES + 1) })).toThrow(PayloadTooLargeError);
    // "é" is 2 bytes: half as many characters already reach the limit.
    expect(() => encodePayload({ text: "é".repeat(MAX_TEXT_BYTES / 2) })).not.toThrow();
    expect(() => encodePayload({ text: "é".repeat(MAX_TEXT_BYTES / 2) + "x" })).toThrow(/65537 bytes/);
  });

  it("enforces MAX_ATTACHMENT_BYTES on the JSON descriptor", () => {
    const fits = "a".repeat(MAX_ATTACHMENT_BYTES - 2); // JSON adds two quotes
    expect(() => encodePayload({ text: "", attachment: fits })).not.toThrow();
    expect(() => encodePayload({ text: "", attachment: fits + "a" })).toThrow(PayloadTooLargeError);
    expect(() => encodePayload({ text: "", attachment: () => 1 })).toThrow(TypeError);
  });

  it("fits the largest payload, once sealed, within MAX_CIPHERTEXT_BYTES", () => {
    const largest = encodePayload({
      text: "x".repeat(MAX_TEXT_BYTES),
      attachment: "a".repeat(MAX_ATTACHMENT_BYTES - 2),
    });
    expect(largest.length + 16).toBeLessThanOrEqual(MAX_CIPHERTEXT_BYTES);
  });
});

describe("decodePayload", () => {
  it("round-trips device, sequence, text and descriptors, keeping 'no attachment' apart from null", () => {
    for (const payload of [
      { text: "" },
      { text: "héllo 👋\n" },
      { text: "with file", attachment: { name: "a.txt", size: 3, sha256: "00ff" } },
      { text: "null attachment", attachment: null },
      { text: "x".repeat(1000), attachment: [1, "two", { three: 3 }] },
    ]) {
      expect(decodePayload(encodePayload(payload))).toEqual({ ...payload, ...position });
    }
    const largest = { deviceId: DEVICE, sequence: Number.MAX_SAFE_INTEGER };
    expect(decodePayload(encodeWithPosition({ text: "x" }, largest))).toEqual({ text: "x", ...largest });
    expect("attachment" in decodePayload(encodePayload({ text: "a" }))).toBe(false);
  });

  it("rejects non-zero padding anywhere", () => {
    const bytes = encodePayload({ text: "hi" });
    for (const at of [TEXT_AT + 2 + 4, 100, 255]) {
      const dirty = bytes.slice();
      dirty[at] = 1;
      expect(() => decodePayload(dirty), `byte ${at}`).toThrow(/padding is not all zeros/);
    }
  });

  it("rejects version 1 clearly, other versions, bad lengths, and sizes that are not a multiple of 256", () => {
    const text = utf8("hi");
    const none = new Uint8Array(0);
    expect(() => decodePayload(raw(1, text, none, 256))).toThrow(/payload version 1 .* no longer accepted/);
    expect(() => decodePayload(raw(3, text, none, 256))).toThrow(/unsupported payload version 3/);
    expect(() => decodePayload(raw(0, text, none, 256))).toThrow(FormatError);
    expect(() => decodePayload(new Uint8Array(0))).toThrow(/multiple of 256/);
    expect(() => decodePayload(encodePayload({ text: "hi" }).subarray(0, 255))).toThrow(/multiple of 256/);

    const pastEnd = raw(2, text, none, 256);
    new DataView(pastEnd.buffer).setUint32(TEXT_AT - 4, 300); // text length runs past the end
    expect(() => decodePayload(pastEnd)).toThrow(/truncated/);
    const attachmentPastEnd = raw(2, text, none, 256);
    new DataView(attachmentPastEnd.buffer).setUint32(TEXT_AT + 2, 250);
    expect(() => decodePayload(attachmentPastEnd)).toThrow(/truncated/);
    const textTooLong = raw(2, text, none, 256);
    new DataView(textTooLong.buffer).setUint32(TEXT_AT - 4, MAX_TEXT_BYTES + 1);
    expect(() => decodePayload(textTooLong)).toThrow(/longer than/);
  });

  it("rejects sequence 0 and sequences above 2^53 - 1", () => {
    const none = new Uint8Array(0);
    expect(() => decodePayload(raw(2, utf8("a"), none, 256, 0, 0))).toThrow(/sequence 0/);
    const huge = raw(2, utf8("a"), none, 256);
    new DataView(huge.buffer).setBigUint64(17, 2n ** 53n);
    expect(() => decodePayload(huge)).toThrow(/sequence too large/);
  });

  it("rejects invalid UTF-8 and a descriptor that is not JSON", () => {
    expect(() => decodePayload(raw(2, new Uint8Array([0xc3]), new Uint8Array(0), 256))).toThrow(
      /text is not valid UTF-8/,
    );
    expect(() => decodePayload(raw(2, utf8("a"), utf8("{oops"), 256))).toThrow(/not JSON/);
    expect(() => decodePayload(raw(2, utf8("a"), new Uint8Array([0xff]), 256))).toThrow(/not valid UTF-8/);
  });

  it("keeps a leading byte-order mark as part of the text", () => {
    expect(decodePayload(encodePayload({ text: "\uFEFFhi" })).text).toBe("\uFEFFhi");
  });

  it("accepts more zero padding than needed (a sender may hide the length further)", () => {
    expect(decodePayload(raw(2, utf8("hi"), new Uint8Array(0), 512))).toEqual({ text: "hi", ...position });
  });
});
