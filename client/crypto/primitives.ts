// The primitives, each called exactly one way: RSA-OAEP-3072 key wrapping, Ed25519 signatures,
// XSalsa20-Poly1305 secretbox, randomness, key import/export and the user-facing key fingerprint.
//
// RSA and Ed25519 come from node:crypto (OpenSSL): tweetnacl's pure-JS Ed25519 is ~100× slower here.
// secretbox comes from tweetnacl, because node:crypto has no XSalsa20-Poly1305.

import {
  KeyObject,
  constants,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  hash as hashWithNode,
  privateDecrypt,
  publicEncrypt,
  randomFillSync,
  sign as signWithNode,
  timingSafeEqual,
  verify as verifyWithNode,
} from "node:crypto";
import { promisify } from "node:util";
import nacl from "tweetnacl";
import { ByteWriter, toHex, utf8 } from "../../protocol/bytes.js";
import { KEY_BYTES, NONCE_BYTES, SIGNATURE_BYTES } from "../../protocol/envelope.js";
import type { PublicKeys } from "../../protocol/http.js";
import { fromBase64, toBase64 } from "./base64.js";
import { CryptoError } from "./errors.js";

export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

/** A user's two key pairs: RSA-OAEP for receiving conversation keys, Ed25519 for signing envelopes. */
export interface Identity {
  encryption: KeyPair;
  signing: KeyPair;
}

/** An Identity as base64 DER: public keys SPKI, private keys PKCS#8. What the CLI stores and seals. */
export interface ExportedIdentity {
  encryptionPublic: string;
  encryptionPrivate: string;
  signingPublic: string;
  signingPrivate: string;
}

/** Someone's public keys, imported and checked. */
export interface PublicKeyObjects {
  encryption: KeyObject;
  signing: KeyObject;
}

export const RSA_MODULUS_BITS = 3072;
/** 4096 is the most that fits MAX_CONVERSATION_KEY_WRAP_BYTES (512); we generate 3072. */
const RSA_MAX_MODULUS_BITS = 4096;
const RSA_PUBLIC_EXPONENT = 65537;

const FINGERPRINT_CONTEXT = utf8("telepound/v1/fingerprint\0");

const generateKeyPairAsync = promisify(generateKeyPair);

export async function generateIdentity(): Promise<Identity> {
  const [encryption, signing] = await Promise.all([
    generateKeyPairAsync("rsa", { modulusLength: RSA_MODULUS_BITS, publicExponent: RSA_PUBLIC_EXPONENT }),
    generateKeyPairAsync("ed25519"),
  ]);
  return { encryption, signing };
}

export function exportIdentity(identity: Identity): ExportedIdentity {
  return {
    encryptionPublic: exportPublic(identity.encryption.publicKey),
    encryptionPrivate: exportPrivate(identity.encryption.privateKey),
    signingPublic: exportPublic(identity.signing.publicKey),
    signingPrivate: exportPrivate(identity.signing.privateKey),
  };
}

/**
 * The inverse of exportIdentity. Checks each public key against its private key, so a server that
 * returns someone else's public keys next to our sealed private keys is caught at login.
 */
export function importIdentity(exported: ExportedIdentity): Identity {
  const publicKeys = importPublicKeys({
    encryption: exported.encryptionPublic,
    signing: exported.signingPublic,
  });
  const encryptionPrivate = importPrivate(exported.encryptionPrivate, "encryption private key");
  const signingPrivate = importPrivate(exported.signingPrivate, "signing private key");
  checkRsa(encryptionPrivate, "encryption private key");
  checkEd25519(signingPrivate, "signing private key");
  if (exportPublic(createPublicKey(encryptionPrivate)) !== exported.encryptionPublic) {
    throw new CryptoError("the encryption public key does not belong to the encryption private key");
  }
  if (exportPublic(createPublicKey(signingPrivate)) !== exported.signingPublic) {
    throw new CryptoError("the signing public key does not belong to the signing private key");
  }
  return {
    encryption: { publicKey: publicKeys.encryption, privateKey: encryptionPrivate },
    signing: { publicKey: publicKeys.signing, privateKey: signingPrivate },
  };
}

/**
 * Imports a user's published keys, refusing anything but RSA (3072–4096 bits, e = 65537) for encryption
 * and Ed25519 for signing, and any DER that does not re-export byte for byte (fingerprints hash the DER).
 */
export function importPublicKeys(publicKeys: PublicKeys): PublicKeyObjects {
  const encryption = importPublic(publicKeys.encryption, "encryption public key");
  const signing = importPublic(publicKeys.signing, "signing public key");
  checkRsa(encryption, "encryption public key");
  checkEd25519(signing, "signing public key");
  return { encryption, signing };
}

