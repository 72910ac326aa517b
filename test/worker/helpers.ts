// Test helpers for the Worker and its Durable Objects, run inside workerd: sign users up through the
// real HTTP API, open real WebSockets through /v1/connect, and build envelopes the server will route.
// The server never checks the cryptography inside an envelope, so random bytes stand in for it here;
// the client's real crypto is tested in test/node.

import { env, exports } from "cloudflare:workers";
import { encodeBase64 } from "hono/utils/encode";
import { toHex } from "../../protocol/bytes.js";
import {
  type KeySlot,
  decodeDelivery,
  encodeSignedPart,
  encodeUpload,
  membersDigest,
} from "../../protocol/envelope.js";
import type { SessionResponse } from "../../protocol/http.js";
import { ShardHeaders } from "../../durable-objects/contracts.js";
import { shardStub } from "../../durable-objects/names.js";
import { parseToken, sha256Hex } from "../../worker/tokens.js";

export const BASE = "http://telepound.test";

interface TestKeys {
  encryption: string;
  signing: string;
  /** The Ed25519 private key behind `signing`: every test user shares it, and signs statements with it. */
  signingPrivate: CryptoKey;
}
let keysPromise: Promise<TestKeys> | undefined;

/** One real RSA-3072 + Ed25519 key set, made once: the server validates keys but not whose they are. */
export async function publicKeys(): Promise<{ encryption: string; signing: string }> {
  const { encryption, signing } = await testKeys();
  return { encryption, signing };
}

/** The private signing key every test user shares (see publicKeys). */
export async function signingPrivateKey(): Promise<CryptoKey> {
  return (await testKeys()).signingPrivate;
}

function testKeys(): Promise<TestKeys> {
  keysPromise ??= (async () => {
    const rsa = (await crypto.subtle.generateKey(
      { name: "RSA-OAEP", modulusLength: 3072, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      true,
      ["encrypt", "decrypt"],
    )) as CryptoKeyPair;
    const ed = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
      "sign",
      "verify",
    ])) as CryptoKeyPair;
    return {
      encryption: encodeBase64((await crypto.subtle.exportKey("spki", rsa.publicKey)) as ArrayBuffer),
      signing: encodeBase64((await crypto.subtle.exportKey("spki", ed.publicKey)) as ArrayBuffer),
      signingPrivate: ed.privateKey,
    };
  })();
  return keysPromise;
}

let counter = 0;
/** A username no other test uses. */
export function uniqueName(prefix: string): string {
  counter++;
  return `${prefix}-${Date.now().toString(36)}-${counter}`.slice(0, 32);
}

export function authKeyFor(username: string): string {
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) bytes[i] = (username.charCodeAt(i % username.length) + i) & 0xff;
  return encodeBase64(bytes.buffer);
}

