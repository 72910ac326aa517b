// The one identity every load user shares (generating 1,000 RSA-3072 keys would take minutes), its
// signup body, and real sealing and opening with the client's crypto module (client/crypto).
//
// The server checks that public keys are well-formed, not that they are unique, so sharing is invisible
// to it; each sender still has its own SenderKeyring and each receiver its own UnwrapCache.

import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import {
  DEVICE_ID_BYTES,
  SenderKeyring,
  UnwrapCache,
  derivePasswordKeys,
  exportIdentity,
  fingerprint,
  generateIdentity,
  importPublicKeys,
  openEnvelope,
  readDelivery,
  sealMessage,
  sealPrivateKeys,
  toBase64,
  type Identity,
  type Recipient,
} from "../../client/crypto/index.js";
import type { PublicKeys, SignupRequest, UserResponse } from "../../protocol/http.js";

export interface SharedIdentity {
  identity: Identity;
  publicKeys: PublicKeys;
  fingerprint: string;
  /**
   * Everything in a signup body but the username: one KDF run for all users, under one template account.
   * The server cannot tell (it never sees how authKey was derived), and no bench user logs in through a client.
   */
  signupTemplate: Omit<SignupRequest, "username">;
}

export async function makeSharedIdentity(): Promise<SharedIdentity> {
  const identity = await generateIdentity();
  const exported = await exportIdentity(identity);
  const publicKeys = { encryption: exported.encryptionPublic, signing: exported.signingPublic };
  const keys = await derivePasswordKeys("telepound bench password", {
    origin: "http://bench.invalid",
    username: "bench",
  });
  return {
    identity,
    publicKeys,
    fingerprint: fingerprint(publicKeys),
    signupTemplate: {
      authKey: toBase64(keys.authKey),
      publicKeys,
      sealedPrivateKeys: sealPrivateKeys(keys.sealingKey, {
        encryptionPrivate: exported.encryptionPrivate,
        signingPrivate: exported.signingPrivate,
      }),
    },
  };
}

/** Recipients from a /v1/users/lookup answer, keys imported and checked once per distinct key set. */
export async function recipientsFrom(users: readonly UserResponse[]): Promise<Recipient[]> {
  const imported = new Map<string, Recipient["encryptionKey"]>();
  const recipients: Recipient[] = [];
  for (const user of users) {
    const print = fingerprint(user.publicKeys);
    let key = imported.get(print);
    if (!key) {
      key = (await importPublicKeys(user.publicKeys)).encryption;
      imported.set(print, key);
    }
    recipients.push({ username: user.username, encryptionKey: key, fingerprint: print });
  }
  return recipients;
}

export interface Sealed {
  frame: Buffer;
  id: string;
}

/** One sending device: its keyring, message counter and per-conversation sequences, sealing real envelopes. */
export class Sender {
  private readonly keyring = new SenderKeyring();
  private counter = 0;
  readonly deviceId = randomBytes(DEVICE_ID_BYTES);
  /** The last sequence sealed, by conversation ("u:USER" or "g:GROUP", as the CLI counts them). */
  private readonly sequences = new Map<string, number>();

  constructor(
    private readonly shared: SharedIdentity,
    readonly username: string,
  ) {}

  /** A direct message to `to`, whose pinned key is the shared identity's. */
  async direct(to: string, text: string): Promise<Sealed> {
    const recipient = {
      username: to,
      encryptionKey: this.shared.identity.encryption.publicKey,
      fingerprint: this.shared.fingerprint,
    };
    return this.seal("direct", to, 0, [recipient], text);
  }

  /** A group message sealed for every member at `epoch`, the sender included. */
  async group(group: string, epoch: number, members: Recipient[], text: string): Promise<Sealed> {
    return this.seal("group", group, epoch, members, text);
  }

  private async seal(
    kind: "direct" | "group",
    target: string,
    epoch: number,
    recipients: Recipient[],
    text: string,
  ): Promise<Sealed> {
    const conversation = `${kind === "direct" ? "u" : "g"}:${target}`;
    const sequence = (this.sequences.get(conversation) ?? 0) + 1;
    this.sequences.set(conversation, sequence);
    const sealed = await sealMessage({
      signingPrivateKey: this.shared.identity.signing.privateKey,
      sender: this.username,
      kind,
      target,
      epoch,
      recipients,
      payload: { text },
      counter: ++this.counter,
      deviceId: this.deviceId,
      sequence,
      keyring: this.keyring,
    });
    return {
      frame: Buffer.from(sealed.frame.buffer, sealed.frame.byteOffset, sealed.frame.length),
      id: sealed.messageId,
    };
  }
}

/**
 * One receiving device: verifies and opens deliveries with openEnvelope, against the shared identity's
 * signing key as every sender's pinned key. Opening runs one message per event-loop turn, after socket
 * I/O, so arrival timestamps are taken before any crypto; `drained()` waits until every one is opened.
 */
export class Opener {
  private readonly cache = new UnwrapCache();
  private readonly queue: Buffer[] = [];
  private running = false;
  private idle: Array<() => void> = [];
  opened = 0;

  constructor(
    private readonly shared: SharedIdentity,
    readonly me: string,
    private readonly onError: (error: Error) => void,
    private readonly group?: { members: string[]; epoch: number },
  ) {}

  push(frame: Buffer): void {
    this.queue.push(frame);
    if (!this.running) {
      this.running = true;
      setImmediate(() => void this.run());
    }
  }

  drained(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private async run(): Promise<void> {
    while (this.queue.length > 0) {
      const frame = this.queue.shift()!;
      try {
        const opened = await openEnvelope(readDelivery(frame), {
          me: this.me,
          encryptionPrivateKey: this.shared.identity.encryption.privateKey,
          senderSigningKey: this.shared.identity.signing.publicKey,
          unwrapCache: this.cache,
          expectedMembers: this.group?.members,
          expectedEpoch: this.group?.epoch,
        });
        if (!opened.payload.text.startsWith("bench "))
          throw new Error("opened a message with unexpected text");
        this.opened++;
      } catch (error) {
        this.onError(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      // Yield to socket I/O between messages.
      if (this.queue.length > 0) await new Promise((resolve) => setImmediate(resolve));
    }
    this.running = false;
    for (const resolve of this.idle.splice(0)) resolve();
  }
}

/** A message text of `bytes` bytes (ASCII), recognisable after opening. */
export function benchText(index: number, bytes = 100): string {
  const head = `bench ${index} `;
  return head + "x".repeat(Math.max(0, bytes - head.length));
}
