// What one client says to another inside a sealed message, which the server never sees: the payload
// (its binary layout is client/crypto/payload.ts, PROTOCOL §5.6) and the descriptor of an attached file
// (the file's format is client/crypto/file.ts, PROTOCOL §8). Every client validates them the same way.

import { z } from "zod";
import { BLOB_ID_PATTERN } from "./http.js";
import { FILE_CHUNK_BYTES, MAX_FILE_BYTES } from "./limits.js";

export const PAYLOAD_VERSION = 2;
/** Bytes of the random id a device picks at login (PROTOCOL §5.6). */
export const DEVICE_ID_BYTES = 16;

export interface Payload {
  text: string;
  /** Any JSON value describing an attachment; absent when the message has none. */
  attachment?: unknown;
}

/** Where a message stands among its sender's: which device sealed it, and its number in the conversation. */
export interface SenderSequence {
  /** DEVICE_ID_BYTES random bytes, made when the sending device logged in. */
  deviceId: Uint8Array;
  /** 1 for the device's first message in this conversation, one more for each after it. */
  sequence: number;
}

export type DecodedPayload = Payload & SenderSequence;

/**
 * The attachment descriptor inside the signed payload (client/crypto/file.ts documents each field). Extra keys
 * are ignored, so a later minor addition does not make older clients drop the whole message.
 */
export const FileDescriptor = z.object({
  v: z.literal(1),
  blob: z.string().regex(BLOB_ID_PATTERN),
  name: z.string().max(1024),
  size: z.int().min(0).max(MAX_FILE_BYTES),
  chunk: z.literal(FILE_CHUNK_BYTES),
  key: z.string(),
  noncePrefix: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type FileDescriptor = z.infer<typeof FileDescriptor>;
