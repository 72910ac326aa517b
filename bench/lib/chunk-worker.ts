// A worker thread of CryptoPool (bench/lib/file-crypto.ts): seals or opens one run of file chunks per
// message and posts the result back, transferring the buffer instead of copying it.

import { parentPort } from "node:worker_threads";
import { type ChunkJob, openChunks, sealChunks } from "./file-crypto.js";

parentPort!.on("message", (job: ChunkJob & { id: number }) => {
  try {
    const run = job.op === "seal" ? sealChunks : openChunks;
    const data = run(job.key, job.prefix, job.firstIndex, job.data);
    parentPort!.postMessage({ id: job.id, data }, [data.buffer as ArrayBuffer]);
  } catch (error) {
    parentPort!.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) });
  }
});
