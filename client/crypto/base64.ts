// Strict standard base64 for keys and sealed blobs coming from the server or from disk: anything but
// canonical base64 is an error (a lenient decoder would skip bad characters silently).

import { CryptoError } from "./errors.js";

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const VALUE = new Uint8Array(128);
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i;

export function toBase64(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += `${ALPHABET[n >> 18]!}${ALPHABET[(n >> 12) & 63]!}==`;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += `${ALPHABET[n >> 18]!}${ALPHABET[(n >> 12) & 63]!}${ALPHABET[(n >> 6) & 63]!}=`;
  }
  return out;
}

/** Decodes canonical base64 only, so one value has one encoding (fingerprints hash the decoded bytes). */
export function fromBase64(text: string, what: string): Uint8Array {
  if (!BASE64.test(text)) throw new CryptoError(`${what} is not base64`);
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const bytes = new Uint8Array((text.length / 4) * 3 - padding);
  let at = 0;
  for (let i = 0; i < text.length; i += 4) {
    const n =
      (VALUE[text.charCodeAt(i)]! << 18) |
      (VALUE[text.charCodeAt(i + 1)]! << 12) |
      (VALUE[text.charCodeAt(i + 2)]! << 6) |
      VALUE[text.charCodeAt(i + 3)]!;
    bytes[at++] = n >> 16;
    if (at < bytes.length) bytes[at++] = (n >> 8) & 255;
    if (at < bytes.length) bytes[at++] = n & 255;
  }
  // Rejects non-zero bits in the padding ("QR==" and "QQ==" would otherwise both decode to "A").
  if (toBase64(bytes) !== text) throw new CryptoError(`${what} is not canonical base64`);
  return bytes;
}