/** RSA-OAEP with SHA-256 and MGF1-SHA-256. `label` is empty in Telepound; it exists for test vectors. */
export function rsaWrap(publicKey: KeyObject, bytes: Uint8Array, label?: Uint8Array): Uint8Array {
  try {
    return new Uint8Array(publicEncrypt(oaep(publicKey, label), bytes));
  } catch {
    throw new CryptoError("RSA-OAEP wrap failed");
  }
}

/**
 * Inverse of rsaWrap. One message for every failure (bad padding, wrong length, wrong key), so the error
 * cannot serve as a padding oracle (Manger's attack).
 */
export function rsaUnwrap(privateKey: KeyObject, wrapped: Uint8Array, label?: Uint8Array): Uint8Array {
  try {
    return new Uint8Array(privateDecrypt(oaep(privateKey, label), wrapped));
  } catch {
    throw new CryptoError("RSA-OAEP unwrap failed");
  }
}

/** Ed25519 (pure, RFC 8032) signature. */
export function sign(privateKey: KeyObject, message: Uint8Array): Uint8Array {
  return new Uint8Array(signWithNode(null, message, privateKey));
}

/** Ed25519 verification. Never throws: a wrong-length signature, non-Ed25519 key or bad encoding is `false`. */
export function verify(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.asymmetricKeyType !== "ed25519" || signature.length !== SIGNATURE_BYTES) return false;
  try {
    return verifyWithNode(null, message, publicKey, signature);
  } catch {
    return false;
  }
}

/** tweetnacl's C-style secretbox, which writes into buffers the caller owns (not in its type definitions). */
interface NaclLowLevel {
  crypto_secretbox(c: Uint8Array, m: Uint8Array, d: number, n: Uint8Array, k: Uint8Array): number;
  crypto_secretbox_open(m: Uint8Array, c: Uint8Array, d: number, n: Uint8Array, k: Uint8Array): number;
}
const lowlevel = (nacl as unknown as { lowlevel: NaclLowLevel }).lowlevel;

/** secretboxSeal's zero-prefixed input for messages up to 4 KiB (a message payload, a key), reused. */
const sealInput = new Uint8Array(32 + 4096);

