// From password to keys: scrypt, then HKDF into a key that seals the private keys and a key that logs in.
// Also seals and unseals the private keys, the blob the server keeps for us without being able to read it.
//
//   master     = scrypt(NFC(password) as UTF-8, salt, N = 2^logN, r, p, 32 bytes)
//   sealingKey = HKDF-SHA256(master, salt = empty, info = "telepound/v1/seal-private-keys", 32 bytes)
//   authKey    = HKDF-SHA256(master, salt = empty, info = "telepound/v1/auth", 32 bytes)
//
// The server sees authKey (it stores only its SHA-256) but never sealingKey: HKDF makes them independent,
// so knowing one says nothing about the other.

import { hkdf, scrypt } from "node:crypto";
import { promisify } from "node:util";
import { z } from "zod";
import { KdfParams } from "../../protocol/http.js";
import { KDF_LIMITS } from "../../protocol/limits.js";
import { KEY_BYTES, NONCE_BYTES } from "../../protocol/envelope.js";
import { utf8 } from "../../protocol/bytes.js";
import { fromBase64, toBase64 } from "./base64.js";
import { CryptoError, WrongPasswordError } from "./errors.js";
import { randomBytes, secretboxOpen, secretboxSeal } from "./primitives.js";

export interface PasswordKeys {
  /** Seals and unseals the private keys; never leaves the client. */
  sealingKey: Uint8Array;
  /** Proves the password to the server (sent base64 as LoginRequest.authKey). */
  authKey: Uint8Array;
}

/** Base64 PKCS#8 private keys, as in ExportedIdentity. */
export interface PrivateKeys {
  encryptionPrivate: string;
  signingPrivate: string;
}

export const DEFAULT_KDF = { logN: 16, r: 8, p: 1, saltBytes: 16 } as const;
const SEAL_INFO = utf8("telepound/v1/seal-private-keys");
const AUTH_INFO = utf8("telepound/v1/auth");
/** OpenSSL adds a few blocks of bookkeeping to scrypt's 128·N·r·p; this covers them. */
const SCRYPT_MAXMEM_SLACK = 1024 * 1024;

const hkdfAsync = promisify(hkdf);

/**
 * Other fields are ignored, as in every JSON object one client writes for another inside encryption
 * (PROTOCOL §3.3): a later client may add one, and the box's MAC already proves who wrote it.
 */
const SealedContents = z.object({ v: z.literal(1), encryption: z.string(), signing: z.string() });

/** Fresh parameters for signup: a new random salt and today's default cost. */
export function newKdfParams(): KdfParams {
  return {
    algorithm: "scrypt",
    salt: toBase64(randomBytes(DEFAULT_KDF.saltBytes)),
    logN: DEFAULT_KDF.logN,
    r: DEFAULT_KDF.r,
    p: DEFAULT_KDF.p,
  };
}

/**
 * Derives both keys. `kdf` comes from the server at login, so it is checked first: outside KDF_LIMITS
 * (or over its memory ceiling) a malicious server could make us burn gigabytes, and it is refused.
 */
export async function derivePasswordKeys(password: string, kdf: KdfParams): Promise<PasswordKeys> {
  const checked = KdfParams.safeParse(kdf);
  if (!checked.success) throw new CryptoError(`refusing KDF parameters: ${checked.error.issues[0]?.message}`);
  const { salt, logN, r, p } = checked.data;
  const N = 2 ** logN;
  if (128 * N * r > KDF_LIMITS.maxMemoryBytes) {
    throw new CryptoError(
      `refusing KDF parameters: scrypt would need more than ${KDF_LIMITS.maxMemoryBytes} bytes`,
    );
  }
  const options = { N, r, p, maxmem: 128 * N * r * p + SCRYPT_MAXMEM_SLACK };
  // promisify(scrypt) is typed without the options argument, hence the explicit promise.
  const master = await new Promise<Buffer>((resolve, reject) =>
    scrypt(utf8(password.normalize("NFC")), fromBase64(salt, "KDF salt"), KEY_BYTES, options, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
  try {
    const [sealingKey, authKey] = await Promise.all([
      hkdfAsync("sha256", master, new Uint8Array(0), SEAL_INFO, KEY_BYTES),
      hkdfAsync("sha256", master, new Uint8Array(0), AUTH_INFO, KEY_BYTES),
    ]);
    return { sealingKey: new Uint8Array(sealingKey), authKey: new Uint8Array(authKey) };
  } finally {
    master.fill(0);
  }
}

/** base64(nonce(24) ‖ secretbox(UTF-8 JSON {"v":1,"encryption":…,"signing":…}, nonce, sealingKey)). */
export function sealPrivateKeys(sealingKey: Uint8Array, keys: PrivateKeys): string {
  const contents = JSON.stringify({ v: 1, encryption: keys.encryptionPrivate, signing: keys.signingPrivate });
  const nonce = randomBytes(NONCE_BYTES);
  const box = secretboxSeal(utf8(contents), nonce, sealingKey);
  const out = new Uint8Array(NONCE_BYTES + box.length);
  out.set(nonce);
  out.set(box, NONCE_BYTES);
  return toBase64(out);
}

/** Throws WrongPasswordError if the box does not open; CryptoError if it opens but holds something else. */
export function unsealPrivateKeys(sealingKey: Uint8Array, sealed: string): PrivateKeys {
  const bytes = fromBase64(sealed, "sealed private keys");
  const opened = secretboxOpen(bytes.subarray(NONCE_BYTES), bytes.subarray(0, NONCE_BYTES), sealingKey);
  if (!opened) throw new WrongPasswordError();
  let contents: z.infer<typeof SealedContents>;
  try {
    contents = SealedContents.parse(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(opened)));
  } catch {
    throw new CryptoError("the sealed private keys opened but do not hold version 1 keys");
  }
  return { encryptionPrivate: contents.encryption, signingPrivate: contents.signing };
}
