// The primitives, each called exactly one way: RSA-OAEP-3072 key wrapping, Ed25519 signatures,
// XSalsa20-Poly1305 secretbox, randomness, key import/export and the user-facing key fingerprint.
//
// RSA, Ed25519, hashing and randomness come from the platform (client/platform.ts: node:crypto's OpenSSL
// in the CLI; tweetnacl's pure-JS Ed25519 is ~100× slower there). secretbox comes from tweetnacl, because
// neither node:crypto nor WebCrypto has XSalsa20-Poly1305.

import nacl from "tweetnacl";
import { ByteWriter, toHex, utf8 } from "../../protocol/bytes.js";
import { KEY_BYTES, NONCE_BYTES, SIGNATURE_BYTES } from "../../protocol/envelope.js";
import type { PublicKeys } from "../../protocol/http.js";
import { KeyImportError, type KeyAlgorithm, type PlatformKey } from "../platform.js";
import { cryptoBackend } from "./backend.js";
import { fromBase64, toBase64 } from "./base64.js";
import { CryptoError } from "./errors.js";

export interface KeyPair {
  publicKey: PlatformKey;
  privateKey: PlatformKey;
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
  encryption: PlatformKey;
  signing: PlatformKey;
}

export const RSA_MODULUS_BITS = 3072;
/** 4096 is the most that fits MAX_CONVERSATION_KEY_WRAP_BYTES (512); we generate 3072. */
const RSA_MAX_MODULUS_BITS = 4096;
const RSA_PUBLIC_EXPONENT = 65537;

const FINGERPRINT_CONTEXT = utf8("telepound/v1/fingerprint\0");

export async function generateIdentity(): Promise<Identity> {
  const backend = cryptoBackend();
  const [encryption, signing] = await Promise.all([
    backend.generateRsaKeyPair(RSA_MODULUS_BITS, RSA_PUBLIC_EXPONENT),
    backend.generateEd25519KeyPair(),
  ]);
  return { encryption, signing };
}

export async function exportIdentity(identity: Identity): Promise<ExportedIdentity> {
  const [encryptionPublic, encryptionPrivate, signingPublic, signingPrivate] = await Promise.all([
    exportPublic(identity.encryption.publicKey),
    exportPrivate(identity.encryption.privateKey),
    exportPublic(identity.signing.publicKey),
    exportPrivate(identity.signing.privateKey),
  ]);
  return { encryptionPublic, encryptionPrivate, signingPublic, signingPrivate };
}

/**
 * The inverse of exportIdentity. Checks each public key against its private key, so a server that
 * returns someone else's public keys next to our sealed private keys is caught at login.
 */
