// Big-endian binary reading and writing for the envelope format, plus hex for message ids and SHA-256.
// Shared by the Worker and the Node client, so it uses only Web-standard APIs and portable libraries.

import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";

export class FormatError extends Error {
  override name = "FormatError";
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
/** Up to this many ASCII characters, a loop is quicker than a call into the encoder. */
const SHORT_ASCII_BYTES = 64;

/** Appends fields to a growing buffer; `finish()` returns exactly the bytes written. */
export class ByteWriter {
  private buffer: Uint8Array;
  private length = 0;

  constructor(initialCapacity = 1024) {
    this.buffer = new Uint8Array(initialCapacity);
  }

  private reserve(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }

  u8(value: number): this {
    this.reserve(1);
    this.buffer[this.length++] = value;
    return this;
  }

  u16(value: number): this {
    this.reserve(2);
    this.length = putU16(this.buffer, this.length, value);
    return this;
  }

  u32(value: number): this {
    this.reserve(4);
    this.length = putU32(this.buffer, this.length, value);
    return this;
  }

  u64(value: number): this {
    this.reserve(8);
    this.length = putU64(this.buffer, this.length, value);
    return this;
  }

  bytes(value: Uint8Array): this {
    this.reserve(value.length);
    this.length = putBytes(this.buffer, this.length, value);
    return this;
  }

  /** Exactly `size` bytes, checked: fixed-width fields such as ids and nonces. */
  fixed(value: Uint8Array, size: number, what: string): this {
    if (value.length !== size) throw new FormatError(`${what} must be ${size} bytes, got ${value.length}`);
    return this.bytes(value);
  }

  /** A u8 length then that many bytes of UTF-8 (names). */
  str8(value: string): this {
    this.reserve(1 + utf8Length(value));
    this.length = putStr8(this.buffer, this.length, value);
    return this;
  }

  /** A u16 length then the bytes. */
  bytes16(value: Uint8Array): this {
    return this.u16(value.length).bytes(value);
  }

  /** A u32 length then the bytes. */
  bytes32(value: Uint8Array): this {
    return this.u32(value.length).bytes(value);
  }

  get offset(): number {
    return this.length;
  }

  /**
   * The bytes written. A writer sized exactly hands over its own buffer instead of a copy; nothing can
   * write into it afterwards, since any further write would need to grow it into a new one.
   */
  finish(): Uint8Array {
    return this.length === this.buffer.length ? this.buffer : this.buffer.slice(0, this.length);
  }
}

// Writing into a buffer sized in advance: each put writes one big-endian field at `at` and returns the
// offset just past it. Integers go byte by byte; a DataView per buffer would cost more than the shifts.

export function putU16(out: Uint8Array, at: number, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff)
    throw new FormatError(`u16 out of range: ${value}`);
  out[at] = value >>> 8;
  out[at + 1] = value;
  return at + 2;
}

export function putU32(out: Uint8Array, at: number, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new FormatError(`u32 out of range: ${value}`);
  }
  out[at] = value >>> 24;
  out[at + 1] = value >>> 16;
  out[at + 2] = value >>> 8;
  out[at + 3] = value;
  return at + 4;
}

export function putU64(out: Uint8Array, at: number, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new FormatError(`u64 out of range: ${value}`);
  // Two 32-bit halves: a BigInt per field costs more than the rest of the write.
  return putU32(out, putU32(out, at, Math.floor(value / 0x1_0000_0000)), value >>> 0);
}

export function putBytes(out: Uint8Array, at: number, value: Uint8Array): number {
  out.set(value, at);
  return at + value.length;
}

/** A u8 length then that many bytes of UTF-8 (names). */
export function putStr8(out: Uint8Array, at: number, value: string): number {
  const size = utf8Length(value);
  if (size > 0xff) throw new FormatError("string longer than 255 bytes");
  out[at] = size;
  return putUtf8(out, at + 1, value, size);
}

/** `size` is utf8Length(value): the text is encoded straight into `out`, with no copy in between. */
export function putUtf8(out: Uint8Array, at: number, value: string, size: number): number {
  if (size === value.length && size <= SHORT_ASCII_BYTES) {
    // Every code unit is ASCII (anything else takes more than one byte): names, mostly.
    for (let i = 0; i < size; i++) out[at + i] = value.charCodeAt(i);
  } else {
    utf8Encoder.encodeInto(value, out.subarray(at, at + size));
  }
  return at + size;
}

/** Reads fields in order; every read is bounds-checked and throws FormatError on short input. */
export class ByteReader {
  private readonly view: DataView;
  offset = 0;

  constructor(private readonly data: Uint8Array) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  private need(size: number, what: string): void {
    if (this.offset + size > this.data.length) throw new FormatError(`truncated at ${what}`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.offset++);
  }

  u16(what: string): number {
    this.need(2, what);
    const value = this.view.getUint16(this.offset);
    this.offset += 2;
    return value;
  }

  u32(what: string): number {
    this.need(4, what);
    const value = this.view.getUint32(this.offset);
    this.offset += 4;
    return value;
  }

  u64(what: string): number {
    this.need(8, what);
    const value = this.view.getBigUint64(this.offset);
    this.offset += 8;
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`${what} too large`);
    return Number(value);
  }

  /** A view (not a copy) of the next `size` bytes. */
  bytes(size: number, what: string): Uint8Array {
    this.need(size, what);
    const slice = this.data.subarray(this.offset, this.offset + size);
    this.offset += size;
    return slice;
  }

  str8(what: string): string {
    const length = this.u8(what);
    try {
      return utf8Decoder.decode(this.bytes(length, what));
    } catch (error) {
      if (error instanceof FormatError) throw error;
      throw new FormatError(`${what} is not valid UTF-8`);
    }
  }

  bytes16(what: string): Uint8Array {
    return this.bytes(this.u16(what), what);
  }

  bytes32(what: string, max: number): Uint8Array {
    const length = this.u32(what);
    if (length > max) throw new FormatError(`${what} longer than ${max} bytes`);
    return this.bytes(length, what);
  }

  /** A view of everything read since `start`. */
  since(start: number): Uint8Array {
    return this.data.subarray(start, this.offset);
  }

  get remaining(): number {
    return this.data.length - this.offset;
  }

  /** Throws unless every byte was consumed: trailing garbage is an error, not ignored. */
  end(what: string): void {
    if (this.remaining !== 0) throw new FormatError(`${this.remaining} unexpected bytes after ${what}`);
  }
}

const HEX_DIGITS = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX_DIGITS[bytes[i]!];
  return out;
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/.test(hex)) throw new FormatError("not lower-case hex");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Byte-wise equality of public values (digests, ids); secrets need a constant-time compare instead. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * SHA-256, synchronous and identical in the Worker and in Node. The digests hashed here are a few hundred
 * bytes at most (member lists, key commitments); WebCrypto's promise would cost more than the hash.
 */
export function sha256(data: Uint8Array): Uint8Array {
  return nobleSha256(data);
}

export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/**
 * How many bytes utf8(text) would be, without encoding it: lets a writer size its buffer exactly. A lone
 * surrogate counts 3, as TextEncoder writes it as U+FFFD.
 */
export function utf8Length(text: string): number {
  let size = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) size += 1;
    else if (unit >= 0xd800 && unit <= 0xdbff && isLowSurrogate(text.charCodeAt(i + 1))) {
      size += 2; // the pair: 2 units, 4 bytes
      i++;
    } else size += 2;
  }
  return size;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}
