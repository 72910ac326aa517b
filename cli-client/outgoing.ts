// Sending one text message: resolve the recipient's pinned keys, seal under the home's lock (so the
// device counter and conversation keys are never reused or lost), upload, and wait for the server's answer.

import { CryptoError, type Payload, SenderKeyring, type SealedMessage, sealMessage } from "./crypto/index.js";
import type { Connection, UploadStatus } from "./connection.js";
import type { Contacts } from "./contacts.js";
import { RateLimitedError } from "./errors.js";
import type { Home } from "./home.js";
import type { Printer } from "./output.js";
import type { LoggedIn } from "./session.js";

/** Pauses before each retry of a rate-limited upload. */
const RATE_LIMIT_RETRY_MS = [200, 600, 1500];

export interface SentMessage {
  id: string;
  to: string;
  status: UploadStatus;
  /** The sender's clock when sealed, ms since the Unix epoch. */
  sentAt: number;
}

export interface Outbox {
  home: Home;
  me: LoggedIn;
  contacts: Contacts;
  connection: Connection;
  printer: Printer;
}

export async function sendText(outbox: Outbox, to: string, text: string): Promise<SentMessage> {
  const recipient = await outbox.contacts.resolve(to);
  const sealed = await sealWithState(outbox, (counter, keyring) =>
    sealMessage({
      signingPrivateKey: outbox.me.identity.signing.privateKey,
      sender: outbox.me.username,
      kind: "direct",
      target: to,
      epoch: 0,
      recipients: [
        { username: to, encryptionKey: recipient.keys.encryption, fingerprint: recipient.fingerprint },
      ],
      payload: { text } satisfies Payload,
      counter,
      keyring,
    }),
  );
  const status = await uploadWithRetry(outbox.connection, sealed);
  return { id: sealed.messageId, to, status, sentAt: sealed.header.sentAt };
}

/**
 * The server's flood control refuses an upload over the socket's rate by its message id and asks for a
 * retry; the same frame (same id and counter) is sent again after a pause, then the refusal stands.
 */
async function uploadWithRetry(connection: Connection, sealed: SealedMessage): Promise<UploadStatus> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await connection.sendUpload(sealed.frame, sealed.messageId);
    } catch (error) {
      const pause = RATE_LIMIT_RETRY_MS[attempt];
      if (!(error instanceof RateLimitedError) || pause === undefined) throw error;
      await new Promise((done) => setTimeout(done, pause));
    }
  }
}

/**
 * Seals with the next counter and the stored keyring, and saves both before anything is sent: a message
 * that reached the server with a counter the state file does not know would let the counter repeat.
 */
async function sealWithState(
  { home, me, printer }: Outbox,
  seal: (counter: number, keyring: SenderKeyring) => Promise<SealedMessage>,
): Promise<SealedMessage> {
  return home.withLock(async () => {
    const state = await home.read("state.json");
    const mine = state?.username === me.username ? state : { username: me.username, counter: 0 };
    let keyring = new SenderKeyring();
    if (mine.keyring !== undefined) {
      try {
        keyring = SenderKeyring.fromJSON(mine.keyring);
      } catch (error) {
        if (!(error instanceof CryptoError)) throw error;
        // Only costs a fresh conversation key per recipient: nothing already sent depends on the old ones.
        printer.warn("the stored conversation keys were unreadable; starting new ones");
      }
    }
    const counter = mine.counter + 1;
    const sealed = await seal(counter, keyring);
    await home.write("state.json", { ...mine, counter, keyring: keyring.toJSON() });
    return sealed;
  });
}
