// Users with real keys for the CLI's command tests: a logged-in home written the way signup leaves it,
// and messages sealed by another user and cut down to a delivery the way the server does.

import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { decodeUpload, encodeDelivery, signedPartWithSignature } from "../../../protocol/envelope.js";
import type { PublicKeys } from "../../../protocol/http.js";
import {
  type ExportedIdentity,
  type Identity,
  SenderKeyring,
  type SenderSequence,
  exportIdentity,
  fingerprint,
  generateIdentity,
  sealMessage,
} from "../../../cli-client/crypto/index.js";
import { Api } from "../../../cli-client/api.js";
import { Home } from "../../../cli-client/home.js";
import type { LoggedIn } from "../../../cli-client/session.js";
import { type StubServer, sendWelcome } from "./helpers.js";

export interface TestUser {
  name: string;
  identity: Identity;
  exported: ExportedIdentity;
  publicKeys: PublicKeys;
  fingerprint: string;
  /** The one device this user seals from in tests, and its last sequence per conversation. */
  deviceId: Uint8Array;
  sequences: Map<string, number>;
}

export async function makeUser(name: string): Promise<TestUser> {
  const identity = await generateIdentity();
  const exported = exportIdentity(identity);
  const publicKeys = { encryption: exported.encryptionPublic, signing: exported.signingPublic };
  return {
    name,
    identity,
    exported,
    publicKeys,
    fingerprint: fingerprint(publicKeys),
    deviceId: new Uint8Array(randomBytes(16)),
    sequences: new Map(),
  };
}

/**
 * The next device and sequence `from` seals in `conversation` ("u:USER" or "g:GROUP"), as a real client
 * counts them: receivers refuse a sequence they have shown, so each test message needs its own.
 */
export function nextSequence(from: TestUser, conversation: string): SenderSequence {
  const sequence = (from.sequences.get(conversation) ?? 0) + 1;
  from.sequences.set(conversation, sequence);
  return { deviceId: from.deviceId, sequence };
}

/** `user` logged in on `server`, for driving the client's modules (a GroupDirectory) directly. */
export function loggedInAs(server: string, user: TestUser): LoggedIn {
  return {
    username: user.name,
    session: {
      server,
      username: user.name,
      token: "t",
      sessionId: "s",
      expiresAt: Date.now() + 60_000,
    },
    server,
    api: new Api(server, "t"),
    identity: user.identity,
    exported: user.exported,
    fingerprint: user.fingerprint,
  };
}

/** A home logged in as `user` on `server`, with `pinned` users' keys already in contacts.json. */
export async function loggedInHome(
  dir: string,
  server: string,
  user: TestUser,
  pinned: TestUser[] = [],
): Promise<Home> {
  const home = new Home(dir);
  await home.write("identity.json", {
    username: user.name,
    publicKeys: user.publicKeys,
    fingerprint: user.fingerprint,
    keys: { ...user.exported },
  });
  await home.write("state.json", { username: user.name, counter: 0 });
  await home.write("contacts.json", {
    owner: user.name,
    contacts: new Map(
      pinned.map((other) => [
        other.name,
        {
          publicKeys: other.publicKeys,
          fingerprint: other.fingerprint,
          firstSeen: "2026-01-01T00:00:00.000Z",
        },
      ]),
    ),
  });
  await home.write("session.json", {
    server,
    username: user.name,
    token: `token-of-${user.name}`,
    sessionId: `session-of-${user.name}`,
    expiresAt: Date.now() + 3_600_000,
  });
  return home;
}

/**
 * Has the stub answer key lookups (GET /v1/users/NAME, POST /v1/users/lookup) with these users' keys, as
 * the real server would: sending checks each recipient's pinned keys against the server's once.
 */
export function serveKeys(server: StubServer, users: TestUser[]): void {
  const answer = (user: TestUser) => ({ username: user.name, publicKeys: user.publicKeys });
  for (const user of users) {
    server.http.set(`GET /v1/users/${user.name}`, () => ({ status: 200, body: answer(user) }));
  }
  server.http.set("POST /v1/users/lookup", (_request, body) => {
    const { usernames } = JSON.parse(body) as { usernames: string[] };
    const known = users.filter((user) => usernames.includes(user.name));
    const missing = usernames.filter((name) => !known.some((user) => user.name === name));
    return { status: 200, body: { users: known.map(answer), missing } };
  });
}

/**
 * Has the stub's sockets answer every upload: "sent" with `answer` as its status, or the frame `answer`
 * makes of the upload's id and its place in the run. Returns the uploads, decoded, as they come.
 */
export function answerUploads(
  server: StubServer,
  answer: "delivered" | "stored" | ((id: string, index: number) => object),
): ReturnType<typeof decodeUpload>[] {
  const uploads: ReturnType<typeof decodeUpload>[] = [];
  server.onSocket = (socket) => {
    sendWelcome(socket.ws);
    socket.ws.on("message", (data: Buffer, isBinary) => {
      if (!isBinary) return;
      const upload = decodeUpload(new Uint8Array(data));
      uploads.push(upload);
      const id = upload.messageIdHex;
      const frame =
        typeof answer === "function" ? answer(id, uploads.length - 1) : { type: "sent", id, status: answer };
      socket.ws.send(JSON.stringify(frame));
    });
  };
  return uploads;
}

export interface Delivery {
  frame: Uint8Array;
  id: string;
}

/** `from` seals `text` for `to`; returns the delivery frame `to` would get and its message id. */
export async function deliveryFrom(
  from: TestUser,
  to: TestUser,
  text: string,
  keyring = new SenderKeyring(),
): Promise<Delivery> {
  const sealed = await sealMessage({
    signingPrivateKey: from.identity.signing.privateKey,
    sender: from.name,
    kind: "direct",
    target: to.name,
    epoch: 0,
    recipients: [
      { username: to.name, encryptionKey: to.identity.encryption.publicKey, fingerprint: to.fingerprint },
    ],
    payload: { text },
    counter: 1,
    ...nextSequence(from, `u:${to.name}`),
    keyring,
  });
  const envelope = decodeUpload(sealed.frame);
  return {
    frame: encodeDelivery(signedPartWithSignature(envelope), envelope.slotBytes[0]!),
    id: sealed.messageId,
  };
}

/** A copy of `frame` with one ciphertext byte flipped: the signature no longer verifies. */
export function tampered(frame: Uint8Array): Uint8Array {
  const copy = new Uint8Array(frame);
  // Well inside the signed part (past the fixed header fields), before the signature and slot.
  copy[200] = copy[200]! ^ 0xff;
  return copy;
}

export async function writeRaw(home: Home, name: string, text: string): Promise<void> {
  await writeFile(join(home.dir, name), text, { mode: 0o600 });
}
