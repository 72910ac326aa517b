// The plaintext inside a message's secretbox: text, an optional attachment descriptor, zero padding.
// Big-endian:  u8 version=1 ‖ u32 textLength ‖ text (UTF-8) ‖ u32 attachmentLength ‖ descriptor (UTF-8
// JSON, length 0 when none) ‖ zeros up to a multiple of PAYLOAD_PADDING, so the ciphertext length says
// little about the text's length.

import {
  ByteReader,
  FormatError,
  putBytes,
  putU32,
  putUtf8,
  utf8,
  utf8Length,
} from "../../protocol/bytes.js";
import { MAX_ATTACHMENT_BYTES, MAX_TEXT_BYTES, PAYLOAD_PADDING } from "../../protocol/limits.js";
import { PayloadTooLargeError } from "./errors.js";

export const PAYLOAD_VERSION = 1;

export interface Payload {
  text: string;
  /** Any JSON value describing an attachment; absent when the message has none. */
  attachment?: unknown;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Throws PayloadTooLargeError over MAX_TEXT_BYTES or MAX_ATTACHMENT_BYTES, before anything is sealed. */
export function encodePayload(payload: Payload): Uint8Array {
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
  const unpadded = 1 + 4 + textBytes + 4 + attachment.length;
  // Zero-filled on allocation: what follows the descriptor is already the padding.
  const bytes = new Uint8Array(Math.ceil(unpadded / PAYLOAD_PADDING) * PAYLOAD_PADDING);
  bytes[0] = PAYLOAD_VERSION;
  const textEnd = putUtf8(bytes, putU32(bytes, 1, textBytes), payload.text, textBytes);
  putBytes(bytes, putU32(bytes, textEnd, attachment.length), attachment);
  return bytes;
}

/**
 * Strict inverse of encodePayload: another version, oversize or overrunning lengths, bad UTF-8 or JSON,
 * non-zero padding, or a length that is not a multiple of PAYLOAD_PADDING throw FormatError. More zero
 * padding than needed is accepted: a sender may choose to hide the length further.
 */
export function decodePayload(bytes: Uint8Array): Payload {
  if (bytes.length === 0 || bytes.length % PAYLOAD_PADDING !== 0) {
    throw new FormatError(`payload length ${bytes.length} is not a positive multiple of ${PAYLOAD_PADDING}`);
  }
  const reader = new ByteReader(bytes);
  const version = reader.u8("payload version");
  if (version !== PAYLOAD_VERSION) throw new FormatError(`unsupported payload version ${version}`);
  const text = decodeUtf8(reader.bytes32("text", MAX_TEXT_BYTES), "text");
  const descriptor = reader.bytes32("attachment descriptor", MAX_ATTACHMENT_BYTES);
  const padding = reader.bytes(reader.remaining, "padding");
  if (padding.some((byte) => byte !== 0)) throw new FormatError("payload padding is not all zeros");
  if (descriptor.length === 0) return { text };
  try {
    return { text, attachment: JSON.parse(decodeUtf8(descriptor, "attachment descriptor")) as unknown };
  } catch (error) {
    if (error instanceof FormatError) throw error;
    throw new FormatError("attachment descriptor is not JSON");
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
