// Encrypted file transfer end to end: 100 MiB sealed as the CLI seals files (64 KiB secretbox chunks,
// nonce = prefix ‖ u64 BE index, ciphertext SHA-256), uploaded in 8 MiB parts, downloaded, opened, compared.
//
// Two clients: the CLI's own streaming sealFile/openFile (one thread), and the same format on a pool of
// worker threads. The goal compares each with raw secretbox on one core, measured here first; the bare
// relay and the engine floor (bench/workerd-floor/, through local R2) move the same number of bytes over
// the same four routes with no crypto.

import { createHash, randomFillSync } from "node:crypto";
import { availableParallelism } from "node:os";
import nacl from "tweetnacl";
import {
  type FileDigest,
  type FileSecrets,
  newFileSecrets,
  openFile,
  sealFile,
} from "../../client/crypto/index.js";
import { FILE_CHUNK_BYTES, sealedFileSize } from "../../protocol/limits.js";
import { completeBlob, createBlob, deleteBlob, fetchBlob, putBlobPart, type Target } from "../lib/api.js";
import type { BenchContext } from "../lib/context.js";
import { CryptoPool, SEALED_CHUNK_BYTES, sealChunks } from "../lib/file-crypto.js";
import type { Usage } from "../lib/meter.js";
import { type ScenarioResult, cpuColumns, serverCpu, usageReport } from "../lib/report.js";
import { MIB, round } from "../lib/stats.js";

const FILE_BYTES = 100 * MIB;
/** How the plaintext is read, as from a file: 1 MiB at a time. */
const READ_BYTES = MIB;
/** Chunks per worker job: 2 MiB, small enough to keep every thread busy, big enough to amortise posting. */
const CHUNKS_PER_JOB = 32;
/** Parts uploading at once. */
const PARALLEL_PARTS = 2;
const SENDER = "file-a";
const RECIPIENT = "file-b";

/** How a client turns plaintext into what it uploads, and a downloaded stream back into plaintext. */
interface Codec {
  name: string;
  /** Bytes uploaded for `plaintextBytes` of plaintext. */
  size(plaintextBytes: number): number;
  seal(plaintext: Uint8Array): AsyncIterable<Uint8Array>;
  /** Yields plaintext in order; throws if anything fails to open or the ciphertext digest differs. */
  open(download: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array>;
}

/**
 * The best rate any client of any server design could reach here: storing and fetching the bytes costs at
 * least what it cost the engine floor (its workerds, wrangler and the client, per MiB), sealing and opening
 * cost at least the raw secretbox rates, and at best all of it overlaps perfectly on every core.
 */
function cpuBound(
  floorUsage: Usage,
  mib: number,
  rawSealMBs: number,
  rawOpenMBs: number,
  cores: number,
): { mbPerSecond: number; cpuMsPerMiB: number; floorMsPerMiB: number; cryptoMsPerMiB: number } {
  const roles = ["floor-runtime", "floor-proxy", "wrangler", "generator"] as const;
  const floorMs = roles.reduce((sum, role) => sum + (floorUsage.cpuMs[role] ?? 0), 0);
  const floorMsPerMiB = floorMs / mib;
  const cryptoMsPerMiB = 1000 / rawSealMBs + 1000 / rawOpenMBs;
  const cpuMsPerMiB = floorMsPerMiB + cryptoMsPerMiB;
  return { mbPerSecond: (cores * 1000) / cpuMsPerMiB, cpuMsPerMiB, floorMsPerMiB, cryptoMsPerMiB };
}

function* pieces(bytes: Uint8Array, size: number): Generator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.subarray(offset, offset + size);
}

/**
 * The plaintext as a file read would deliver it: a piece at a time with an event-loop turn in between, so
 * uploads in flight keep moving while the next piece is sealed (a synchronous source would starve them).
 */
async function* fileReads(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  for (const piece of pieces(bytes, READ_BYTES)) {
    await new Promise((resolve) => setImmediate(resolve));
    yield piece;
  }
}

/** The CLI's streaming crypto (client/crypto/file.ts), exactly as `send --file` / `inbox --out` run it. */
function cliCodec(): Codec {
  const secrets: FileSecrets = newFileSecrets();
  const sealed: FileDigest = { ciphertextSha256: "", plaintextSha256: "" };
  return {
    name: "the CLI's sealFile/openFile, 1 thread",
    size: sealedFileSize,
    seal: (plaintext) => sealFile(fileReads(plaintext), plaintext.length, secrets, sealed),
    open: (download) =>
      openFile(
        download,
        { ...secrets, size: FILE_BYTES, sha256: sealed.ciphertextSha256 },
        { ciphertextSha256: "", plaintextSha256: "" },
      ),
  };
}

