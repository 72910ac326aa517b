// From password to keys: scrypt under a salt the client derives itself, then HKDF into a key that seals the
// private keys and a key that logs in. Also seals and unseals the private keys, the blob the server keeps.
//
//   salt       = SHA-256("telepound/v1/kdf-salt\0" ‖ str8 origin ‖ str8 username)
//   master     = scrypt(NFC(password) as UTF-8, salt, N = 2^16, r = 8, p = 1, 32 bytes)
//   sealingKey = HKDF-SHA256(master, salt = empty, info = "telepound/v1/seal-private-keys", 32 bytes)
//   authKey    = HKDF-SHA256(master, salt = empty, info = "telepound/v1/auth", 32 bytes)
//
// Nothing here comes from the server: the cost is the protocol's and the salt is a function of the
// server's origin as we address it and the username, so no server can choose either (PROTOCOL §3.2).
// The server sees authKey (it stores only its SHA-256) but never sealingKey: HKDF makes them independent,
// so knowing one says nothing about the other.

import { z } from "zod";
import { ByteWriter, utf8 } from "../../protocol/bytes.js";
import { PASSWORD_KDF_COST, USERNAME_PATTERN } from "../../protocol/limits.js";
import { KEY_BYTES, NONCE_BYTES } from "../../protocol/envelope.js";
import { cryptoBackend } from "./backend.js";
import { fromBase64, toBase64 } from "./base64.js";
import { CryptoError, WrongPasswordError } from "./errors.js";
import { randomBytes, secretboxOpen, secretboxSeal, sha256 } from "./primitives.js";

export interface PasswordKeys {
  /** Seals and unseals the private keys; never leaves the client. */
  sealingKey: Uint8Array;
  /** Proves the password to the server (sent base64 as LoginRequest.authKey). */
  authKey: Uint8Array;
}

/** Whose password it is: the username and the origin of the server the account lives on (kdfOrigin). */
export interface PasswordAccount {
  origin: string;
  username: string;
}

/** Base64 PKCS#8 private keys, as in ExportedIdentity. */
export interface PrivateKeys {
  encryptionPrivate: string;
  signingPrivate: string;
}

export const KDF_SALT_CONTEXT = utf8("telepound/v1/kdf-salt\0");
const SEAL_INFO = utf8("telepound/v1/seal-private-keys");
const AUTH_INFO = utf8("telepound/v1/auth");
/** An origin is a str8 in the salt; longer ones (a 250-character host name) cannot be encoded. */
const MAX_ORIGIN_BYTES = 255;

/**
 * Other fields are ignored, as in every JSON object one client writes for another inside encryption
 * (PROTOCOL §3.3): a later client may add one, and the box's MAC already proves who wrote it.
 */
const SealedContents = z.object({ v: z.literal(1), encryption: z.string(), signing: z.string() });

/**
 * The origin a server's accounts are bound to, from its URL as the client addresses it: the WHATWG URL
 * origin serialisation, `scheme://host[:port]` lower-case, default port left out, no path (so
 * `HTTPS://Chat.Example.com:443/app/` is `https://chat.example.com`). Host names are already punycode
 * there, so the result is ASCII.
 */
export function kdfOrigin(server: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new CryptoError(`not a server URL: "${server}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CryptoError(`a server URL is http:// or https://, not "${server}"`);
  }
  const origin = url.origin;
  if (!/^[\x21-\x7e]+$/.test(origin)) throw new CryptoError(`the origin of "${server}" is not ASCII`);
  if (origin.length > MAX_ORIGIN_BYTES) {
    throw new CryptoError(`the origin of the server is longer than ${MAX_ORIGIN_BYTES} characters`);
  }
  return origin;
}

/** The account's scrypt salt: 32 bytes that differ per user and per server, chosen by no server. */
export function kdfSalt({ origin, username }: PasswordAccount): Uint8Array {
  // Refusing what is not already canonical keeps two spellings of one origin from giving two salts.
  if (kdfOrigin(origin) !== origin) {
    throw new CryptoError(`"${origin}" is not a serialised origin: use kdfOrigin("${origin}")`);
  }
  if (!USERNAME_PATTERN.test(username)) throw new CryptoError(`"${username}" is not a lower-case username`);
  return sha256(new ByteWriter(128).bytes(KDF_SALT_CONTEXT).str8(origin).str8(username).finish());
}

/** Derives both keys at the protocol's fixed cost, under the account's own salt. */
export async function derivePasswordKeys(password: string, account: PasswordAccount): Promise<PasswordKeys> {
  const salt = kdfSalt(account);
  const { logN, r, p } = PASSWORD_KDF_COST;
  const backend = cryptoBackend();
  const master = await backend.scrypt(
    utf8(password.normalize("NFC")),
    salt,
    { N: 2 ** logN, r, p },
    KEY_BYTES,
  );
  try {
    const [sealingKey, authKey] = await Promise.all([
      backend.hkdfSha256(master, new Uint8Array(0), SEAL_INFO, KEY_BYTES),
      backend.hkdfSha256(master, new Uint8Array(0), AUTH_INFO, KEY_BYTES),
    ]);
    return { sealingKey, authKey };
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
