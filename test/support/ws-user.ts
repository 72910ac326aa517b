// A programmatic Telepound user for hostile, fault and load tests: signs up over HTTP with real keys
// (one key set shared by all such users: the server checks key format, not uniqueness), talks over a
// real WebSocket, sends well-formed envelopes whose crypto fields are random (the server never opens
// them), and collects what it receives. Real end-to-end crypto is exercised by the CLI tests.

import { generateKeyPairSync, randomBytes } from "node:crypto";
import WebSocket from "ws";
import { toHex } from "../../protocol/bytes.js";
import {
  type KeySlot,
  decodeDelivery,
  encodeSignedPart,
  encodeUpload,
  membersDigest,
} from "../../protocol/envelope.js";
import type { ServerFrame } from "../../protocol/frames.js";
import type { SessionResponse } from "../../protocol/http.js";

let sharedKeys: { encryption: string; signing: string } | undefined;

function publicKeys(): { encryption: string; signing: string } {
  if (!sharedKeys) {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 3072 });
    const ed = generateKeyPairSync("ed25519");
    sharedKeys = {
      encryption: rsa.publicKey.export({ type: "spki", format: "der" }).toString("base64"),
      signing: ed.publicKey.export({ type: "spki", format: "der" }).toString("base64"),
    };
  }
  return sharedKeys;
}

export async function signupUser(server: string, username: string): Promise<SessionResponse> {
  const response = await fetch(`${server}/v1/signup`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      username,
      authKey: randomBytes(32).toString("base64"),
      publicKeys: publicKeys(),
      sealedPrivateKeys: randomBytes(200).toString("base64"),
    }),
  });
  if (response.status !== 201)
    throw new Error(`signup ${username}: ${response.status} ${await response.text()}`);
  return (await response.json()) as SessionResponse;
}

export async function fakeEnvelope(
  sender: string,
  target: string,
  text = "",
): Promise<{ id: string; frame: Uint8Array }> {
  const messageId = randomBytes(16);
  const slot: KeySlot = {
    recipient: target,
    conversationKeyWrap: randomBytes(384),
    msgKeyNonce: randomBytes(24),
    msgKeyBox: randomBytes(48),
  };
  const signedPart = encodeSignedPart({
    kind: "direct",
    messageId,
    sentAt: Date.now(),
    counter: 1,
    sender,
    target,
    epoch: 0,
    membersDigest: await membersDigest([target]),
    keyCommitment: randomBytes(32),
    nonce: randomBytes(24),
    // Random bytes stand in for ciphertext; `text` only sets the length.
    ciphertext: randomBytes(Math.max(16, text.length + 16)),
  });
  return { id: toHex(messageId), frame: encodeUpload(signedPart, randomBytes(64), [slot]) };
}

type Frame = ServerFrame | { type: "binary"; id: string; sender: string; bytes: Uint8Array };

/** One user's connection. Reconnects only when asked (tests decide when the server is back). */
export class WsUser {
  readonly frames: Frame[] = [];
  /** Message ids received, in order, duplicates included. */
  readonly receivedIds: string[] = [];
  readonly receivedFrom = new Map<string, string[]>();
  private socket: WebSocket | undefined;
  private waiters: Array<() => void> = [];
  closeCode: number | undefined;

  constructor(
    readonly server: string,
    readonly session: SessionResponse,
    private readonly autoAck = true,
  ) {}

  get username(): string {
    return this.session.username;
  }

  async connect(query = ""): Promise<void> {
    this.closeCode = undefined;
    // Counted before opening: the welcome can arrive in the same tick as the open event.
    const from = this.frames.length;
    const url = `${this.server.replace(/^http/, "ws")}/v1/connect${query}`;
    const socket = new WebSocket(url, {
      headers: { Authorization: `Bearer ${this.session.token}` },
      perMessageDeflate: false,
    });
    this.socket = socket;
    socket.on("message", (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    socket.on("close", (code) => {
      this.closeCode = code;
      this.wake();
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    await this.waitFor((frame) => frame.type === "welcome", 10_000, from);
  }

  get open(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  send(data: string | Uint8Array): void {
    this.socket!.send(data);
  }

  /** Sends an upload and waits for the server's answer to it (sent or error, matched by id). */
  async upload(envelope: { id: string; frame: Uint8Array }, timeoutMs = 10_000): Promise<Frame> {
    const from = this.frames.length;
    this.send(envelope.frame);
    return this.waitFor(
      (frame) =>
        (frame.type === "sent" || frame.type === "error") && "id" in frame && frame.id === envelope.id,
      timeoutMs,
      from,
    );
  }

  async waitFor(predicate: (frame: Frame) => boolean, timeoutMs = 10_000, from = 0): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.frames.length; i++) if (predicate(this.frames[i]!)) return this.frames[i]!;
      if (this.closeCode !== undefined)
        throw new Error(`${this.username}: socket closed (${this.closeCode}) while waiting`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`${this.username}: timed out waiting for a frame`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves on the next frame or close, whichever comes first. */
  nextEvent(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    const socket = this.socket;
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      socket.once("close", () => resolve());
      socket.close(1000);
    });
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      const bytes = new Uint8Array(data);
      const delivery = decodeDelivery(bytes);
      const id = delivery.messageIdHex;
      this.frames.push({ type: "binary", id, sender: delivery.header.sender, bytes });
      this.receivedIds.push(id);
      const list = this.receivedFrom.get(delivery.header.sender) ?? [];
      list.push(id);
      this.receivedFrom.set(delivery.header.sender, list);
      if (this.autoAck) this.queueAck(id, delivery.header.kind === "group" ? delivery.header.target : "");
    } else {
      this.frames.push(JSON.parse(data.toString("utf8")) as ServerFrame);
    }
    this.wake();
  }

  /** Ids to acknowledge, by the group whose room queued them ("" for the user's home). */
  private readonly pendingAcks = new Map<string, string[]>();

  /** Acknowledges in batches: one frame per burst of deliveries and source, as a real client does. */
  private queueAck(id: string, group: string): void {
    const first = this.pendingAcks.size === 0;
    const ids = this.pendingAcks.get(group) ?? [];
    ids.push(id);
    this.pendingAcks.set(group, ids);
    if (!first) return;
    setImmediate(() => {
      for (const [source, all] of this.pendingAcks) {
        for (let i = 0; i < all.length; i += 1000) {
          const frame = { type: "ack", ids: all.slice(i, i + 1000), ...(source ? { group: source } : {}) };
          if (this.open) this.socket!.send(JSON.stringify(frame));
        }
      }
      this.pendingAcks.clear();
    });
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}
