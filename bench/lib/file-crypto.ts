// The CLI's file chunk format (client/crypto/file.ts: 64 KiB secretbox chunks, nonce = 16-byte
// prefix ‖ u64 big-endian index) over runs of chunks, and a pool of worker threads to seal and open them.
//
// Chunks are independent, so a client may use every core; the file-transfer scenario checks that these
// functions produce byte for byte what the CLI's sealFile does.

import { Worker } from "node:worker_threads";
import nacl from "tweetnacl";
import { FILE_CHUNK_BYTES } from "../../protocol/limits.js";

export const SEALED_CHUNK_BYTES = FILE_CHUNK_BYTES + nacl.secretbox.overheadLength;

export function chunkNonce(prefix: Uint8Array, index: number): Uint8Array {
  const nonce = new Uint8Array(nacl.secretbox.nonceLength);
  nonce.set(prefix);
  new DataView(nonce.buffer).setBigUint64(16, BigInt(index));
  return nonce;
}

/** Seals consecutive plaintext chunks starting at chunk `firstIndex`; returns their concatenation. */
export function sealChunks(
  key: Uint8Array,
  prefix: Uint8Array,
  firstIndex: number,
  plaintext: Uint8Array,
): Uint8Array {
  const chunks = Math.max(1, Math.ceil(plaintext.length / FILE_CHUNK_BYTES));
  const out = new Uint8Array(plaintext.length + chunks * nacl.secretbox.overheadLength);
  for (let i = 0; i < chunks; i++) {
    const chunk = plaintext.subarray(i * FILE_CHUNK_BYTES, (i + 1) * FILE_CHUNK_BYTES);
    out.set(nacl.secretbox(chunk, chunkNonce(prefix, firstIndex + i), key), i * SEALED_CHUNK_BYTES);
  }
  return out;
}

/** Inverse of sealChunks; throws if any chunk fails to open (forged, reordered or truncated). */
export function openChunks(
  key: Uint8Array,
  prefix: Uint8Array,
  firstIndex: number,
  sealed: Uint8Array,
): Uint8Array {
  const chunks = Math.ceil(sealed.length / SEALED_CHUNK_BYTES);
  const out = new Uint8Array(sealed.length - chunks * nacl.secretbox.overheadLength);
  for (let i = 0; i < chunks; i++) {
    const box = sealed.subarray(i * SEALED_CHUNK_BYTES, (i + 1) * SEALED_CHUNK_BYTES);
    const opened = nacl.secretbox.open(box, chunkNonce(prefix, firstIndex + i), key);
    if (!opened) throw new Error(`file chunk ${firstIndex + i} does not open`);
    out.set(opened, i * FILE_CHUNK_BYTES);
  }
  return out;
}

/**
 * Worker threads do not inherit the TypeScript loader this process runs under (`node --import tsx`), so
 * each one registers it before importing its entry.
 */
const WORKER_BOOTSTRAP = `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))})
  .then((tsx) => tsx.register())
  .then(() => import(${JSON.stringify(new URL("./chunk-worker.ts", import.meta.url).href)}));`;

export interface ChunkJob {
  op: "seal" | "open";
  key: Uint8Array;
  prefix: Uint8Array;
  firstIndex: number;
  data: Uint8Array;
}

/** Worker threads running sealChunks / openChunks (bench/lib/chunk-worker.ts); jobs are answered in any order. */
export class CryptoPool {
  private readonly workers: Worker[];
  private readonly waiting = new Map<
    number,
    { resolve: (data: Uint8Array) => void; reject: (error: Error) => void }
  >();
  private nextId = 0;
  private nextWorker = 0;

  constructor(readonly size: number) {
    this.workers = Array.from({ length: size }, () => {
      const worker = new Worker(WORKER_BOOTSTRAP, { eval: true });
      worker.on("message", (reply: { id: number; data?: Uint8Array; error?: string }) => {
        const waiter = this.waiting.get(reply.id);
        this.waiting.delete(reply.id);
        if (reply.error !== undefined) waiter?.reject(new Error(reply.error));
        else waiter?.resolve(reply.data!);
      });
      worker.on("error", (error) => {
        for (const waiter of this.waiting.values()) waiter.reject(error);
        this.waiting.clear();
      });
      return worker;
    });
  }

  /** Runs a job on the next worker, round robin; `job.data` is copied, the caller keeps its buffer. */
  run(job: ChunkJob): Promise<Uint8Array> {
    const id = this.nextId++;
    const worker = this.workers[this.nextWorker++ % this.workers.length]!;
    const data = job.data.slice();
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ id, ...job, data }, [data.buffer]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}
