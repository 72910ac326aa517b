// File attachments on the client: a file is streamed from disk through the chunk sealer into blob parts
// (crypto/file.ts has the format), and a received one streamed from the server through the opener into a
// temporary file that only becomes the real one, under a safe and unused name, once every check passed.
//
// Memory stays flat whatever the file's size: a 64 KiB chunk at a time goes from disk to socket and from
// socket to disk. Nothing partial is left behind: a failed upload is withdrawn from the server, and a
// failed download's temporary file is deleted.

import { z } from "zod";
import { utf8 } from "../protocol/bytes.js";
import { FILE_CHUNK_BYTES, MAX_FILE_BYTES, sealedFileSize } from "../protocol/limits.js";
import { FileDescriptor } from "../protocol/payload.js";
import type { Api } from "./net/api.js";
import {
  CryptoError,
  FILE_KEY_BYTES,
  type FileDigest,
  NONCE_PREFIX_BYTES,
  fromBase64,
  newFileSecrets,
  openFile,
  sealFile,
  toBase64,
} from "./crypto/index.js";
import { CliError, ExitCode, NetworkError, NotFoundError, RefusedError, UsageError } from "./errors.js";
import { formatBytes } from "./describe.js";
import type { ClientEmitter, ShownFile } from "./events.js";
import type { FileAccess, ReadableFile } from "./platform.js";

/** Where a file goes: one user, or the members of a group at the moment of upload. */
export type FileAudience = { to: string } | { group: string };

export interface UploadedFile {
  descriptor: FileDescriptor;
  /** Hex SHA-256 of the plaintext, for the sender's own report. */
  plaintextSha256: string;
}

/** Stats `path` and refuses what cannot be sent, before anything touches the network. */
export async function checkSendable(
  files: FileAccess,
  path: string,
): Promise<{ path: string; size: number }> {
  let info: Awaited<ReturnType<FileAccess["stat"]>>;
  try {
    info = await files.stat(path);
  } catch (error) {
    throw new UsageError(
      `cannot read ${path}: ${isErrno(error, "ENOENT") ? "no such file" : errnoOf(error)}`,
    );
  }
  if (!info.isFile) throw new UsageError(`${path} is not a regular file`);
  if (info.size > MAX_FILE_BYTES) {
    throw new RefusedError(
      `too large: ${path} is ${info.size} bytes; files may be at most ${MAX_FILE_BYTES} bytes (${formatBytes(MAX_FILE_BYTES)})`,
    );
  }
  return { path: info.path, size: info.size };
}

/** What moving a file needs: the platform's files, and where its progress is told. */
export interface Transfers {
  files: FileAccess;
  events: ClientEmitter;
}

let transfers = 0;

/** Emits one transfer's progress: "start" now, then `advance` and `stop`. */
function progressOf(
  events: ClientEmitter,
  direction: "send" | "receive",
  name: string,
  size: number,
  total: number,
) {
  const transfer = ++transfers;
  let bytes = 0;
  const emit = (phase: "start" | "advance" | "end") =>
    events.emit("progress", { transfer, direction, name, phase, bytes, total, size });
  emit("start");
  return {
    advance(more: number) {
      bytes += more;
      emit("advance");
    },
    stop: () => emit("end"),
  };
}

/**
 * Encrypts the file and uploads it as a blob for `audience`, part by part; returns the descriptor to put
 * in the message. On any failure after the blob was announced it is withdrawn (best effort).
 */
