// The plaintext inside a message's secretbox: who sent it in which order, the text, an optional attachment
// descriptor, zero padding. Big-endian:  u8 version=2 ‖ deviceId (16) ‖ u64 sequence ‖ u32 textLength ‖
// text (UTF-8) ‖ u32 attachmentLength ‖ descriptor (UTF-8 JSON, length 0 when none) ‖ zeros up to a
// multiple of PAYLOAD_PADDING, so the ciphertext length says little about the text's length. The device
// and sequence are inside the ciphertext: the server learns nothing new, and they are signed with it.
// The payload's types and the attachment descriptor are protocol/payload.ts; this is the codec.

import {
  ByteReader,
  FormatError,
  putBytes,
  putU32,
  putU64,
  putUtf8,
  toHex,
  utf8,
  utf8Length,
} from "../../protocol/bytes.js";
import { MAX_ATTACHMENT_BYTES, MAX_TEXT_BYTES, PAYLOAD_PADDING } from "../../protocol/limits.js";
import {
  DEVICE_ID_BYTES,
  type DecodedPayload,
  PAYLOAD_VERSION,
  type Payload,
  type SenderSequence,
} from "../../protocol/payload.js";
import { PayloadTooLargeError } from "./errors.js";
import { randomBytes } from "./primitives.js";

/** version, deviceId, sequence, the two lengths. */
const FIXED_BYTES = 1 + DEVICE_ID_BYTES + 8 + 4 + 4;

/** A new device id, as state.json keeps it: DEVICE_ID_BYTES random bytes in lower-case hex. */
export function newDeviceId(): string {
  return toHex(randomBytes(DEVICE_ID_BYTES));
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Throws PayloadTooLargeError over MAX_TEXT_BYTES or MAX_ATTACHMENT_BYTES, before anything is sealed. */
export function encodePayload(payload: Payload, position: SenderSequence): Uint8Array {
  checkPosition(position, (reason) => new TypeError(reason));
  const textBytes = utf8Length(payload.text);
  if (textBytes > MAX_TEXT_BYTES) {
    throw new PayloadTooLargeError(`message text is ${textBytes} bytes; the limit is ${MAX_TEXT_BYTES}`);
  }
  const attachment =
    payload.attachment === undefined ? new Uint8Array(0) : encodeDescriptor(payload.attachment);
  if (attachment.length > MAX_ATTACHMENT_BYTES) {
    throw new PayloadTooLargeError(
      `attachment descriptor is ${attachment.length} bytes; the limit is ${MAX_ATTACHMENT_BYTES}`,
    );
  }
  const unpadded = FIXED_BYTES + textBytes + attachment.length;
  // Zero-filled on allocation: what follows the descriptor is already the padding.
  const bytes = new Uint8Array(Math.ceil(unpadded / PAYLOAD_PADDING) * PAYLOAD_PADDING);
  bytes[0] = PAYLOAD_VERSION;
  let at = putBytes(bytes, 1, position.deviceId);
  at = putU64(bytes, at, position.sequence);
  const textEnd = putUtf8(bytes, putU32(bytes, at, textBytes), payload.text, textBytes);
  putBytes(bytes, putU32(bytes, textEnd, attachment.length), attachment);
  return bytes;
}

/**
 * Strict inverse of encodePayload: another version, a sequence of 0, oversize or overrunning lengths, bad
 * UTF-8 or JSON, non-zero padding, or a length that is not a multiple of PAYLOAD_PADDING throw
 * FormatError. More zero padding than needed is accepted: a sender may choose to hide the length further.
 */
export function decodePayload(bytes: Uint8Array): DecodedPayload {
  if (bytes.length === 0 || bytes.length % PAYLOAD_PADDING !== 0) {
    throw new FormatError(`payload length ${bytes.length} is not a positive multiple of ${PAYLOAD_PADDING}`);
  }
  const reader = new ByteReader(bytes);
  const version = reader.u8("payload version");
  if (version === 1) {
    throw new FormatError(
      "payload version 1 (a protocol 1 client, without device sequences) is no longer accepted",
    );
  }
  if (version !== PAYLOAD_VERSION) throw new FormatError(`unsupported payload version ${version}`);
  const deviceId = reader.bytes(DEVICE_ID_BYTES, "device id").slice();
  const sequence = reader.u64("sequence");
  checkPosition({ deviceId, sequence }, (reason) => new FormatError(reason));
  const text = decodeUtf8(reader.bytes32("text", MAX_TEXT_BYTES), "text");
  const descriptor = reader.bytes32("attachment descriptor", MAX_ATTACHMENT_BYTES);
  const padding = reader.bytes(reader.remaining, "padding");
  if (padding.some((byte) => byte !== 0)) throw new FormatError("payload padding is not all zeros");
  if (descriptor.length === 0) return { text, deviceId, sequence };
  try {
    const attachment = JSON.parse(decodeUtf8(descriptor, "attachment descriptor")) as unknown;
    return { text, attachment, deviceId, sequence };
  } catch (error) {
    if (error instanceof FormatError) throw error;
    throw new FormatError("attachment descriptor is not JSON");
  }
}

function checkPosition(position: SenderSequence, error: (reason: string) => Error): void {
  if (position.deviceId.length !== DEVICE_ID_BYTES) {
    throw error(`a device id is ${DEVICE_ID_BYTES} bytes, not ${position.deviceId.length}`);
  }
  if (!Number.isSafeInteger(position.sequence) || position.sequence < 1) {
    throw error(`sequence ${position.sequence} is not a positive integer below 2^53`);
  }
}

function encodeDescriptor(attachment: unknown): Uint8Array {
  // JSON.stringify returns undefined for functions and symbols; refuse rather than send a silent nothing.
  const json = JSON.stringify(attachment) as string | undefined;
  if (json === undefined) throw new TypeError("attachment descriptor must be a JSON value");
  return utf8(json);
}

function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new FormatError(`${what} is not valid UTF-8`);
  }
}
