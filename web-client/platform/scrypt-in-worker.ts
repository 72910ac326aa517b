// The page's side of the scrypt worker (scrypt-worker.ts): started on first use and kept, requests
// answered by id, so several derivations may be in flight.

import type { ScryptReply, ScryptRequest } from "./scrypt-messages.js";

export type ScryptRunner = (
  password: Uint8Array,
  salt: Uint8Array,
  cost: { N: number; r: number; p: number },
  length: number,
) => Promise<Uint8Array>;

/** scrypt in a dedicated Web Worker loaded from `workerUrl` (the built scrypt-worker.ts, a module). */
export function scryptInWorker(workerUrl: string | URL): ScryptRunner {
  let worker: Worker | null = null;
  let nextId = 1;
  const pending = new Map<number, { resolve(key: Uint8Array): void; reject(error: Error): void }>();

  const start = (): Worker => {
    const started = new Worker(workerUrl, { type: "module", name: "scrypt" });
    started.onmessage = (event: MessageEvent<ScryptReply>) => {
      const reply = event.data;
      const waiter = pending.get(reply.id);
      if (!waiter) return;
      pending.delete(reply.id);
      if ("key" in reply) waiter.resolve(reply.key);
      else waiter.reject(new Error(`scrypt failed: ${reply.error}`));
    };
    // A worker that fails to load or dies fails everything it was asked; the next request starts another.
    started.onerror = (event) => {
      event.preventDefault();
      worker = null;
      started.terminate();
      for (const waiter of pending.values())
        waiter.reject(new Error(`scrypt worker failed: ${event.message}`));
      pending.clear();
    };
    return started;
  };

  return (password, salt, { N, r, p }, length) =>
    new Promise<Uint8Array>((resolve, reject) => {
      worker ??= start();
      const id = nextId++;
      pending.set(id, { resolve, reject });
      // Copies: the caller keeps its buffers, and the worker zeroes its copy of the password.
      const request: ScryptRequest = { id, password: password.slice(), salt: salt.slice(), N, r, p, length };
      worker.postMessage(request, [request.password.buffer as ArrayBuffer]);
    });
}
