// The core's cryptography on Node (client/platform.ts CryptoBackend): node:crypto, that is OpenSSL. Every
// operation is synchronous or a callback here and is handed back as an already settled promise.

import {
  type KeyObject,
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  hkdf,
  privateDecrypt,
  publicEncrypt,
  randomFillSync,
  scrypt,
  sign,
  verify,
} from "node:crypto";
import { promisify } from "node:util";
import {
  type CryptoBackend,
  type Hasher,
  KeyImportError,
  type KeyAlgorithm,
  type PlatformKey,
  type PlatformKeyPair,
} from "../../client/platform.js";

const generateKeyPairAsync = promisify(generateKeyPair);
const hkdfAsync = promisify(hkdf);
/** OpenSSL adds a few blocks of bookkeeping to scrypt's 128·N·r·p; this covers them. */
const SCRYPT_MAXMEM_SLACK = 1024 * 1024;

/** node:crypto's name for each algorithm: "rsa" only, as an "rsa-pss" key would not do OAEP. */
const NODE_KEY_TYPE: Record<KeyAlgorithm, string> = { "RSA-OAEP": "rsa", Ed25519: "ed25519" };

export const nodeCrypto: CryptoBackend = {
  async generateRsaKeyPair(modulusBits, publicExponent) {
    const pair = await generateKeyPairAsync("rsa", { modulusLength: modulusBits, publicExponent });
    return pair as unknown as PlatformKeyPair;
  },

  async generateEd25519KeyPair() {
    return (await generateKeyPairAsync("ed25519")) as unknown as PlatformKeyPair;
  },

  async importPublicKey(der, algorithm) {
    let key: KeyObject;
    try {
      key = createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" });
    } catch {
      throw new KeyImportError("malformed");
    }
    return checked(key, algorithm);
  },

  async importPrivateKey(der, algorithm) {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" });
    } catch {
      throw new KeyImportError("malformed");
    }
    return checked(key, algorithm);
  },

  async exportPublicKey(key) {
    return new Uint8Array(node(key).export({ type: "spki", format: "der" }));
  },

  async exportPrivateKey(key) {
    return new Uint8Array(node(key).export({ type: "pkcs8", format: "der" }));
  },

  async publicKeyOf(privateKey) {
    return createPublicKey(node(privateKey)) as unknown as PlatformKey;
  },

  rsaParameters(key) {
    const details = node(key).asymmetricKeyDetails;
    return {
      modulusBits: details?.modulusLength ?? 0,
      publicExponent: Number(details?.publicExponent ?? 0),
    };
  },

  async rsaOaepEncrypt(publicKey, data, label) {
    return new Uint8Array(publicEncrypt(oaep(node(publicKey), label), data));
  },

  async rsaOaepDecrypt(privateKey, data, label) {
    return new Uint8Array(privateDecrypt(oaep(node(privateKey), label), data));
  },

  async ed25519Sign(privateKey, message) {
    return new Uint8Array(sign(null, message, node(privateKey)));
  },

  async ed25519Verify(publicKey, message, signature) {
    const key = node(publicKey);
    if (key.asymmetricKeyType !== "ed25519") return false;
    try {
      return verify(null, message, key, signature);
    } catch {
      return false;
    }
  },

  hasher(algorithm) {
    const hash = createHash(algorithm);
    const hasher: Hasher = {
      update(data) {
        hash.update(data);
        return hasher;
      },
      digest: () => new Uint8Array(hash.digest()),
    };
    return hasher;
  },

  async hkdfSha256(key, salt, info, length) {
    return new Uint8Array(await hkdfAsync("sha256", key, salt, info, length));
  },

  scrypt(password, salt, { N, r, p }, length) {
    const options = { N, r, p, maxmem: 128 * N * r * p + SCRYPT_MAXMEM_SLACK };
    return new Promise((resolve, reject) =>
      scrypt(password, salt, length, options, (error, key) =>
        error ? reject(error) : resolve(new Uint8Array(key.buffer, key.byteOffset, key.length)),
      ),
    );
  },

  fillRandom(bytes) {
    randomFillSync(bytes);
  },
};

function node(key: PlatformKey): KeyObject {
  return key as unknown as KeyObject;
}

function checked(key: KeyObject, algorithm: KeyAlgorithm): PlatformKey {
  if (key.asymmetricKeyType !== NODE_KEY_TYPE[algorithm]) throw new KeyImportError("wrong-algorithm");
  return key as unknown as PlatformKey;
}

function oaep(key: KeyObject, label: Uint8Array | undefined) {
  // Node uses oaepHash for MGF1 too, which is what RSA-OAEP-256 (and WebCrypto) means.
  return { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256", oaepLabel: label };
}