/** The same format with chunk runs sealed and opened on worker threads, in order, a few runs ahead. */
function poolCodec(pool: CryptoPool): Codec {
  const key = nacl.randomBytes(32);
  const prefix = nacl.randomBytes(16);
  let digest = "";
  const ahead = pool.size * 2;
  return {
    name: `the same format on ${pool.size} worker threads`,
    size: sealedFileSize,
    async *seal(plaintext) {
      const hash = createHash("sha256");
      const runs = [...pieces(plaintext, CHUNKS_PER_JOB * FILE_CHUNK_BYTES)];
      const jobs: Array<Promise<Uint8Array>> = [];
      let next = 0;
      const submit = () => {
        while (next < runs.length && jobs.length < ahead) {
          jobs.push(
            pool.run({ op: "seal", key, prefix, firstIndex: next * CHUNKS_PER_JOB, data: runs[next]! }),
          );
          next++;
        }
      };
      submit();
      while (jobs.length > 0) {
        const sealed = await jobs.shift()!;
        submit();
        hash.update(sealed);
        yield sealed;
      }
      digest = hash.digest("hex");
    },
    async *open(download) {
      const hash = createHash("sha256");
      const opening: Array<Promise<Uint8Array>> = [];
      const cutter = new PartCutter(CHUNKS_PER_JOB * SEALED_CHUNK_BYTES);
      let run = 0;
      const submit = (sealed: Uint8Array) => {
        hash.update(sealed);
        opening.push(pool.run({ op: "open", key, prefix, firstIndex: run++ * CHUNKS_PER_JOB, data: sealed }));
      };
      for await (const bytes of download) {
        for (const sealed of cutter.push(bytes)) {
          submit(sealed);
          while (opening.length > ahead) yield await opening.shift()!;
        }
      }
      const rest = cutter.finish();
      if (rest) submit(rest);
      while (opening.length > 0) yield await opening.shift()!;
      if (hash.digest("hex") !== digest) throw new Error("the ciphertext's SHA-256 does not match");
    },
  };
}

/** No crypto: what the bare relay moves (as many bytes as Telepound gets sealed). */
const plainCodec: Codec = {
  name: "no crypto",
  size: (bytes) => bytes,
  seal: (plaintext) => fileReads(plaintext),
  open: (download) => download,
};

/** Cuts a stream of byte runs into pieces of exactly `size` bytes (the last one shorter). */
class PartCutter {
  private pieces: Uint8Array[] = [];
  private held = 0;

  constructor(private readonly size: number) {}

  push(bytes: Uint8Array): Uint8Array[] {
    this.pieces.push(bytes.slice());
    this.held += bytes.length;
    const out: Uint8Array[] = [];
    while (this.held >= this.size) out.push(this.take(this.size));
    return out;
  }

  finish(): Uint8Array | null {
    return this.held > 0 ? this.take(this.held) : null;
  }

  private take(size: number): Uint8Array {
    const out = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      const piece = this.pieces[0]!;
      const used = Math.min(piece.length, size - filled);
      out.set(piece.subarray(0, used), filled);
      filled += used;
      if (used === piece.length) this.pieces.shift();
      else this.pieces[0] = piece.subarray(used);
    }
    this.held -= size;
    return out;
  }
}

/** Keeps at most `limit` tasks running; `add` waits for room. */
class Limiter {
  private readonly running = new Set<Promise<void>>();
  constructor(private readonly limit: number) {}
  async add(work: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.limit) await Promise.race(this.running);
    const task = work().finally(() => this.running.delete(task));
    this.running.add(task);
  }
  async done(): Promise<void> {
    await Promise.all(this.running);
  }
}

async function* streamOf(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    yield value;
  }
}

interface Run {
  mbPerSecond: number;
  uploadSeconds: number;
  downloadSeconds: number;
  usage: Usage;
}

