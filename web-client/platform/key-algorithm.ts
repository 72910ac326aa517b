// Which algorithm a DER key names, read from its AlgorithmIdentifier: WebCrypto only says "DataError" for
// any key it will not import, while the core must tell "a key of another algorithm" from "not a key".

import type { KeyAlgorithm } from "../../client/platform.js";

/** The OIDs (as DER content bytes, hex) of the asymmetric key algorithms a key file may name. */
const KEY_OIDS: Record<string, KeyAlgorithm | "other"> = {
  "2a864886f70d010101": "RSA-OAEP", // rsaEncryption
  "2b6570": "Ed25519", // id-Ed25519
  "2a864886f70d01010a": "other", // RSASSA-PSS
  "2a8648ce3d0201": "other", // id-ecPublicKey
  "2b656e": "other", // X25519
  "2b656f": "other", // X448
  "2b6571": "other", // Ed448
  "2a8648ce380401": "other", // DSA
  "2a864886f70d010301": "other", // dhKeyAgreement
};

/**
 * The algorithm an SPKI or PKCS#8 structure names: a known key algorithm, "other" for a known algorithm we
 * do not use, or null when the bytes are not such a structure (or name an algorithm nobody uses for keys).
 */
export function namedKeyAlgorithm(der: Uint8Array, format: "spki" | "pkcs8"): KeyAlgorithm | "other" | null {
  const reader = new DerReader(der);
  const outer = reader.element(0x30);
  if (!outer) return null;
  const inner = new DerReader(outer);
  // PKCS#8 starts with its version (an INTEGER); SPKI with the AlgorithmIdentifier itself.
  if (format === "pkcs8" && !inner.element(0x02)) return null;
  const identifier = inner.element(0x30);
  if (!identifier) return null;
  const oid = new DerReader(identifier).element(0x06);
  if (!oid) return null;
  return KEY_OIDS[hex(oid)] ?? null;
}

/** Just enough DER to walk a few nested elements: tag, definite length, contents. */
class DerReader {
  private offset = 0;

  constructor(private readonly bytes: Uint8Array) {}

  /** The contents of the next element if it has this tag; null otherwise or if it is truncated. */
  element(tag: number): Uint8Array | null {
    if (this.bytes[this.offset] !== tag) return null;
    let position = this.offset + 1;
    const first = this.bytes[position++];
    if (first === undefined) return null;
    let length = first;
    if (first & 0x80) {
      const count = first & 0x7f;
      if (count === 0 || count > 4) return null;
      length = 0;
      for (let i = 0; i < count; i++) {
        const byte = this.bytes[position++];
        if (byte === undefined) return null;
        length = length * 256 + byte;
      }
    }
    if (position + length > this.bytes.length) return null;
    this.offset = position + length;
    return this.bytes.subarray(position, position + length);
  }
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
