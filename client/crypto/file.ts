// Where a file attachment is encrypted and checked: the chunked format, sealed and opened as streams so
// a 128 MiB file never sits in memory, with every way of cutting, reordering or padding it caught.
//
// Format (docs/PROTOCOL.md quotes it; change both together):
//   fileKey       32 random bytes, fresh per file
//   noncePrefix   16 random bytes, fresh per file
//   chunks        the plaintext cut into FILE_CHUNK_BYTES (65,536-byte) chunks, the last one shorter or
//                 full; an empty file is one empty chunk, so a file of n bytes has max(1, ceil(n / 65536))
//   sealed chunk  XSalsa20-Poly1305 secretbox(chunk i, nonce_i, fileKey), 16 bytes longer than chunk i,
//                 with nonce_i = noncePrefix ‖ u64 big-endian i (24 bytes; i counts from 0)
//   ciphertext    sealed chunk 0 ‖ sealed chunk 1 ‖ … : sealedFileSize(n) bytes, uploaded as the blob
//   descriptor    JSON inside the signed, end-to-end encrypted message payload (its `attachment`):
//                 {"v":1,"blob":"<blob id>","name":"<original base name>","size":n,"chunk":65536,
//                  "key":"<base64 fileKey>","noncePrefix":"<base64 noncePrefix>",
//                  "sha256":"<hex SHA-256 of the whole ciphertext>"}
//
// Why each part: the index in the nonce makes a chunk moved to another position fail its MAC; the size in
// the signed descriptor fixes the number and length of the chunks, so a blob cut at a chunk boundary or
// with chunks appended is refused; the ciphertext's SHA-256 binds the exact bytes the sender uploaded.
// Since the key is fresh per file and never reused, the 16-byte random prefix only has to keep files
// apart under one key, which it does trivially.

import { ByteWriter, toHex } from "../../protocol/bytes.js";
import { FILE_CHUNK_BYTES, sealedFileSize } from "../../protocol/limits.js";
import { cryptoBackend } from "./backend.js";
import { CryptoError } from "./errors.js";
import { ReusableSecretbox, randomBytes } from "./primitives.js";

export const FILE_KEY_BYTES = 32;
export const NONCE_PREFIX_BYTES = 16;
/** Poly1305 tag per chunk. */
export const CHUNK_OVERHEAD = 16;

/** The per-file secrets: go into the descriptor, nowhere else. */
export interface FileSecrets {
  key: Uint8Array;
  noncePrefix: Uint8Array;
}

/** A sealed file failed a check; `reason` names it. Nothing the opener yielded may be kept. */
export class TamperedFileError extends CryptoError {
  override name = "TamperedFileError";
  constructor(readonly reason: string) {
    super(`file rejected: ${reason}`);
  }
}

export function newFileSecrets(): FileSecrets {
  return { key: randomBytes(FILE_KEY_BYTES), noncePrefix: randomBytes(NONCE_PREFIX_BYTES) };
}

/** How many chunks a file of `size` plaintext bytes has: at least one, so an empty file has one. */
export function chunkCount(size: number): number {
  return Math.max(1, Math.ceil(size / FILE_CHUNK_BYTES));
}

/** noncePrefix ‖ u64 big-endian index. */
export function chunkNonce(noncePrefix: Uint8Array, index: number): Uint8Array {
  if (noncePrefix.length !== NONCE_PREFIX_BYTES) {
    throw new CryptoError(`the nonce prefix must be ${NONCE_PREFIX_BYTES} bytes`);
  }
  return new ByteWriter(24).bytes(noncePrefix).u64(index).finish();
}

/** Filled in by the generators as they go; final once the generator has finished without throwing. */
export interface FileDigest {
  /** Hex SHA-256 of the whole ciphertext: what the descriptor's `sha256` holds. */
  ciphertextSha256: string;
  /** Hex SHA-256 of the whole plaintext: what people compare with the original. */
  plaintextSha256: string;
}

/**
 * Seals a plaintext stream of exactly `size` bytes, yielding one sealed chunk at a time (each 16 bytes
 * longer than its plaintext; together sealedFileSize(size) bytes). Input pieces of any length are cut
 * into chunks here. A source shorter or longer than `size` throws CryptoError: the file changed while
 * being read, and the descriptor would not match what was sealed.
 */
export async function* sealFile(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  size: number,
  secrets: FileSecrets,
  digest: FileDigest,
  options: StreamOptions = {},
): AsyncGenerator<Uint8Array> {
  checkSecrets(secrets);
  const cipherHash = cryptoBackend().hasher("sha256");
  const plainHash = cryptoBackend().hasher("sha256");
  const chunks = chunkCount(size);
  const box = new ReusableSecretbox(secrets.key, FILE_CHUNK_BYTES);
  let index = 0;
  const seal = (chunk: Uint8Array): Uint8Array => {
    plainHash.update(chunk);
    const sealed = box.seal(chunk, chunkNonce(secrets.noncePrefix, index));
    cipherHash.update(sealed);
    index++;
    return options.reuse ? sealed : sealed.slice();
  };
  let read = 0;
  // Each piece is sealed (copied into a new box) before the next is read: the buffer can be reused.
  for await (const piece of rechunk(source, FILE_CHUNK_BYTES, true)) {
    read += piece.length;
    if (read > size) throw new CryptoError(`the input is longer than the ${size} bytes announced`);
    yield seal(piece);
  }
  if (read !== size) throw new CryptoError(`the input is ${read} bytes, not the ${size} announced`);
  if (index === 0) yield seal(new Uint8Array(0));
  if (index !== chunks) throw new Error(`sealed ${index} chunks of ${chunks}`);
  digest.ciphertextSha256 = toHex(cipherHash.digest());
  digest.plaintextSha256 = toHex(plainHash.digest());
}

