// The file chunk format (client/crypto/file.ts): round trips at the sizes that matter (empty, small,
// exact multiples of the chunk, several chunks), the documented layout rebuilt independently with plain
// secretbox, and every way of cutting, reordering, extending or altering the ciphertext refused.

import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FILE_CHUNK_BYTES, sealedFileSize } from "../../../protocol/limits.js";
import {
  type FileDigest,
  type FileSecrets,
  TamperedFileError,
  chunkCount,
  chunkNonce,
  newFileSecrets,
  openFile,
  rechunk,
  sealFile,
} from "../../../client/crypto/file.js";
import {
  ReusableSecretbox,
  randomBytes,
  secretboxOpen,
  secretboxSeal,
} from "../../../client/crypto/primitives.js";
import { CryptoError } from "../../../client/crypto/errors.js";

const C = FILE_CHUNK_BYTES;

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return concat(parts);
}

/** The input in pieces of awkward sizes, as a file or socket would hand it over. */
async function* pieces(bytes: Uint8Array, size = 10_007): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.slice(offset, offset + size);
}

const emptyDigest = (): FileDigest => ({ ciphertextSha256: "", plaintextSha256: "" });

async function seal(plaintext: Uint8Array, secrets: FileSecrets = newFileSecrets()) {
  const digest = emptyDigest();
  const ciphertext = await collect(sealFile(pieces(plaintext), plaintext.length, secrets, digest));
  return { ciphertext, digest, secrets };
}

async function open(ciphertext: Uint8Array, secrets: FileSecrets, size: number, sha: string) {
  const digest = emptyDigest();
  const plaintext = await collect(
    openFile(pieces(ciphertext, 7_919), { ...secrets, size, sha256: sha }, digest),
  );
  return { plaintext, digest };
}

describe("sealFile and openFile", () => {
  it.each([
    ["empty", 0],
    ["one byte", 1],
    ["small", 1000],
    ["one chunk exactly", C],
    ["three chunks exactly", 3 * C],
    ["several chunks and a tail", 2 * C + 17],
    ["one byte past a chunk", C + 1],
  ])("round-trips %s (%i bytes) with matching SHA-256s", async (_label, size) => {
    const plaintext = randomBytes(size);
    const { ciphertext, digest, secrets } = await seal(plaintext);
    expect(ciphertext.length).toBe(sealedFileSize(size));
    expect(digest.ciphertextSha256).toBe(sha256(ciphertext));
    expect(digest.plaintextSha256).toBe(sha256(plaintext));
    const opened = await open(ciphertext, secrets, size, digest.ciphertextSha256);
    expect(sha256(opened.plaintext)).toBe(sha256(plaintext));
    expect(opened.plaintext.length).toBe(size);
    expect(opened.digest).toEqual(digest);
  });

  it("follows the documented layout: chunk i is secretbox(chunk, noncePrefix ‖ u64be(i), fileKey)", async () => {
    const plaintext = randomBytes(2 * C + 5);
    const { ciphertext, secrets } = await seal(plaintext);
    const nonce = (i: number) => {
      const n = new Uint8Array(24);
      n.set(secrets.noncePrefix, 0);
      new DataView(n.buffer).setBigUint64(16, BigInt(i), false);
      return n;
    };
    expect(chunkNonce(secrets.noncePrefix, 2)).toEqual(nonce(2));
    const expected = concat(
      [0, 1, 2].map((i) =>
        secretboxSeal(
          plaintext.subarray(i * C, Math.min((i + 1) * C, plaintext.length)),
          nonce(i),
          secrets.key,
        ),
      ),
    );
    expect(sha256(ciphertext)).toBe(sha256(expected));
    // An empty file is exactly one sealed empty chunk: its 16-byte tag.
    const empty = await seal(new Uint8Array(0), secrets);
    expect(empty.ciphertext).toEqual(secretboxSeal(new Uint8Array(0), nonce(0), secrets.key));
    expect(chunkCount(0)).toBe(1);
    expect(chunkCount(C)).toBe(1);
    expect(chunkCount(C + 1)).toBe(2);
  });

  it("uses a fresh key and nonce prefix per file", async () => {
    const plaintext = randomBytes(100);
    const a = await seal(plaintext);
    const b = await seal(plaintext);
    expect(a.secrets.key).not.toEqual(b.secrets.key);
    expect(a.secrets.noncePrefix).not.toEqual(b.secrets.noncePrefix);
    expect(a.digest.ciphertextSha256).not.toBe(b.digest.ciphertextSha256);
  });

  it("refuses input shorter or longer than announced", async () => {
    const secrets = newFileSecrets();
    await expect(collect(sealFile(pieces(randomBytes(99)), 100, secrets, emptyDigest()))).rejects.toThrow(
      CryptoError,
    );
    await expect(collect(sealFile(pieces(randomBytes(101)), 100, secrets, emptyDigest()))).rejects.toThrow(
      /longer/,
    );
  });

  it("gives the same bytes when chunks reuse one buffer, as long as each is consumed in time", async () => {
    const plaintext = randomBytes(3 * C + 99);
    const secrets = newFileSecrets();
    const fresh = await seal(plaintext, secrets);
    const hash = createHash("sha256");
    for await (const chunk of sealFile(pieces(plaintext), plaintext.length, secrets, emptyDigest(), {
      reuse: true,
    })) {
      hash.update(chunk);
    }
    expect(hash.digest("hex")).toBe(fresh.digest.ciphertextSha256);
  });
});