export async function uploadFile(
  api: Api,
  { files, events }: Transfers,
  file: { path: string; size: number },
  audience: FileAudience,
): Promise<UploadedFile> {
  const secrets = newFileSecrets();
  const sealedSize = sealedFileSize(file.size);
  // Opened first: a file we cannot read must fail before a blob is announced for it.
  const handle = await files.openForSending(file.path).catch((error: unknown) => {
    throw new UsageError(`cannot read ${file.path}: ${errnoOf(error)}`);
  });
  let blob: Awaited<ReturnType<Api["createBlob"]>>;
  try {
    blob = await api.createBlob({ ...audience, size: sealedSize });
  } catch (error) {
    await handle.close();
    throw error;
  }
  const bar = progressOf(events, "send", files.baseName(file.path), file.size, sealedSize);
  const digest: FileDigest = { ciphertextSha256: "", plaintextSha256: "" };
  try {
    const expectedParts = Math.max(1, Math.ceil(sealedSize / blob.partBytes));
    if (blob.parts !== expectedParts) {
      throw new NetworkError(
        `protocol failure: the server wants ${blob.parts} parts; ${expectedParts} add up`,
      );
    }
    const plaintext = readExactly(handle, file.size);
    // Chunks reuse one buffer: putBlobPart has flushed each to the socket before asking for the next.
    const sealed = sealFile(plaintext, file.size, secrets, digest, { reuse: true })[Symbol.asyncIterator]();
    // Parts do not end on chunk boundaries: the rest of a chunk that crosses one opens the next part.
    let carry: Uint8Array | null = null;
    async function* partBytes(length: number): AsyncGenerator<Uint8Array> {
      let remaining = length;
      while (remaining > 0) {
        let piece = carry;
        carry = null;
        if (!piece) {
          const next = await sealed.next();
          if (next.done) throw new Error("the sealed file ended before its last part");
          piece = next.value;
        }
        if (piece.length > remaining) {
          carry = piece.subarray(remaining);
          piece = piece.subarray(0, remaining);
        }
        remaining -= piece.length;
        bar.advance(piece.length);
        yield piece;
      }
    }
    // The next part's body starts once this one's is on the wire, before the server has answered it: the
    // server storing one part overlaps with sealing and sending the next. At most two parts are in flight.
    let previous: Promise<void> = Promise.resolve();
    for (let number = 1; number <= blob.parts; number++) {
      const length = number < blob.parts ? blob.partBytes : sealedSize - blob.partBytes * (blob.parts - 1);
      let bodySent!: () => void;
      const sent = new Promise<void>((resolve) => (bodySent = resolve));
      // Streamed: one sealed chunk at a time goes from the file to the socket, never a whole part.
      const answered = api.putBlobPart(blob.id, number, length, partBytes(length), bodySent);
      answered.catch(() => undefined); // awaited below; this only keeps an early failure from going unheard
      await Promise.race([sent, answered]);
      await previous;
      previous = answered;
    }
    await previous;
    // Runs the sealer to its end, which checks the file's length and finishes the digests.
    if (carry !== null || !(await sealed.next()).done) throw new Error("the sealed file outgrew its parts");
    await api.completeBlob(blob.id);
  } catch (error) {
    await api.deleteBlob(blob.id).catch(() => undefined);
    // The file changed size while being read: the user's doing, not a crypto failure.
    if (error instanceof CryptoError) throw new UsageError(`${file.path} changed while it was being sent`);
    throw error;
  } finally {
    bar.stop();
    await handle.close();
  }
  return {
    descriptor: {
      v: 1,
      blob: blob.id,
      name: files.baseName(file.path),
      size: file.size,
      chunk: FILE_CHUNK_BYTES,
      key: toBase64(secrets.key),
      noncePrefix: toBase64(secrets.noncePrefix),
      sha256: digest.ciphertextSha256,
    },
    plaintextSha256: digest.plaintextSha256,
  };
}

/**
 * The file's first `size` bytes in FILE_CHUNK_BYTES pieces, read into one buffer that each piece reuses
 * (the sealer copies it before asking for more). A file that grew since it was measured is sent as it
 * was measured; one that shrank ends early, which the sealer reports.
 */
