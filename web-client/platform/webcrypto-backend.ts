// The core's cryptography in a browser (client/platform.ts CryptoBackend): WebCrypto for RSA-OAEP, Ed25519,
// HKDF and randomness; @noble/hashes for hashing, which the core needs synchronous and incremental while
// WebCrypto's digest is neither; scrypt from @noble/hashes in a Web Worker (scrypt-in-worker.ts), as it
// runs for a second or more.
//
// Private keys are imported non-extractable: script on the page can use them but never read them out.
// WebCrypto cannot give the public half of such a key, so it is derived once at import (through a
// short-lived extractable copy) and kept beside the private key. Generated keys stay extractable, as the
// core exports them once, to seal them for the server.

import { sha256, sha512 } from "@noble/hashes/sha2.js";
import {
  type CryptoBackend,
  type Hasher,
  KeyImportError,
  type KeyAlgorithm,
  type PlatformKey,
  type PlatformKeyPair,
} from "../../client/platform.js";
import { namedKeyAlgorithm } from "./key-algorithm.js";
import type { ScryptRunner } from "./scrypt-in-worker.js";

const RSA_OAEP: RsaHashedImportParams = { name: "RSA-OAEP", hash: "SHA-256" };
const ED25519: Algorithm = { name: "Ed25519" };
const IMPORT_PARAMS: Record<KeyAlgorithm, RsaHashedImportParams | Algorithm> = {
  "RSA-OAEP": RSA_OAEP,
  Ed25519: ED25519,
};
const PUBLIC_USAGES: Record<KeyAlgorithm, KeyUsage[]> = { "RSA-OAEP": ["encrypt"], Ed25519: ["verify"] };
const PRIVATE_USAGES: Record<KeyAlgorithm, KeyUsage[]> = { "RSA-OAEP": ["decrypt"], Ed25519: ["sign"] };
/** getRandomValues refuses more than this at once. */
const RANDOM_CHUNK_BYTES = 65_536;

export interface WebCryptoOptions {
  /** How scrypt runs: scryptInWorker(url) on a page; anything with the same answer elsewhere. */
  scrypt: ScryptRunner;
  /** WebCrypto; the global one unless given. */
  subtle?: SubtleCrypto;
}

