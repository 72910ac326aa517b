// What the page and its scrypt worker (scrypt-worker.ts) say to each other.

export interface ScryptRequest {
  id: number;
  password: Uint8Array;
  salt: Uint8Array;
  N: number;
  r: number;
  p: number;
  length: number;
}

export type ScryptReply = { id: number; key: Uint8Array } | { id: number; error: string };