export async function importIdentity(exported: ExportedIdentity): Promise<Identity> {
  const publicKeys = await importPublicKeys({
    encryption: exported.encryptionPublic,
    signing: exported.signingPublic,
  });
  const encryptionPrivate = await importPrivate(
    exported.encryptionPrivate,
    "RSA-OAEP",
    "encryption private key",
  );
  const signingPrivate = await importPrivate(exported.signingPrivate, "Ed25519", "signing private key");
  checkRsa(encryptionPrivate, "encryption private key");
  const backend = cryptoBackend();
  if ((await exportPublic(await backend.publicKeyOf(encryptionPrivate))) !== exported.encryptionPublic) {
    throw new CryptoError("the encryption public key does not belong to the encryption private key");
  }
  if ((await exportPublic(await backend.publicKeyOf(signingPrivate))) !== exported.signingPublic) {
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
export async function importPublicKeys(publicKeys: PublicKeys): Promise<PublicKeyObjects> {
  // One after the other: when both are bad, the encryption key's error is the one reported.
  const encryption = await importPublic(publicKeys.encryption, "RSA-OAEP", "encryption public key");
  const signing = await importPublic(publicKeys.signing, "Ed25519", "signing public key");
  checkRsa(encryption, "encryption public key");
  return { encryption, signing };
}

/** RSA-OAEP with SHA-256 and MGF1-SHA-256. `label` is empty in Telepound; it exists for test vectors. */
export async function rsaWrap(
  publicKey: PlatformKey,
  bytes: Uint8Array,
  label?: Uint8Array,
): Promise<Uint8Array> {
  try {
    return await cryptoBackend().rsaOaepEncrypt(publicKey, bytes, label);
  } catch {
    throw new CryptoError("RSA-OAEP wrap failed");
  }
}

/**
 * Inverse of rsaWrap. One message for every failure (bad padding, wrong length, wrong key), so the error
 * cannot serve as a padding oracle (Manger's attack).
 */
export async function rsaUnwrap(
  privateKey: PlatformKey,
  wrapped: Uint8Array,
  label?: Uint8Array,
): Promise<Uint8Array> {
  try {
    return await cryptoBackend().rsaOaepDecrypt(privateKey, wrapped, label);
  } catch {
    throw new CryptoError("RSA-OAEP unwrap failed");
  }
}

/** Ed25519 (pure, RFC 8032) signature. */
export function sign(privateKey: PlatformKey, message: Uint8Array): Promise<Uint8Array> {
  return cryptoBackend().ed25519Sign(privateKey, message);
}

/** Ed25519 verification. Never throws: a wrong-length signature, non-Ed25519 key or bad encoding is `false`. */
export async function verify(
  publicKey: PlatformKey,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  if (signature.length !== SIGNATURE_BYTES) return false;
  try {
    return await cryptoBackend().ed25519Verify(publicKey, message, signature);
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
  if (size > RANDOM_POOL_BYTES / 4) {
    const bytes = new Uint8Array(size);
    cryptoBackend().fillRandom(bytes);
    return bytes;
  }
  if (randomPoolOffset + size > RANDOM_POOL_BYTES) {
    cryptoBackend().fillRandom(randomPool);
    randomPoolOffset = 0;
  }
  const bytes = randomPool.slice(randomPoolOffset, randomPoolOffset + size);
  randomPool.fill(0, randomPoolOffset, randomPoolOffset + size);
  randomPoolOffset += size;
  return bytes;
}

/**
 * SHA-256 by the platform (OpenSSL in the CLI), for the envelope's digests (membersDigest, keyCommitment):
 * the same bytes as protocol/bytes.ts's pure-JS hash, without the thousands of calls that hash needs to
 * run at full speed.
 */
export function sha256(data: Uint8Array): Uint8Array {
  return cryptoBackend().hasher("sha256").update(data).digest();
}

/** Constant-time equality for secrets and commitments; different lengths are simply unequal. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  // Every byte is compared whatever the first difference: the time says nothing about where it is.
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
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

async function exportPublic(key: PlatformKey): Promise<string> {
  return toBase64(await cryptoBackend().exportPublicKey(key));
}

async function exportPrivate(key: PlatformKey): Promise<string> {
  return toBase64(await cryptoBackend().exportPrivateKey(key));
}

async function importPublic(base64: string, algorithm: KeyAlgorithm, what: string): Promise<PlatformKey> {
  const der = fromBase64(base64, what);
  let key: PlatformKey;
  try {
    key = await cryptoBackend().importPublicKey(der, algorithm);
  } catch (error) {
    throw importFailure(error, algorithm, what, "an SPKI DER public key");
  }
  if ((await exportPublic(key)) !== base64) throw new CryptoError(`${what} is not in canonical DER`);
  return key;
}

async function importPrivate(base64: string, algorithm: KeyAlgorithm, what: string): Promise<PlatformKey> {
  const der = fromBase64(base64, what);
  try {
    return await cryptoBackend().importPrivateKey(der, algorithm);
  } catch (error) {
    throw importFailure(error, algorithm, what, "a PKCS#8 DER private key");
  }
}

/** A key of another algorithm is named as such; anything else is not a key of the format at all. */
function importFailure(error: unknown, algorithm: KeyAlgorithm, what: string, format: string): CryptoError {
  if (error instanceof KeyImportError && error.reason === "wrong-algorithm") {
    return new CryptoError(
      algorithm === "Ed25519"
        ? `${what} must be Ed25519`
        : `${what} must be RSA with a ${RSA_MODULUS_BITS}–${RSA_MAX_MODULUS_BITS}-bit modulus`,
    );
  }
  return new CryptoError(`${what} is not ${format}`);
}

function checkRsa(key: PlatformKey, what: string): void {
  const { modulusBits, publicExponent } = cryptoBackend().rsaParameters(key);
  if (modulusBits < RSA_MODULUS_BITS || modulusBits > RSA_MAX_MODULUS_BITS) {
    throw new CryptoError(
      `${what} must be RSA with a ${RSA_MODULUS_BITS}–${RSA_MAX_MODULUS_BITS}-bit modulus`,
    );
  }
  if (publicExponent !== RSA_PUBLIC_EXPONENT) {
    throw new CryptoError(`${what} must use public exponent ${RSA_PUBLIC_EXPONENT}`);
  }
}
