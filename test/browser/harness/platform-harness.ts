// Runs in the test page: the browser adapter (web-client/platform/) and the client core, reachable from
// the test as `window.harness`, every call taking and returning plain data (hex for bytes).

import { toHex, fromHex } from "../../../protocol/bytes.js";
import { sha256 } from "@noble/hashes/sha2.js";
import type { Claim, HomeStorage } from "../../../client/platform.js";
import type { HistoryQuery, HistoryStore, NewEntry } from "../../../client/store/history.js";
import type { ShownMessage } from "../../../client/events.js";
import { TelepoundClient } from "../../../client/telepound-client.js";
import { type BrowserPlatform, browserPlatform } from "../../../web-client/platform/index.js";

let platform: BrowserPlatform | null = null;
const homes = new Map<string, HomeStorage>();
const histories = new Map<string, HistoryStore>();
const claims = new Map<string, Claim>();
const clients = new Map<string, TelepoundClient>();
const received = new Map<string, ShownMessage[]>();

function ready(): BrowserPlatform {
  if (!platform) throw new Error("harness.setup was not called");
  return platform;
}

function home(location: string): HomeStorage {
  let found = homes.get(location);
  if (!found) homes.set(location, (found = ready().home(location)));
  return found;
}

async function history(location: string, owner: string): Promise<HistoryStore> {
  const key = `${location}\0${owner}`;
  let found = histories.get(key);
  if (!found) histories.set(key, (found = await home(location).openHistory(owner)));
  return found;
}