async function transfer(
  ctx: BenchContext,
  target: Target,
  codec: Codec,
  plaintext: Uint8Array,
): Promise<Run> {
  const senderToken = target.token(SENDER);
  const recipientToken = target.token(RECIPIENT);
  const mark = ctx.reloadMark();
  let uploadSeconds = 0;
  const { usage, result: downloadSeconds } = await ctx.measure("file-transfer", target, async () => {
    const start = performance.now();
    const blob = await createBlob(target.origin, senderToken, RECIPIENT, codec.size(plaintext.length));
    const cutter = new PartCutter(blob.partBytes);
    const uploads = new Limiter(PARALLEL_PARTS);
    let partNumber = 0;
    const upload = (part: Uint8Array) => {
      const number = ++partNumber;
      return uploads.add(() => putBlobPart(target.origin, senderToken, blob.id, number, part));
    };
    for await (const sealed of codec.seal(plaintext))
      for (const part of cutter.push(sealed)) await upload(part);
    const tail = cutter.finish();
    if (tail) await upload(tail);
    await uploads.done();
    if (partNumber !== blob.parts)
      throw new Error(`uploaded ${partNumber} parts, the server expects ${blob.parts}`);
    await completeBlob(target.origin, senderToken, blob.id);
    uploadSeconds = (performance.now() - start) / 1000;

    const downloadStart = performance.now();
    const download = streamOf(await fetchBlob(target.origin, recipientToken, blob.id));
    let verified = 0;
    for await (const opened of codec.open(download)) {
      if (Buffer.compare(opened, plaintext.subarray(verified, verified + opened.length)) !== 0) {
        throw new Error(`file bytes differ after offset ${verified}`);
      }
      verified += opened.length;
    }
    if (verified !== plaintext.length) throw new Error(`got ${verified} bytes back of ${plaintext.length}`);
    const seconds = (performance.now() - downloadStart) / 1000;
    await deleteBlob(target.origin, recipientToken, blob.id);
    return seconds;
  });
  ctx.checkNoReload(mark, "file transfer");
  return {
    mbPerSecond: plaintext.length / MIB / (uploadSeconds + downloadSeconds),
    uploadSeconds,
    downloadSeconds,
    usage,
  };
}

