// The scrypt of password keys, run off the page's thread: N = 2^16, r = 8 takes a second or more of pure
// JavaScript (@noble/hashes), which would freeze the page. One request per message; the answer or the
// error goes back with the request's id.

import { scrypt } from "@noble/hashes/scrypt.js";
import type { ScryptReply, ScryptRequest } from "./scrypt-messages.js";

/** The worker's global scope, as much of it as is used (the DOM library does not type a worker's). */
const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<ScryptRequest>) => void) | null;
  postMessage(message: ScryptReply, transfer?: Transferable[]): void;
};

scope.onmessage = (event) => {
  const { id, password, salt, N, r, p, length } = event.data;
  try {
    const key = scrypt(password, salt, { N, r, p, dkLen: length, maxmem: 128 * N * r * p + 1024 * 1024 });
    password.fill(0);
    scope.postMessage({ id, key }, [key.buffer as ArrayBuffer]);
  } catch (error) {
    scope.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
};