async function* readExactly(handle: ReadableFile, size: number): AsyncGenerator<Uint8Array> {
  const buffer = new Uint8Array(Math.min(FILE_CHUNK_BYTES, Math.max(size, 1)));
  let position = 0;
  while (position < size) {
    const bytesRead = await handle.read(buffer, position, Math.min(buffer.length, size - position));
    if (bytesRead === 0) return;
    position += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

/** Why a received file was not saved, when it is the file's fault: the message's text still stands. */
export class FileRejectedError extends CliError {
  override name = "FileRejectedError";
  constructor(message: string) {
    super(message, ExitCode.keyMismatch);
  }
}

/** How long a download may go without a byte before it is given up. */
const DOWNLOAD_IDLE_MS = 60_000;

/**
 * Downloads, decrypts and saves the file a message from `sender` describes, into `outDir` under a safe
 * name that is not taken. The descriptor, the blob's size and every chunk are checked; only then is the
 * temporary file (0600, in `outDir`) renamed into place. Throws FileRejectedError for anything that is
 * the file's (or the server's) fault, other CliErrors (unreachable, logged out) otherwise.
 */
export async function receiveFile(
  api: Api,
  { files, events }: Transfers,
  raw: unknown,
  sender: string,
  outDir: string,
): Promise<ShownFile> {
  const descriptor = parseDescriptor(raw, sender);
  const key = fromBase64(descriptor.key, "file key");
  const noncePrefix = fromBase64(descriptor.noncePrefix, "nonce prefix");
  const name = safeFileName(descriptor.name);
  const idle = new AbortController();
  let timer = setTimeout(() => idle.abort(), DOWNLOAD_IDLE_MS);
  let download: Awaited<ReturnType<Api["downloadBlob"]>>;
  try {
    download = await api.downloadBlob(descriptor.blob, idle.signal);
  } catch (error) {
    clearTimeout(timer);
    if (error instanceof RefusedError || error instanceof NotFoundError) {
      throw new FileRejectedError(error.message);
    }
    throw error;
  }
  const expected = sealedFileSize(descriptor.size);
  if (download.size !== expected) {
    clearTimeout(timer);
    await download.cancel();
    throw new FileRejectedError(`the server's file is ${download.size} bytes, the sender sealed ${expected}`);
  }
  await ensureFolder(files, outDir);
  const handle = await files.receive(outDir, name);
  const bar = progressOf(events, "receive", name, descriptor.size, expected);
  const digest: FileDigest = { ciphertextSha256: "", plaintextSha256: "" };
  let placed: string;
  try {
    const counted = (async function* () {
      for await (const chunk of download.body) {
        clearTimeout(timer);
        timer = setTimeout(() => idle.abort(), DOWNLOAD_IDLE_MS);
        bar.advance(chunk.length);
        yield chunk;
      }
    })();
    // Chunks reuse one buffer: each is written to the file before the next is opened.
    for await (const plain of openFile(
      counted,
      { key, noncePrefix, size: descriptor.size, sha256: descriptor.sha256, reuse: true },
      digest,
    )) {
      await handle.write(plain);
    }
    placed = await handle.commit();
  } catch (error) {
    await handle.abort();
    if (error instanceof CryptoError) throw new FileRejectedError(error.message);
    // Our disk, not the file: full, or the folder went away. The message stays queued for another try.
    if (
      isErrno(error, "ENOSPC") ||
      isErrno(error, "EACCES") ||
      isErrno(error, "ENOENT") ||
      isErrno(error, "EDQUOT")
    ) {
      throw new CliError(`cannot save ${name} in ${outDir}: ${errnoOf(error)}`, ExitCode.unexpected);
    }
    throw error;
  } finally {
    clearTimeout(timer);
    bar.stop();
  }
  return { name, path: placed, size: descriptor.size, sha256: digest.plaintextSha256 };
}

/** Checks the descriptor's shape and that the blob is the sender's own (ids start with the owner's name). */
export function parseDescriptor(raw: unknown, sender: string): FileDescriptor {
  const parsed = FileDescriptor.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FileRejectedError(
      `malformed file descriptor (${issue?.path.join(".") || "body"}: ${issue?.message})`,
    );
  }
  const descriptor = parsed.data;
  // Otherwise a member who knows another member's file key could pass that file off as their own.
  if (!descriptor.blob.startsWith(`${sender}.`)) {
    throw new FileRejectedError(`the file descriptor names a blob that is not ${sender}'s`);
  }
  try {
    if (fromBase64(descriptor.key, "file key").length !== FILE_KEY_BYTES)
      throw new CryptoError("file key length");
    if (fromBase64(descriptor.noncePrefix, "nonce prefix").length !== NONCE_PREFIX_BYTES) {
      throw new CryptoError("nonce prefix length");
    }
  } catch {
    throw new FileRejectedError("malformed file descriptor (key or nonce prefix)");
  }
  return descriptor;
}

/** Longest saved name, in UTF-8 bytes: file systems allow 255; room is left for " (12)". */
const MAX_NAME_BYTES = 200;

/**
 * The sender chooses the name, so it is reduced to a plain base name that cannot point elsewhere: the
 * last component after "/" or "\", without control or bidirectional-override characters, without leading
 * dots (no hidden files, no "." or "..") or spaces, shortened to MAX_NAME_BYTES; "file" if nothing is left.
 */
export function safeFileName(raw: string): string {
  let name = raw.split(/[/\\]/).pop() ?? "";
  // eslint-disable-next-line no-control-regex
  name = name.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "");
  name = name.replace(/^[.\s]+/, "").replace(/\s+$/, "");
  if (utf8(name).length > MAX_NAME_BYTES) {
    const ext = extensionOf(name);
    const keep = utf8(ext).length <= 20 ? ext : "";
    let stem = name.slice(0, name.length - keep.length);
    while (utf8(stem + keep).length > MAX_NAME_BYTES) stem = [...stem].slice(0, -1).join("");
    name = stem + keep;
  }
  return name === "" ? "file" : name;
}

/** "report.pdf", then "report (1).pdf", "report (2).pdf", …: the n-th name to try. */
export function numberedName(name: string, n: number): string {
  if (n === 0) return name;
  const ext = extensionOf(name);
  return `${name.slice(0, name.length - ext.length)} (${n})${ext}`;
}

/** ".pdf" of "report.pdf", "" of "README" or ".profile": the last dot's part, unless it starts the name. */
function extensionOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot <= 0 ? "" : name.slice(dot);
}

/** Creates the downloads folder owner-only if needed, and checks that files can be written there. */
export async function ensureFolder(files: FileAccess, dir: string): Promise<void> {
  try {
    await files.ensureFolder(dir);
  } catch (error) {
    throw new UsageError(`cannot save files in ${dir}: ${errnoOf(error)}`);
  }
}

function isErrno(error: unknown, code: string): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === code;
}

function errnoOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : error instanceof Error ? error.message : String(error);
}
