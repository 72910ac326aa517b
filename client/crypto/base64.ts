// Strict standard base64 for keys and sealed blobs coming from the server or from disk.
// Buffer.from(s, "base64") skips bad characters silently; here anything but canonical base64 is an error.

import { CryptoError } from "./errors.js";

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("base64");
}

/** Decodes canonical base64 only, so one value has one encoding (fingerprints hash the decoded bytes). */
export function fromBase64(text: string, what: string): Uint8Array {
  if (!BASE64.test(text)) throw new CryptoError(`${what} is not base64`);
  const bytes = new Uint8Array(Buffer.from(text, "base64"));
  // Rejects non-zero bits in the padding ("QR==" and "QQ==" would otherwise both decode to "A").
  if (toBase64(bytes) !== text) throw new CryptoError(`${what} is not canonical base64`);
  return bytes;
}