const harness = {
  /** The platform, with scrypt in a module worker made from `workerSource` (the bundled scrypt-worker.ts). */
  setup(workerSource: string): void {
    const url = URL.createObjectURL(new Blob([workerSource], { type: "text/javascript" }));
    platform = browserPlatform({ scryptWorkerUrl: url });
  },

  // ---- documents and records

  readDocument: (location: string, name: string) => home(location).read(name),
  writeDocument: (location: string, name: string, text: string) => home(location).write(name, text),
  removeDocument: (location: string, name: string) => home(location).remove(name),
  describe: (location: string, name: string) => home(location).describe(name),

  async listRecords(location: string, path: string[]) {
    return (await home(location).records(path).list()).map((entry) => entry.name).sort();
  },
  async readRecord(location: string, path: string[], name: string) {
    const bytes = await home(location).records(path).read(name);
    return bytes === null ? null : toHex(bytes);
  },
  writeRecord: (location: string, path: string[], name: string, hex: string) =>
    home(location).records(path).write(name, fromHex(hex)),
  removeRecordNow(location: string, path: string[], name: string): void {
    home(location).records(path).removeNow(name);
  },

  // ---- history

  async record(location: string, owner: string, entries: NewEntry[]) {
    await (await history(location, owner)).record(entries);
  },
  async list(location: string, owner: string, query: HistoryQuery) {
    return (await history(location, owner)).list(query);
  },
  /** Two histories opened at once on a database that does not exist yet. */
  async openTwiceAtOnce(location: string, owner: string, entry: NewEntry) {
    const [one, two] = await Promise.all([
      home(location).openHistory(owner),
      home(location).openHistory(owner),
    ]);
    await one.record([entry]);
    const texts = (await two.list({ limit: 5 })).map((found) => found.text);
    one.close();
    two.close();
    return texts;
  },

  // ---- locks

  /** Takes the home's short lock and resolves once it has it; it is let go after `holdMs`. */
  holdLock(location: string, holdMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      home(location)
        .withLock(async () => {
          resolve(Date.now());
          await new Promise((done) => setTimeout(done, holdMs));
        })
        .catch(reject);
    });
  },
  /** When this page got the home's short lock. */
  lockedAt: (location: string) => home(location).withLock(async () => Date.now()),
  async lockError(location: string) {
    return home(location)
      .withLock(async () => "taken")
      .catch((error: Error) => error.name);
  },
  async claim(location: string, command: string) {
    const claim = await home(location).claimReceiver(command);
    if ("release" in claim) {
      claims.set(location, claim);
      return "claimed";
    }
    return claim;
  },
  async release(location: string) {
    await claims.get(location)?.release();
    claims.delete(location);
  },

  // ---- received files (OPFS) and picked files

  async receiveFile(folder: string, name: string, pieces: number[], commit: boolean) {
    const files = ready().files;
    await files.ensureFolder(folder);
    const incoming = await files.receive(folder, name);
    const digest = sha256.create();
    let seed = 1;
    for (const size of pieces) {
      const piece = new Uint8Array(size).map(() => (seed = (seed * 1103515245 + 12345) & 0xff));
      digest.update(piece);
      await incoming.write(piece);
    }
    const sha = toHex(digest.digest());
    if (!commit) {
      await incoming.abort();
      return { path: null, sha };
    }
    return { path: await incoming.commit(), sha };
  },
  async folderEntries(folder: string) {
    const parts = folder.split("/").filter(Boolean);
    let directory = await navigator.storage.getDirectory();
    try {
      for (const part of parts) directory = await directory.getDirectoryHandle(part);
    } catch {
      return null;
    }
    const names: string[] = [];
    for await (const name of (directory as unknown as { keys(): AsyncIterable<string> }).keys())
      names.push(name);
    return names.sort();
  },
  /** The SHA-256 and size of a received file as a download: fetched back through its object URL. */
  async download(path: string) {
    const url = await ready().files.downloadUrl(path);
    try {
      const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
      return { size: bytes.length, sha: toHex(sha256(bytes)) };
    } finally {
      URL.revokeObjectURL(url);
    }
  },
  statFile: (path: string) => ready().files.stat(path),
  deleteReceived: (path: string) => ready().files.deleteReceived(path),
  /** A picked File of `size` bytes registered, then read back through openForSending in `chunk` pieces. */
  async pickAndRead(name: string, size: number, chunk: number) {
    const content = new Uint8Array(size).map((_, i) => (i * 7) & 0xff);
    const files = ready().files;
    const path = files.register(new File([content], name));
    const info = await files.stat(path);
    const reader = await files.openForSending(path);
    const buffer = new Uint8Array(chunk);
    const digest = sha256.create();
    let position = 0;
    for (;;) {
      const read = await reader.read(buffer, position, chunk);
      if (read === 0) break;
      digest.update(buffer.subarray(0, read));
      position += read;
    }
    await reader.close();
    files.forget(path);
    const gone = await files.stat(path).then(
      () => "still there",
      (error: { code?: string }) => error.code,
    );
    return {
      path,
      info,
      baseName: files.baseName(path),
      read: position,
      sha: toHex(digest.digest()),
      expected: toHex(sha256(content)),
      gone,
    };
  },

  // ---- crypto

  /** scrypt through the worker, and how many 10 ms ticks the page's own thread ran meanwhile. */
  async scrypt(passwordHex: string, saltHex: string, N: number, r: number, p: number, length: number) {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const started = performance.now();
    try {
      const key = await ready().crypto.scrypt(fromHex(passwordHex), fromHex(saltHex), { N, r, p }, length);
      return { key: toHex(key), ticks, ms: performance.now() - started };
    } finally {
      clearInterval(timer);
    }
  },

  // ---- the whole client

  async signup(location: string, server: string, username: string, password: string) {
    const client = await TelepoundClient.open(ready(), { home: location, server });
    clients.set(location, client);
    return client.signup(username, { password: async () => password, deviceName: "chromium" });
  },
  /** A client opened afresh on an existing home (as after a reload). */
  async reopen(location: string, server: string) {
    await clients.get(location)?.close();
    const client = await TelepoundClient.open(ready(), { home: location, server });
    clients.set(location, client);
    return (await client.whoami()).username;
  },
  async send(location: string, user: string, text: string) {
    const sent = await clients.get(location)!.send({ user }, { text });
    return { id: sent.id, status: sent.status };
  },
  /** Sends `user` a picked file of `size` generated bytes; resolves with its SHA-256 (hex). */
  async sendFile(location: string, user: string, name: string, size: number) {
    const content = new Uint8Array(size);
    for (let i = 0; i < size; i++) content[i] = (i * 31 + (i >> 11)) & 0xff;
    const path = ready().files.register(new File([content], name));
    try {
      const sent = await clients.get(location)!.send({ user }, { text: `file ${name}`, file: path });
      return { status: sent.status, sha: toHex(sha256(content)) };
    } finally {
      ready().files.forget(path);
    }
  },
  /** Receives in backlog mode until `count` messages came (or `timeoutMs`), and returns them. */
  async receive(location: string, count: number, timeoutMs: number) {
    const client = clients.get(location)!;
    const messages: ShownMessage[] = [];
    received.set(location, messages);
    const gotAll = new Promise<void>((resolve) => {
      const stop = client.events.on("message", (message) => {
        messages.push(message);
        if (messages.length >= count) {
          stop();
          resolve();
        }
      });
    });
    const reception = await client.receive({ command: "test", mode: "backlog" });
    await Promise.race([gotAll, new Promise((resolve) => setTimeout(resolve, timeoutMs))]);
    await reception.finish();
    return messages.map((message) => ({
      from: message.from,
      to: message.to,
      text: message.text,
      ...(message.file ? { file: message.file } : {}),
    }));
  },
  async history(location: string, query: HistoryQuery) {
    return clients.get(location)!.history(query);
  },
  async logoutAndWipe(location: string) {
    const client = clients.get(location)!;
    await client.logout();
    await client.close();
    clients.delete(location);
    for (const [key, store] of histories) if (key.startsWith(`${location}\0`)) store.close();
    homes.delete(location);
    await ready().wipeHome(location);
    return (await indexedDB.databases()).map((database) => database.name);
  },

  /** What a home keeps of the keys: identity.json's key fields, and the vault's keys as CryptoKeys. */
  async keysKept(location: string) {
    const identity = JSON.parse((await home(location).read("identity.json")) ?? "null") as {
      keys: Record<string, string>;
    } | null;
    const vaulted = await home(location).keyVault?.load();
    const describeKey = (key: object) => {
      const { type, extractable, algorithm } = key as CryptoKey;
      return { type, extractable, algorithm: algorithm.name };
    };
    return {
      identityKeys: identity ? Object.keys(identity.keys).sort() : null,
      vault: vaulted
        ? [vaulted.encryption.privateKey, vaulted.encryption.publicKey, vaulted.signing.privateKey].map(
            describeKey,
          )
        : null,
    };
  },

  // ---- the network directly

  /** A socket to `url` with this token: how it ended (opened, refused with a status, or failed). */
  socketOutcome(url: string, token: string, maxPayloadBytes = 1 << 20) {
    return new Promise<Record<string, unknown>>((resolve) => {
      const outcome: Record<string, unknown> = {};
      const socket = ready().network.openSocket(
        new URL(url),
        { headers: { authorization: `Bearer ${token}` }, maxPayloadBytes, handshakeTimeoutMs: 10_000 },
        {
          onMessage: (data) => {
            outcome.messages = ((outcome.messages as number | undefined) ?? 0) + 1;
            outcome.first ??= typeof data === "string" ? data.slice(0, 200) : `binary ${data.length}`;
            if (!outcome.closing) {
              outcome.closing = true;
              socket.close(1000, "done");
            }
          },
          onClose: (code, reason) => resolve({ ...outcome, closed: { code, reason } }),
          onError: (error) => (outcome.error = String((error as { code?: string }).code ?? error)),
          onRefused: (status, _headers, body) => (outcome.refused = { status, body: body.slice(0, 200) }),
        },
      );
    });
  },
};

export type Harness = typeof harness;

declare global {
  interface Window {
    harness: typeof harness;
  }
}

window.harness = harness;