export interface StreamOptions {
  /**
   * Each yielded chunk is a view into a buffer the next one overwrites: the consumer must be done with
   * a chunk (written it out, or copied it) before asking for the next. What keeps memory flat; without
   * it every chunk is a fresh copy.
   */
  reuse?: boolean;
}

export interface OpenFileOptions extends FileSecrets {
  /** Plaintext size from the signed descriptor: fixes the number and length of the chunks. */
  size: number;
  /** Hex SHA-256 of the ciphertext from the signed descriptor. */
  sha256: string;
}

/**
 * Opens a ciphertext stream chunk by chunk, yielding plaintext chunks in order. Throws
 * TamperedFileError on a chunk whose MAC fails (tampered, swapped, sealed under another key), on a
 * stream shorter or longer than the size implies, and (after the last chunk) on a SHA-256 mismatch.
 * Until the generator returns normally, everything it yielded must be treated as untrusted and discarded.
 */
export async function* openFile(
  source: AsyncIterable<Uint8Array>,
  options: OpenFileOptions & StreamOptions,
  digest: FileDigest,
): AsyncGenerator<Uint8Array> {
  checkSecrets(options);
  const box = new ReusableSecretbox(options.key, FILE_CHUNK_BYTES);
  if (!/^[0-9a-f]{64}$/.test(options.sha256)) throw new TamperedFileError("the digest is not 64 hex digits");
  const chunks = chunkCount(options.size);
  const total = sealedFileSize(options.size);
  const cipherHash = cryptoBackend().hasher("sha256");
  const plainHash = cryptoBackend().hasher("sha256");
  let index = 0;
  let received = 0;
  // Sealed chunks are FILE_CHUNK_BYTES + 16 long but the last, so the stream is cut at those lengths;
  // the final piece rechunk hands over is whatever is left (the last chunk, or a truncated one).
  for await (const sealed of rechunk(source, FILE_CHUNK_BYTES + CHUNK_OVERHEAD, true)) {
    received += sealed.length;
    if (received > total) throw new TamperedFileError(`the ciphertext is longer than ${total} bytes`);
    const expected =
      index < chunks - 1 ? FILE_CHUNK_BYTES + CHUNK_OVERHEAD : total - received + sealed.length;
    if (sealed.length !== expected) {
      throw new TamperedFileError(`chunk ${index} is ${sealed.length} bytes, expected ${expected}`);
    }
    cipherHash.update(sealed);
    const plain = box.open(sealed, chunkNonce(options.noncePrefix, index));
    if (!plain) throw new TamperedFileError(`chunk ${index} does not open (tampered, reordered or foreign)`);
    plainHash.update(plain);
    index++;
    yield options.reuse ? plain : plain.slice();
  }
  if (received !== total || index !== chunks) {
    throw new TamperedFileError(`the ciphertext is truncated: ${received} of ${total} bytes`);
  }
  const actual = toHex(cipherHash.digest());
  if (actual !== options.sha256) throw new TamperedFileError("the ciphertext's SHA-256 does not match");
  digest.ciphertextSha256 = actual;
  digest.plaintextSha256 = toHex(plainHash.digest());
}

/**
 * Regroups a byte stream into pieces of exactly `size` bytes, the last one shorter (or none left over
 * when the input ends on a boundary). Holds at most one piece: memory stays flat whatever the input.
 */
export async function* rechunk(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  size: number,
  /** The consumer is done with each piece before asking for the next: one buffer serves them all. */
  reuse = false,
): AsyncGenerator<Uint8Array> {
  let buffer = new Uint8Array(size);
  let filled = 0;
  for await (const input of source) {
    let offset = 0;
    while (offset < input.length) {
      const take = Math.min(size - filled, input.length - offset);
      buffer.set(input.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === size) {
        yield buffer;
        // Unless told otherwise the consumer may keep the piece while we fill the next: a fresh buffer.
        if (!reuse) buffer = new Uint8Array(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}

function checkSecrets(secrets: FileSecrets): void {
  if (secrets.key.length !== FILE_KEY_BYTES) throw new CryptoError(`a file key is ${FILE_KEY_BYTES} bytes`);
  if (secrets.noncePrefix.length !== NONCE_PREFIX_BYTES) {
    throw new CryptoError(`a nonce prefix is ${NONCE_PREFIX_BYTES} bytes`);
  }
}

/** Hex SHA-256 of bytes in memory (tests, small files). */
export function sha256Hex(bytes: Uint8Array): string {
  return toHex(cryptoBackend().hasher("sha256").update(bytes).digest());
}