export async function fileTransfer(ctx: BenchContext): Promise<ScenarioResult> {
  const plaintext = randomFillSync(new Uint8Array(FILE_BYTES));
  ctx.log("file transfer: raw secretbox on one core");
  const key = nacl.randomBytes(32);
  const nonce = nacl.randomBytes(24);
  let start = performance.now();
  const boxes = [...pieces(plaintext, FILE_CHUNK_BYTES)].map((chunk) => nacl.secretbox(chunk, nonce, key));
  const rawSealMBs = FILE_BYTES / MIB / ((performance.now() - start) / 1000);
  start = performance.now();
  for (const box of boxes) nacl.secretbox.open(box, nonce, key);
  const rawOpenMBs = FILE_BYTES / MIB / ((performance.now() - start) / 1000);
  ctx.log(`file transfer: raw secretbox seal ${round(rawSealMBs)} MB/s, open ${round(rawOpenMBs)} MB/s`);

  // The pool must produce exactly the CLI's bytes, or it measures some other format.
  const sample = plaintext.subarray(0, 3 * FILE_CHUNK_BYTES + 5);
  const secrets = newFileSecrets();
  const cliSealed: Uint8Array[] = [];
  for await (const chunk of sealFile([sample], sample.length, secrets, {
    ciphertextSha256: "",
    plaintextSha256: "",
  })) {
    cliSealed.push(chunk);
  }
  if (
    Buffer.compare(Buffer.concat(cliSealed), sealChunks(secrets.key, secrets.noncePrefix, 0, sample)) !== 0
  ) {
    throw new Error("file transfer: the worker pool's chunk format differs from the CLI's");
  }

  ctx.log(`file transfer: ${FILE_BYTES / MIB} MiB through Telepound with the CLI's sealFile/openFile`);
  const cli = await transfer(ctx, ctx.system, cliCodec(), plaintext);
  ctx.log(
    `file transfer: ${round(cli.mbPerSecond)} MB/s (up ${round(cli.uploadSeconds)} s, down ${round(cli.downloadSeconds)} s)`,
  );
  const threads = availableParallelism();
  const pool = new CryptoPool(threads);
  let pooled: Run;
  try {
    ctx.log(`file transfer: ${FILE_BYTES / MIB} MiB through Telepound, crypto on ${threads} worker threads`);
    pooled = await transfer(ctx, ctx.system, poolCodec(pool), plaintext);
  } finally {
    await pool.close();
  }
  ctx.log(
    `file transfer: ${round(pooled.mbPerSecond)} MB/s (up ${round(pooled.uploadSeconds)} s, down ${round(pooled.downloadSeconds)} s)`,
  );
  ctx.log("file transfer: the same number of bytes through the bare relay, no crypto");
  const relay = await transfer(ctx, ctx.relay, plainCodec, new Uint8Array(sealedFileSize(FILE_BYTES)));
  ctx.log(`file transfer: relay ${round(relay.mbPerSecond)} MB/s`);
  ctx.log("file transfer: the same number of bytes through the engine floor's local R2, no crypto");
  const floor = await transfer(ctx, ctx.floor, plainCodec, new Uint8Array(sealedFileSize(FILE_BYTES)));
  ctx.log(`file transfer: engine floor ${round(floor.mbPerSecond)} MB/s`);

  const bound = cpuBound(floor.usage, sealedFileSize(FILE_BYTES) / MIB, rawSealMBs, rawOpenMBs, threads);
  ctx.log(
    `file transfer: at most ${round(bound.mbPerSecond)} MB/s on ${threads} cores (${round(bound.cpuMsPerMiB)} ms of CPU per MiB)`,
  );
  const boundNote = `on this machine no client can beat ${round(bound.mbPerSecond)} MB/s (${round(bound.mbPerSecond / rawSealMBs, 2)}× raw): ${threads} cores over ${round(bound.cpuMsPerMiB)} ms of CPU per MiB, ${round(bound.floorMsPerMiB)} ms of it moving the bytes through the engine floor's R2 (its workerds, wrangler and the client) and ${round(bound.cryptoMsPerMiB)} ms sealing and opening at the raw rates`;
  const row = (name: string, run: Run, note: string): ScenarioResult["rows"][number] => ({
    scenario: `encrypted file, 100 MiB: ${name}`,
    metric: "seal + upload + download + open, MiB/s",
    unit: "MB/s",
    telepound: run.mbPerSecond,
    baseline: rawSealMBs,
    baselineLabel: "raw secretbox, 1 core",
    floor: floor.mbPerSecond,
    goal: "≥ 0.5× raw secretbox",
    met: run.mbPerSecond >= 0.5 * rawSealMBs,
    ...cpuColumns(run.usage),
    note: `upload ${round(run.uploadSeconds)} s, download ${round(run.downloadSeconds)} s; ${note}; ${boundNote}`,
  });
  return {
    id: "file-transfer",
    title: "Encrypted file transfer",
    rows: [
      row(
        "the CLI's sealFile/openFile",
        cli,
        "sealing and opening run one after the other on one thread, so crypto alone caps this at 0.5× raw",
      ),
      row(
        `same format, ${threads} crypto threads`,
        pooled,
        `the bare relay moves the same bytes without crypto at ${round(relay.mbPerSecond)} MB/s`,
      ),
    ],
    serverCpu: [
      serverCpu("file transfer, up + down", "MiB", FILE_BYTES / MIB, cli.usage, relay.usage, floor.usage),
    ],
    details: {
      fileBytes: FILE_BYTES,
      sealedBytes: sealedFileSize(FILE_BYTES),
      chunkBytes: FILE_CHUNK_BYTES,
      rawSecretboxMBps: { seal: round(rawSealMBs), open: round(rawOpenMBs) },
      cpuBound: Object.fromEntries(Object.entries(bound).map(([key, value]) => [key, round(value)])),
      telepoundCli: {
        mbPerSecond: round(cli.mbPerSecond),
        uploadSeconds: round(cli.uploadSeconds),
        downloadSeconds: round(cli.downloadSeconds),
        usage: usageReport(cli.usage),
      },
      telepoundPool: {
        cryptoThreads: threads,
        mbPerSecond: round(pooled.mbPerSecond),
        uploadSeconds: round(pooled.uploadSeconds),
        downloadSeconds: round(pooled.downloadSeconds),
        usage: usageReport(pooled.usage),
      },
      relay: {
        mbPerSecond: round(relay.mbPerSecond),
        uploadSeconds: round(relay.uploadSeconds),
        downloadSeconds: round(relay.downloadSeconds),
        usage: usageReport(relay.usage),
      },
      floor: {
        mbPerSecond: round(floor.mbPerSecond),
        uploadSeconds: round(floor.uploadSeconds),
        downloadSeconds: round(floor.downloadSeconds),
        usage: usageReport(floor.usage),
      },
    },
  };
}