export function webCryptoBackend(options: WebCryptoOptions): CryptoBackend {
  const subtle = options.subtle ?? globalThis.crypto.subtle;
  /** The public half of every private key this backend made or imported. */
  const publicHalves = new WeakMap<CryptoKey, CryptoKey>();

  const importChecked = async (
    der: Uint8Array,
    algorithm: KeyAlgorithm,
    format: "spki" | "pkcs8",
    extractable: boolean,
  ): Promise<CryptoKey> => {
    const named = namedKeyAlgorithm(der, format);
    if (named !== null && named !== algorithm) throw new KeyImportError("wrong-algorithm");
    const usages = format === "spki" ? PUBLIC_USAGES[algorithm] : PRIVATE_USAGES[algorithm];
    try {
      return await subtle.importKey(format, bytes(der), IMPORT_PARAMS[algorithm], extractable, usages);
    } catch {
      throw new KeyImportError("malformed");
    }
  };

  return {
    async generateRsaKeyPair(modulusBits, publicExponent) {
      const pair = await subtle.generateKey(
        { ...RSA_OAEP, modulusLength: modulusBits, publicExponent: exponentBytes(publicExponent) },
        true,
        ["encrypt", "decrypt"],
      );
      publicHalves.set(pair.privateKey, pair.publicKey);
      return pair satisfies PlatformKeyPair;
    },

    async generateEd25519KeyPair() {
      const pair = (await subtle.generateKey(ED25519, true, ["sign", "verify"])) as CryptoKeyPair;
      publicHalves.set(pair.privateKey, pair.publicKey);
      return pair satisfies PlatformKeyPair;
    },

    importPublicKey: (der, algorithm) => importChecked(der, algorithm, "spki", true),

    async importPrivateKey(der, algorithm) {
      const readable = await importChecked(der, algorithm, "pkcs8", true);
      const jwk = await subtle.exportKey("jwk", readable);
      const publicJwk: JsonWebKey =
        algorithm === "RSA-OAEP"
          ? { kty: "RSA", n: jwk.n, e: jwk.e, alg: jwk.alg, ext: true }
          : { kty: "OKP", crv: "Ed25519", x: jwk.x, ext: true };
      const publicKey = await subtle.importKey(
        "jwk",
        publicJwk,
        IMPORT_PARAMS[algorithm],
        true,
        PUBLIC_USAGES[algorithm],
      );
      const privateKey = await subtle.importKey(
        "pkcs8",
        bytes(der),
        IMPORT_PARAMS[algorithm],
        false,
        PRIVATE_USAGES[algorithm],
      );
      publicHalves.set(privateKey, publicKey);
      return privateKey;
    },

    async exportPublicKey(key) {
      return new Uint8Array(await subtle.exportKey("spki", cryptoKey(key)));
    },

    /** Only generated keys can be exported: imported ones are non-extractable (WebCrypto rejects). */
    async exportPrivateKey(key) {
      return new Uint8Array(await subtle.exportKey("pkcs8", cryptoKey(key)));
    },

    async publicKeyOf(privateKey) {
      const known = publicHalves.get(cryptoKey(privateKey));
      if (!known) throw new Error("not a private key of this backend");
      return known;
    },

    rsaParameters(key) {
      const algorithm = cryptoKey(key).algorithm as Partial<RsaHashedKeyAlgorithm>;
      if (algorithm.name !== "RSA-OAEP" || !algorithm.publicExponent) {
        return { modulusBits: 0, publicExponent: 0 };
      }
      const exponent = algorithm.publicExponent.reduce((value, byte) => value * 256 + byte, 0);
      return { modulusBits: algorithm.modulusLength ?? 0, publicExponent: exponent };
    },

    async rsaOaepEncrypt(publicKey, data, label) {
      return new Uint8Array(await subtle.encrypt(oaep(label), cryptoKey(publicKey), bytes(data)));
    },

    async rsaOaepDecrypt(privateKey, data, label) {
      return new Uint8Array(await subtle.decrypt(oaep(label), cryptoKey(privateKey), bytes(data)));
    },

    ed25519Sign(privateKey, message) {
      // A copy taken now: the caller may reuse its buffer once the promise exists.
      const copy = message.slice();
      return subtle.sign(ED25519, cryptoKey(privateKey), copy).then((signature) => new Uint8Array(signature));
    },

    async ed25519Verify(publicKey, message, signature) {
      const key = publicKey as Partial<CryptoKey>;
      if (key.type !== "public" || key.algorithm?.name !== "Ed25519") return false;
      try {
        return await subtle.verify(ED25519, publicKey as CryptoKey, bytes(signature), bytes(message));
      } catch {
        return false;
      }
    },

    hasher(algorithm) {
      const hash = (algorithm === "sha256" ? sha256 : sha512).create();
      const hasher: Hasher = {
        update(data) {
          hash.update(data);
          return hasher;
        },
        digest: () => hash.digest(),
      };
      return hasher;
    },

    async hkdfSha256(key, salt, info, length) {
      const material = await subtle.importKey("raw", bytes(key), "HKDF", false, ["deriveBits"]);
      const params: HkdfParams = { name: "HKDF", hash: "SHA-256", salt: bytes(salt), info: bytes(info) };
      return new Uint8Array(await subtle.deriveBits(params, material, length * 8));
    },

    scrypt: (password, salt, cost, length) => options.scrypt(password, salt, cost, length),

    fillRandom(target) {
      for (let offset = 0; offset < target.length; offset += RANDOM_CHUNK_BYTES) {
        globalThis.crypto.getRandomValues(target.subarray(offset, offset + RANDOM_CHUNK_BYTES));
      }
    },
  };
}

function cryptoKey(key: PlatformKey): CryptoKey {
  return key as CryptoKey;
}

/** WebCrypto's types want ArrayBuffer-backed views; the core's bytes always are. */
function bytes(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return data as Uint8Array<ArrayBuffer>;
}

function oaep(label: Uint8Array | undefined): RsaOaepParams {
  return label && label.length > 0 ? { name: "RSA-OAEP", label: bytes(label) } : { name: "RSA-OAEP" };
}

/** WebCrypto's publicExponent: the big-endian bytes of the number, without leading zeros. */
function exponentBytes(exponent: number): Uint8Array<ArrayBuffer> {
  const out: number[] = [];
  for (let rest = exponent; rest > 0; rest = Math.floor(rest / 256)) out.unshift(rest % 256);
  return new Uint8Array(out);
}
