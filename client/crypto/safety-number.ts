// Safety numbers, after Signal's: 60 digits two users read to each other to check, out of band, that each
// holds the other's real keys. Derivation in docs/PROTOCOL.md §3.7; the test re-implements it from there.
//
// Each user contributes 30 digits computed from their own name and keys only, and the pair's number puts
// the smaller half first, so both sides get the same digits without agreeing on who is "first". The 5200
// rounds of SHA-512 are Signal's: they make finding keys whose half matches a given one ~2^12 times dearer.

import { ByteWriter, utf8 } from "../../protocol/bytes.js";
import type { PublicKeys } from "../../protocol/http.js";
import { cryptoBackend } from "./backend.js";
import { fromBase64 } from "./base64.js";

export const SAFETY_NUMBER_CONTEXT = utf8("telepound/v1/safety-number\0");
export const SAFETY_NUMBER_ITERATIONS = 5200;
/** Digits per group as shown; a half is 6 groups, the whole number 12. */
const GROUP_DIGITS = 5;
const GROUPS_PER_HALF = 6;

export interface SafetyNumberParty {
  username: string;
  publicKeys: PublicKeys;
}

/** One user's 30 digits: what they and everyone who pinned their keys compute alike. */
export function safetyNumberHalf({ username, publicKeys }: SafetyNumberParty): string {
  const material = new ByteWriter(1024)
    .str8(username)
    .bytes16(fromBase64(publicKeys.encryption, "encryption public key"))
    .bytes16(fromBase64(publicKeys.signing, "signing public key"))
    .finish();
  const backend = cryptoBackend();
  let digest = backend.hasher("sha512").update(SAFETY_NUMBER_CONTEXT).update(material).digest();
  for (let round = 1; round < SAFETY_NUMBER_ITERATIONS; round++) {
    digest = backend.hasher("sha512").update(digest).update(material).digest();
  }
  const view = new DataView(digest.buffer, digest.byteOffset, digest.byteLength);
  let digits = "";
  for (let group = 0; group < GROUPS_PER_HALF; group++) {
    // 40 bits fit a JavaScript number exactly (under 2^53).
    const at = group * GROUP_DIGITS;
    const value = view.getUint8(at) * 2 ** 32 + view.getUint32(at + 1);
    digits += String(value % 100_000).padStart(GROUP_DIGITS, "0");
  }
  return digits;
}

/** The pair's 60 digits, the same whichever side asks: 12 groups of 5, separated by spaces. */
export function safetyNumber(a: SafetyNumberParty, b: SafetyNumberParty): string {
  const halves = [safetyNumberHalf(a), safetyNumberHalf(b)].sort();
  return halves.join("").match(/\d{5}/g)!.join(" ");
}