describe("a damaged ciphertext", () => {
  const size = 3 * C + 500;
  const sealedChunk = C + 16;

  async function expectRejected(
    ciphertext: Uint8Array,
    secrets: FileSecrets,
    sha: string,
    reason: RegExp,
  ): Promise<void> {
    const yielded: Uint8Array[] = [];
    const error = await (async () => {
      for await (const chunk of openFile(
        pieces(ciphertext),
        { ...secrets, size, sha256: sha },
        emptyDigest(),
      )) {
        yielded.push(chunk);
      }
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TamperedFileError);
    expect((error as TamperedFileError).reason).toMatch(reason);
  }

  it("is refused when one byte of a chunk changed", async () => {
    const { ciphertext, digest, secrets } = await seal(randomBytes(size));
    const bad = ciphertext.slice();
    bad[sealedChunk + 100]! ^= 1;
    await expectRejected(bad, secrets, digest.ciphertextSha256, /chunk 1 does not open/);
  });

  it("is refused when two chunks swap places", async () => {
    const { ciphertext, digest, secrets } = await seal(randomBytes(size));
    const swapped = concat([
      ciphertext.subarray(sealedChunk, 2 * sealedChunk),
      ciphertext.subarray(0, sealedChunk),
      ciphertext.subarray(2 * sealedChunk),
    ]);
    await expectRejected(swapped, secrets, digest.ciphertextSha256, /chunk 0 does not open/);
  });

  it("is refused when cut at a chunk boundary or inside a chunk", async () => {
    const { ciphertext, digest, secrets } = await seal(randomBytes(size));
    await expectRejected(
      ciphertext.subarray(0, 3 * sealedChunk),
      secrets,
      digest.ciphertextSha256,
      /truncated/,
    );
    await expectRejected(
      ciphertext.subarray(0, ciphertext.length - 1),
      secrets,
      digest.ciphertextSha256,
      /chunk 3 is/,
    );
    await expectRejected(new Uint8Array(0), secrets, digest.ciphertextSha256, /truncated/);
  });

  it("is refused when extended by a byte or a whole validly sealed chunk", async () => {
    const plaintext = randomBytes(size);
    const { ciphertext, digest, secrets } = await seal(plaintext);
    await expectRejected(concat([ciphertext, Uint8Array.of(0)]), secrets, digest.ciphertextSha256, /longer/);
    // A fifth chunk sealed with the right key and index still does not fit the signed size.
    const extra = secretboxSeal(randomBytes(10), chunkNonce(secrets.noncePrefix, 4), secrets.key);
    await expectRejected(concat([ciphertext, extra]), secrets, digest.ciphertextSha256, /longer/);
  });

  it("is refused when every chunk opens and the lengths fit, but it is not the ciphertext the digest names", async () => {
    // The first three chunks of a four-chunk file, checked against a size of three chunks: each chunk
    // opens and the lengths add up; only the SHA-256 of the whole ciphertext tells.
    const { ciphertext, digest, secrets } = await seal(randomBytes(4 * C));
    const digest3 = emptyDigest();
    const yielded = openFile(
      pieces(ciphertext.subarray(0, 3 * sealedChunk)),
      { ...secrets, size: 3 * C, sha256: digest.ciphertextSha256 },
      digest3,
    );
    await expect(collect(yielded)).rejects.toThrow(/SHA-256 does not match/);
  });

  it("is refused under another file's key, and with a malformed digest", async () => {
    const { ciphertext, digest } = await seal(randomBytes(size));
    await expectRejected(ciphertext, newFileSecrets(), digest.ciphertextSha256, /chunk 0 does not open/);
    await expectRejected(ciphertext, newFileSecrets(), "not hex", /64 hex/);
  });
});

describe("ReusableSecretbox", () => {
  it("seals and opens exactly like secretbox, for every length up to its maximum", () => {
    const key = randomBytes(32);
    const box = new ReusableSecretbox(key, 300);
    for (const length of [0, 1, 15, 16, 17, 63, 64, 65, 299, 300]) {
      const message = randomBytes(length);
      const nonce = randomBytes(24);
      const sealed = box.seal(message, nonce);
      expect(sealed).toEqual(secretboxSeal(message, nonce, key));
      expect(secretboxOpen(sealed.slice(), nonce, key)).toEqual(message);
      expect(box.open(sealed.slice(), nonce)).toEqual(message);
    }
    expect(() => box.seal(randomBytes(301), randomBytes(24))).toThrow(CryptoError);
  });

  it("refuses forged, truncated and foreign boxes", () => {
    const key = randomBytes(32);
    const box = new ReusableSecretbox(key, 100);
    const nonce = randomBytes(24);
    const sealed = secretboxSeal(randomBytes(50), nonce, key);
    const forged = sealed.slice();
    forged[20]! ^= 0x80;
    expect(box.open(forged, nonce)).toBeNull();
    expect(box.open(sealed.subarray(0, 15), nonce)).toBeNull();
    expect(box.open(sealed, randomBytes(24))).toBeNull();
    expect(new ReusableSecretbox(randomBytes(32), 100).open(sealed, nonce)).toBeNull();
  });
});

describe("rechunk", () => {
  it("regroups any input into exact pieces, the last shorter, and nothing for no input", async () => {
    const input = randomBytes(25);
    const out: number[] = [];
    for await (const piece of rechunk(pieces(input, 3), 10)) out.push(piece.length);
    expect(out).toEqual([10, 10, 5]);
    const none: number[] = [];
    for await (const piece of rechunk([], 10)) none.push(piece.length);
    expect(none).toEqual([]);
  });
});