export function api(path: string, init: RequestInit & { token?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.token) headers.set("Authorization", `Bearer ${init.token}`);
  if (init.body && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  return exports.default.fetch(new Request(`${BASE}${path}`, { ...init, headers }));
}

export async function signupBody(username: string, overrides: Record<string, unknown> = {}): Promise<string> {
  return JSON.stringify({
    username,
    authKey: authKeyFor(username),
    publicKeys: await publicKeys(),
    sealedPrivateKeys: encodeBase64(new Uint8Array(200).fill(1).buffer),
    ...overrides,
  });
}

export async function signup(username: string): Promise<SessionResponse> {
  const response = await api("/v1/signup", { method: "POST", body: await signupBody(username) });
  if (response.status !== 201)
    throw new Error(`signup ${username}: ${response.status} ${await response.text()}`);
  return response.json();
}

export async function login(username: string): Promise<SessionResponse> {
  const response = await api("/v1/login", {
    method: "POST",
    body: JSON.stringify({ username, authKey: authKeyFor(username) }),
  });
  if (response.status !== 200)
    throw new Error(`login ${username}: ${response.status} ${await response.text()}`);
  return response.json();
}

export type Received =
  { kind: "json"; frame: { type: string; [key: string]: unknown } } | { kind: "binary"; bytes: Uint8Array };

/** A connected test client: collects every frame and lets a test wait for the one it expects. */
export class TestSocket {
  readonly received: Received[] = [];
  private waiters: Array<() => void> = [];
  closed = false;
  closeCode: number | undefined;

  constructor(readonly ws: WebSocket) {
    // Under current compatibility dates binary frames arrive as Blob unless asked otherwise.
    (ws as unknown as { binaryType: string }).binaryType = "arraybuffer";
    ws.addEventListener("message", (event) => {
      const data = event.data;
      this.received.push(
        typeof data === "string"
          ? { kind: "json", frame: JSON.parse(data) }
          : { kind: "binary", bytes: new Uint8Array(data as ArrayBuffer) },
      );
      this.wake();
    });
    ws.addEventListener("close", (event) => {
      this.closeCode = event.code;
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** Waits until `predicate` matches a frame received after index `from`; returns that frame. */
  async waitFor(predicate: (frame: Received) => boolean, timeoutMs = 5000, from = 0): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.slice(from).find(predicate);
      if (found) return found;
      if (this.closed) throw new Error(`socket closed while waiting; got ${JSON.stringify(this.summary())}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out waiting; got ${JSON.stringify(this.summary())}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  waitForJson(type: string, from = 0): Promise<{ type: string; [key: string]: unknown }> {
    return this.waitFor((r) => r.kind === "json" && r.frame.type === type, 5000, from).then(
      (r) => (r as Extract<Received, { kind: "json" }>).frame,
    );
  }

  binaries(): Uint8Array[] {
    return this.received.flatMap((r) => (r.kind === "binary" ? [r.bytes] : []));
  }

  jsonFrames(type?: string): Array<{ type: string; [key: string]: unknown }> {
    return this.received.flatMap((r) =>
      r.kind === "json" && (!type || r.frame.type === type) ? [r.frame] : [],
    );
  }

  sendJson(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  summary(): unknown[] {
    return this.received.map((r) => (r.kind === "json" ? r.frame : `binary(${r.bytes.length})`));
  }

  close(): void {
    this.ws.close(1000, "test done");
  }
}

export async function connectSocket(
  token: string | null,
  query = "",
  env?: Env,
  extraHeaders: Record<string, string> = {},
): Promise<{ response: Response; socket?: TestSocket }> {
  const headers = new Headers({ ...extraHeaders, Upgrade: "websocket" });
  if (token) headers.set("Authorization", `Bearer ${token}`);
  const request = new Request(`${BASE}/v1/connect${query}`, { headers });
  const response = env
    ? await (await import("../../worker/index.js")).default.fetch(request, env, createContext())
    : await exports.default.fetch(request);
  const ws = response.webSocket;
  if (!ws) return { response };
  ws.accept();
  return { response, socket: new TestSocket(ws) };
}

function createContext(): ExecutionContext {
  return { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
}

/** Connects and waits for the server's welcome (and, for receiving sockets, its "synced"). */
export async function online(
  token: string,
  query = "",
  env?: Env,
  extraHeaders: Record<string, string> = {},
): Promise<TestSocket> {
  const { response, socket } = await connectSocket(token, query, env, extraHeaders);
  if (!socket) throw new Error(`connect failed: ${response.status} ${await response.text()}`);
  await socket.waitForJson("welcome");
  if (!query.includes("receive=0")) await socket.waitForJson("synced");
  return socket;
}

/**
 * Connects `session` to the shard named `shard` itself, as the Worker forwards an upgrade there, whatever
 * the balancer would pick: tests that are about where sockets are choose it. Waits for the welcome (and
 * "synced" for a receiving socket).
 */
export async function onShard(
  session: SessionResponse,
  shard: string,
  { receive = true }: { receive?: boolean } = {},
): Promise<TestSocket> {
  const token = parseToken(session.token);
  if (!token) throw new Error(`not a token: ${session.token}`);
  const headers = new Headers({
    Upgrade: "websocket",
    [ShardHeaders.user]: token.username,
    [ShardHeaders.session]: token.sessionId,
    [ShardHeaders.secretHash]: await sha256Hex(token.secret),
    [ShardHeaders.receive]: receive ? "1" : "0",
  });
  const response = await shardStub(env, shard).fetch(new Request(`${BASE}/v1/connect`, { headers }));
  const ws = response.webSocket;
  if (!ws) throw new Error(`connect to ${shard} failed: ${response.status}`);
  ws.accept();
  const socket = new TestSocket(ws);
  await socket.waitForJson("welcome");
  if (receive) await socket.waitForJson("synced");
  return socket;
}

export interface FakeEnvelope {
  frame: Uint8Array;
  id: string;
  ciphertext: Uint8Array;
}

/** An upload that is well-formed for the server; its crypto fields are random bytes. */
export async function fakeUpload(options: {
  sender: string;
  target: string;
  kind?: "direct" | "group" | "sentCopy";
  epoch?: number;
  slotsFor?: string[];
  digestFor?: string[];
  ciphertextBytes?: number;
  /** The message id to use (a random one when absent): to reuse an id someone else has seen. */
  messageId?: Uint8Array;
}): Promise<FakeEnvelope> {
  const messageId = options.messageId ?? crypto.getRandomValues(new Uint8Array(16));
  const ciphertext = crypto.getRandomValues(new Uint8Array(options.ciphertextBytes ?? 300));
  const signedPart = encodeSignedPart({
    kind: options.kind ?? "direct",
    messageId,
    sentAt: Date.now(),
    counter: 1,
    sender: options.sender,
    target: options.target,
    epoch: options.epoch ?? 0,
    membersDigest: await membersDigest(options.digestFor ?? options.slotsFor ?? [options.target]),
    keyCommitment: crypto.getRandomValues(new Uint8Array(32)),
    nonce: crypto.getRandomValues(new Uint8Array(24)),
    ciphertext,
  });
  const slots: KeySlot[] = (options.slotsFor ?? [options.target]).map((recipient) => ({
    recipient,
    conversationKeyWrap: crypto.getRandomValues(new Uint8Array(384)),
    msgKeyNonce: crypto.getRandomValues(new Uint8Array(24)),
    msgKeyBox: crypto.getRandomValues(new Uint8Array(48)),
  }));
  const frame = encodeUpload(signedPart, crypto.getRandomValues(new Uint8Array(64)), slots);
  return { frame, id: toHex(messageId), ciphertext };
}

/** Signs up one fresh user per label. */
export function users(...labels: string[]): Promise<SessionResponse[]> {
  return Promise.all(labels.map((label) => signup(uniqueName(label))));
}

/**
 * Uploads one group message sealed (with stand-in bytes) for `members` at `epoch`, and returns its id with
 * the server's answer to it ("sent" or "error").
 */
export async function postGroup(
  socket: TestSocket,
  sender: SessionResponse,
  group: string,
  epoch: number,
  members: string[],
): Promise<{ id: string; reply: Record<string, unknown> }> {
  const upload = await fakeUpload({
    sender: sender.username,
    target: group,
    kind: "group",
    epoch,
    slotsFor: [...members].sort(),
  });
  const from = socket.received.length;
  socket.ws.send(upload.frame);
  const reply = await socket.waitFor(
    (r) =>
      r.kind === "json" && (r.frame.type === "sent" || r.frame.type === "error") && r.frame.id === upload.id,
    5000,
    from,
  );
  return { id: upload.id, reply: (reply as { frame: Record<string, unknown> }).frame };
}

/** The message ids of every delivery a socket received, in order. */
export function deliveredIds(socket: TestSocket): string[] {
  return socket.binaries().map((bytes) => decodeDelivery(bytes).messageIdHex);
}
