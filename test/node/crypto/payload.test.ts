// The padded plaintext layout inside the message secretbox: sizes, limits, and a strict decoder.

import { describe, expect, it } from "vitest";
import { ByteWriter, FormatError } from "../../../protocol/bytes.js";
import { MAX_ATTACHMENT_BYTES, MAX_CIPHERTEXT_BYTES, MAX_TEXT_BYTES } from "../../../protocol/limits.js";
import { PayloadTooLargeError } from "../../../cli-client/crypto/errors.js";
import { decodePayload, encodePayload } from "../../../cli-client/crypto/payload.js";

/** A payload built by hand, so the decoder is tested on bytes the encoder would never make. */
function raw(version: number, text: Uint8Array, attachment: Uint8Array, size: number, pad = 0): Uint8Array {
  const writer = new ByteWriter(size).u8(version).bytes32(text).bytes32(attachment);
  return writer.bytes(new Uint8Array(Math.max(0, size - writer.offset)).fill(pad)).finish();
}
const utf8 = (text: string) => new TextEncoder().encode(text);

describe("encodePayload", () => {
  it("lays out version, lengths, text, descriptor and zero padding, big-endian", () => {
    const bytes = encodePayload({ text: "hi", attachment: { n: 1 } });
    expect(bytes.length).toBe(256);
    expect([...bytes.subarray(0, 7)]).toEqual([1, 0, 0, 0, 2, 0x68, 0x69]);
    expect([...bytes.subarray(7, 11)]).toEqual([0, 0, 0, 7]);
    expect(new TextDecoder().decode(bytes.subarray(11, 18))).toBe('{"n":1}');
    expect(bytes.subarray(18).every((b) => b === 0)).toBe(true);
  });

  it("pads to the next multiple of 256, never adding a whole block when already aligned", () => {
    // 1 + 4 + text + 4 framing bytes: 247 bytes of text fill one block exactly.
    expect(encodePayload({ text: "" }).length).toBe(256);
    expect(encodePayload({ text: "x".repeat(247) }).length).toBe(256);
    expect(encodePayload({ text: "x".repeat(248) }).length).toBe(512);
    expect(encodePayload({ text: "x".repeat(503) }).length).toBe(512);
    expect(encodePayload({ text: "x".repeat(504) }).length).toBe(768);
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
  it("round-trips text and descriptors, keeping 'no attachment' apart from null", () => {
    for (const payload of [
      { text: "" },
      { text: "héllo 👋\n" },
      { text: "with file", attachment: { name: "a.txt", size: 3, sha256: "00ff" } },
      { text: "null attachment", attachment: null },
      { text: "x".repeat(1000), attachment: [1, "two", { three: 3 }] },
    ]) {
      expect(decodePayload(encodePayload(payload))).toEqual(payload);
    }
    expect("attachment" in decodePayload(encodePayload({ text: "a" }))).toBe(false);
  });

  it("rejects non-zero padding anywhere", () => {
    const bytes = encodePayload({ text: "hi" });
    for (const at of [7 + 4, 100, 255]) {
      const dirty = bytes.slice();
      dirty[at] = 1;
      expect(() => decodePayload(dirty), `byte ${at}`).toThrow(/padding is not all zeros/);
    }
  });

  it("rejects other versions, bad lengths, and sizes that are not a multiple of 256", () => {
    const text = utf8("hi");
    const none = new Uint8Array(0);
    expect(() => decodePayload(raw(2, text, none, 256))).toThrow(/unsupported payload version 2/);
    expect(() => decodePayload(raw(0, text, none, 256))).toThrow(FormatError);
    expect(() => decodePayload(new Uint8Array(0))).toThrow(/multiple of 256/);
    expect(() => decodePayload(encodePayload({ text: "hi" }).subarray(0, 255))).toThrow(/multiple of 256/);

    const pastEnd = raw(1, text, none, 256);
    new DataView(pastEnd.buffer).setUint32(1, 300); // text length runs past the end
    expect(() => decodePayload(pastEnd)).toThrow(/truncated/);
    const attachmentPastEnd = raw(1, text, none, 256);
    new DataView(attachmentPastEnd.buffer).setUint32(1 + 4 + 2, 250);
    expect(() => decodePayload(attachmentPastEnd)).toThrow(/truncated/);
    const textTooLong = raw(1, text, none, 256);
    new DataView(textTooLong.buffer).setUint32(1, MAX_TEXT_BYTES + 1);
    expect(() => decodePayload(textTooLong)).toThrow(/longer than/);
  });

  it("rejects invalid UTF-8 and a descriptor that is not JSON", () => {
    expect(() => decodePayload(raw(1, new Uint8Array([0xc3]), new Uint8Array(0), 256))).toThrow(
      /text is not valid UTF-8/,
    );
    expect(() => decodePayload(raw(1, utf8("a"), utf8("{oops"), 256))).toThrow(/not JSON/);
    expect(() => decodePayload(raw(1, utf8("a"), new Uint8Array([0xff]), 256))).toThrow(/not valid UTF-8/);
  });

  it("keeps a leading byte-order mark as part of the text", () => {
    expect(decodePayload(encodePayload({ text: "\uFEFFhi" })).text).toBe("\uFEFFhi");
  });

  it("accepts more zero padding than needed (a sender may hide the length further)", () => {
    expect(decodePayload(raw(1, utf8("hi"), new Uint8Array(0), 512))).toEqual({ text: "hi" });
  });
});