/** XSalsa20-Poly1305: 32-byte key, 24-byte nonce; the output is 16 bytes longer than the message. */
export function secretboxSeal(message: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array {
  if (nonce.length !== NONCE_BYTES || key.length !== KEY_BYTES) {
    throw new CryptoError(`secretbox needs a ${KEY_BYTES}-byte key and a ${NONCE_BYTES}-byte nonce`);
  }
  // nacl.secretbox does the same, but copies the message byte by byte into a fresh zero-prefixed buffer
  // first: for a message's payload and key, that cost as much as the encryption.
  const length = 32 + message.length;
  const input = length <= sealInput.length ? sealInput : new Uint8Array(length);
  input.set(message, 32);
  const boxed = new Uint8Array(length);
  lowlevel.crypto_secretbox(boxed, input, length, nonce, key);
  input.fill(0, 32, length); // no plaintext left behind in the shared buffer
  return boxed.subarray(16);
}

/** The message, or null if the box is forged, corrupted, or sealed under another key or nonce. */
export function secretboxOpen(box: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array | null {
  if (nonce.length !== NONCE_BYTES || key.length !== KEY_BYTES) return null;
  return nacl.secretbox.open(box, nonce, key);
}

/**
 * The same XSalsa20-Poly1305 secretbox as secretboxSeal/secretboxOpen, but into two buffers allocated
 * once: what streams a 128 MiB file in 64 KiB chunks with flat memory. Allocating per chunk would leave
 * tens of megabytes of dead buffers waiting for the garbage collector, which frees them late.
 *
 * A returned view points into this object's buffers and is valid only until the next call.
 */
export class ReusableSecretbox {
  // NaCl's layout: the message follows 32 zero bytes, the box follows 16 zero bytes.
  private readonly message: Uint8Array;
  private readonly boxed: Uint8Array;

  constructor(
    private readonly key: Uint8Array,
    readonly maxMessageBytes: number,
  ) {
    if (key.length !== KEY_BYTES) throw new CryptoError(`secretbox needs a ${KEY_BYTES}-byte key`);
    this.message = new Uint8Array(32 + maxMessageBytes);
    this.boxed = new Uint8Array(32 + maxMessageBytes);
  }

  /** secretbox(message, nonce, key): 16 bytes longer than the message. */
  seal(message: Uint8Array, nonce: Uint8Array): Uint8Array {
    if (nonce.length !== NONCE_BYTES) throw new CryptoError(`secretbox needs a ${NONCE_BYTES}-byte nonce`);
    if (message.length > this.maxMessageBytes) throw new CryptoError("message longer than this secretbox");
    const length = 32 + message.length;
    this.message.fill(0, 0, 32);
    this.message.set(message, 32);
    lowlevel.crypto_secretbox(this.boxed, this.message, length, nonce, this.key);
    return this.boxed.subarray(16, length);
  }

  /** The message, or null if the box is forged, corrupted, or sealed under another key or nonce. */
  open(box: Uint8Array, nonce: Uint8Array): Uint8Array | null {
    if (nonce.length !== NONCE_BYTES || box.length < 16 || box.length > 16 + this.maxMessageBytes)
      return null;
    const length = 16 + box.length;
    this.boxed.fill(0, 0, 16);
    this.boxed.set(box, 16);
    if (lowlevel.crypto_secretbox_open(this.message, this.boxed, length, nonce, this.key) !== 0) return null;
    return this.message.subarray(32, length);
  }
}

const RANDOM_POOL_BYTES = 4096;
const randomPool = new Uint8Array(RANDOM_POOL_BYTES);
let randomPoolOffset = RANDOM_POOL_BYTES;

/**
 * Small requests are served from a pool filled RANDOM_POOL_BYTES at a time: each call into the system's
 * generator costs several microseconds whatever its size, as much as the rest of sealing a short message.
 * Bytes leave the pool as copies and are zeroed there, so no key stays behind in it.
 */
export function randomBytes(size: number): Uint8Array {
  if (size > RANDOM_POOL_BYTES / 4) return randomFillSync(new Uint8Array(size));
  if (randomPoolOffset + size > RANDOM_POOL_BYTES) {
    randomFillSync(randomPool);
    randomPoolOffset = 0;
  }
  const bytes = randomPool.slice(randomPoolOffset, randomPoolOffset + size);
  randomPool.fill(0, randomPoolOffset, randomPoolOffset + size);
  randomPoolOffset += size;
  return bytes;
}

/**
 * SHA-256 by OpenSSL, for the envelope's digests (membersDigest, keyCommitment): the same bytes as
 * protocol/bytes.ts's pure-JS hash, without the thousands of calls that hash needs to run at full speed.
 */
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(hashWithNode("sha256", data, "buffer"));
}

/** Constant-time equality for secrets and commitments; different lengths are simply unequal. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * What users compare out of band: SHA-256("telepound/v1/fingerprint\0" ‖ u16 len ‖ signing SPKI DER ‖
 * u16 len ‖ encryption SPKI DER), as 64 lower-case hex digits in 16 groups of 4. Covers both keys, so
 * neither can be swapped unnoticed; the lengths make the split between them unambiguous.
 */
export function fingerprint(publicKeys: PublicKeys): string {
  const input = new ByteWriter(2048)
    .bytes(FINGERPRINT_CONTEXT)
    .bytes16(fromBase64(publicKeys.signing, "signing public key"))
    .bytes16(fromBase64(publicKeys.encryption, "encryption public key"))
    .finish();
  return toHex(sha256(input)).match(/.{4}/g)!.join(" ");
}

function oaep(key: KeyObject, label: Uint8Array | undefined) {
  // Node uses oaepHash for MGF1 too, which is what RSA-OAEP-256 (and WebCrypto) means.
  return { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256", oaepLabel: label };
}

function exportPublic(key: KeyObject): string {
  return toBase64(key.export({ type: "spki", format: "der" }));
}

function exportPrivate(key: KeyObject): string {
  return toBase64(key.export({ type: "pkcs8", format: "der" }));
}

function importPublic(base64: string, what: string): KeyObject {
  const der = fromBase64(base64, what);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" });
  } catch {
    throw new CryptoError(`${what} is not an SPKI DER public key`);
  }
  if (exportPublic(key) !== base64) throw new CryptoError(`${what} is not in canonical DER`);
  return key;
}

function importPrivate(base64: string, what: string): KeyObject {
  const der = fromBase64(base64, what);
  try {
    return createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" });
  } catch {
    throw new CryptoError(`${what} is not a PKCS#8 DER private key`);
  }
}

function checkRsa(key: KeyObject, what: string): void {
  const details = key.asymmetricKeyDetails;
  const bits = details?.modulusLength ?? 0;
  // "rsa" only: an "rsa-pss" key is restricted to signatures and would not do OAEP.
  if (key.asymmetricKeyType !== "rsa" || bits < RSA_MODULUS_BITS || bits > RSA_MAX_MODULUS_BITS) {
    throw new CryptoError(
      `${what} must be RSA with a ${RSA_MODULUS_BITS}–${RSA_MAX_MODULUS_BITS}-bit modulus`,
    );
  }
  if (details?.publicExponent !== BigInt(RSA_PUBLIC_EXPONENT)) {
    throw new CryptoError(`${what} must use public exponent ${RSA_PUBLIC_EXPONENT}`);
  }
}

function checkEd25519(key: KeyObject, what: string): void {
  if (key.asymmetricKeyType !== "ed25519") throw new CryptoError(`${what} must be Ed25519`);
}
