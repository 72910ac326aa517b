// The one way the client core reaches its platform: cryptography, the home's storage, the history store,
// WebSockets, streamed HTTP uploads, files for attachments and the clock. Node's adapter is
// cli-client/platform/index.ts (nodePlatform); a browser's would be WebCrypto, IndexedDB and the browser's WebSocket.
//
// Signatures are asynchronous wherever WebCrypto's are (keys, RSA, Ed25519, scrypt, HKDF): a backend that
// can answer at once (node:crypto) simply resolves at once. Hashing is synchronous and incremental, as
// files are hashed while they stream and digests are taken inside synchronous encoders; WebCrypto has no
// incremental digest, so a browser's backend hashes with @noble/hashes.

import type { HistoryStore } from "./store/history.js";

/** A key as the platform holds it (a node:crypto KeyObject, a WebCrypto CryptoKey): opaque to the core. */
export type PlatformKey = object;

export type KeyAlgorithm = "RSA-OAEP" | "Ed25519";

export interface PlatformKeyPair {
  publicKey: PlatformKey;
  privateKey: PlatformKey;
}

/** Why a key did not import: bytes that are no key of the format, or a key of another algorithm. */
export class KeyImportError extends Error {
  override name = "KeyImportError";
  constructor(readonly reason: "malformed" | "wrong-algorithm") {
    super(reason === "malformed" ? "not a key in the expected format" : "a key of another algorithm");
  }
}

export interface Hasher {
  update(data: Uint8Array): Hasher;
  digest(): Uint8Array;
}

export interface CryptoBackend {
  /** RSA-OAEP (SHA-256, MGF1-SHA-256) with this modulus and public exponent. */
  generateRsaKeyPair(modulusBits: number, publicExponent: number): Promise<PlatformKeyPair>;
  generateEd25519KeyPair(): Promise<PlatformKeyPair>;
  /** SPKI DER; throws KeyImportError. */
  importPublicKey(der: Uint8Array, algorithm: KeyAlgorithm): Promise<PlatformKey>;
  /** PKCS#8 DER; throws KeyImportError. */
  importPrivateKey(der: Uint8Array, algorithm: KeyAlgorithm): Promise<PlatformKey>;
  exportPublicKey(key: PlatformKey): Promise<Uint8Array>;
  exportPrivateKey(key: PlatformKey): Promise<Uint8Array>;
  /** The public half of a private key. */
  publicKeyOf(privateKey: PlatformKey): Promise<PlatformKey>;
  /** An RSA key's modulus size and public exponent (what the core checks before using a key). */
  rsaParameters(key: PlatformKey): { modulusBits: number; publicExponent: number };
  /** RSA-OAEP with SHA-256 and MGF1-SHA-256; `label` is empty in Telepound and exists for test vectors. */
  rsaOaepEncrypt(publicKey: PlatformKey, data: Uint8Array, label?: Uint8Array): Promise<Uint8Array>;
  /** Rejects on any failure; the core turns every one into one message (no padding oracle). */
  rsaOaepDecrypt(privateKey: PlatformKey, data: Uint8Array, label?: Uint8Array): Promise<Uint8Array>;
  /** Reads `message` before it returns: the caller may reuse the buffer once the promise exists. */
  ed25519Sign(privateKey: PlatformKey, message: Uint8Array): Promise<Uint8Array>;
  /** Never rejects: a key of another type or a malformed signature is false. */
  ed25519Verify(publicKey: PlatformKey, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
  hasher(algorithm: "sha256" | "sha512"): Hasher;
  hkdfSha256(key: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array>;
  scrypt(
    password: Uint8Array,
    salt: Uint8Array,
    cost: { N: number; r: number; p: number },
    length: number,
  ): Promise<Uint8Array>;
  /** Fills `bytes` from the system's secure generator. */
  fillRandom(bytes: Uint8Array): void;
}

/** An exclusive claim, held until released. */
export interface Claim {
  release(): Promise<void>;
}

/** One folder of binary records (the held messages of one user): each written atomically, owner-only. */
export interface RecordFolder {
  /** Names and last-modified times (ms); empty when the folder does not exist. */
  list(): Promise<Array<{ name: string; modifiedAt: number }>>;
  /** The record, or null if there is none by that name. */
  read(name: string): Promise<Uint8Array | null>;
  write(name: string, bytes: Uint8Array): Promise<void>;
  /** Removes a record at once, so it is gone even if the process ends right after. */
  removeNow(name: string): void;
}

/**
 * The home: one user's documents (session, identity, state, contacts, seen, sequences, groups, as JSON
 * text) and its locks. Every write is atomic: a crash or a second process never sees half a document.
 */
export interface HomeStorage {
  /** Where the home is, as people are told (a folder's path). */
  readonly location: string;
  /** How a document of the home is named to people (its file's path). */
  describe(name: string): string;
  /** Creates the home if it does not exist and makes it owner-only. */
  ensure(): Promise<void>;
  /** The document's text, or null if it does not exist. */
  read(name: string): Promise<string | null>;
  write(name: string, text: string): Promise<void>;
  remove(name: string): Promise<void>;
  /**
   * Runs `fn` holding the home's short lock (shared with other processes on the same home); throws
   * LockTimeoutError when another holder keeps it too long.
   */
  withLock<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Claims the right to receive for this home, for as long as the process runs or until released; null
   * with a description of the holder when another live process has it.
   */
  claimReceiver(command: string): Promise<Claim | { heldBy: string; pid: string }>;
  /** A folder of records under the home (e.g. ["held", "alice"]). */
  records(path: readonly string[]): RecordFolder;
  /** The history of messages, opened for `owner`. */
  openHistory(owner: string): Promise<HistoryStore>;
  /** Where received files go by default. */
  readonly downloads: string;
  /**
   * Where the private keys are kept as the platform's key objects, when it can keep them so (a browser's
   * non-extractable CryptoKeys); without one they are text in identity.json, as on Node.
   */
  readonly keyVault?: KeyVault;
}

/** The user's two key pairs, as the platform holds them (the shape of crypto's Identity). */
export interface VaultKeys {
  encryption: PlatformKeyPair;
  signing: PlatformKeyPair;
}

/** A home's private keys kept as key objects, never as bytes the core could read back. */
export interface KeyVault {
  /** Replaces whatever the vault held. */
  save(keys: VaultKeys): Promise<void>;
  /** The keys, or null if there are none. */
  load(): Promise<VaultKeys | null>;
  remove(): Promise<void>;
}

/** The home's short lock could not be taken in time. */
export class LockTimeoutError extends Error {
  override name = "LockTimeoutError";
}

/** A file that could not be read or written: `code` is the system's (ENOENT, EACCES, ENOSPC, …). */
export interface FileError extends Error {
  code?: string;
}

/** A file opened for sending, read piece by piece. */
export interface ReadableFile {
  /** Reads into `buffer` from `position`; 0 at the end. */
  read(buffer: Uint8Array, position: number, length: number): Promise<number>;
  close(): Promise<void>;
}

/** A received file being written: nothing is visible under its name until `commit`. */
export interface IncomingFile {
  write(bytes: Uint8Array): Promise<void>;
  /** Made durable and placed under the first free variant of its name; resolves with where it went. */
  commit(): Promise<string>;
  /** Nothing is left behind. */
  abort(): Promise<void>;
}

export interface FileAccess {
  /** The file's absolute location, whether it is a regular file, and its size; FileError if it cannot be read. */
  stat(path: string): Promise<{ path: string; isFile: boolean; size: number }>;
  /** The last component of a path, as files are named to recipients. */
  baseName(path: string): string;
  /** A folder given by a person, made absolute. */
  resolveFolder(path: string): string;
  openForSending(path: string): Promise<ReadableFile>;
  /** Creates `folder` owner-only if needed and checks it is writable; FileError otherwise. */
  ensureFolder(folder: string): Promise<void>;
  /** Starts a received file in `folder` (a temporary, owner-only file), to be named `name` on commit. */
  receive(folder: string, name: string): Promise<IncomingFile>;
}

export interface HeaderLookup {
  get(name: string): string | null;
}

/** What a socket tells its owner. */
export interface SocketHandlers {
  /** Binary frames as a fresh Uint8Array, text frames as a string. */
  onMessage(data: Uint8Array | string): void;
  /** Once, after the socket ended for any reason. */
  onClose(code: number, reason: string): void;
  onError(error: unknown): void;
  /** The server answered the handshake with HTTP instead of upgrading (a 401, a 429, …). */
  onRefused(status: number, headers: HeaderLookup, body: string): void;
}

export interface PlatformSocket {
  readonly isOpen: boolean;
  readonly isClosed: boolean;
  /** Resolves once written to the network; rejects if it could not be. */
  send(data: Uint8Array | string): Promise<void>;
  close(code: number, reason: string): void;
  /** Ends at once, without a closing handshake. */
  terminate(): void;
}

export interface SocketOptions {
  /** Sent with the handshake (a browser's socket cannot: its adapter puts the token elsewhere). */
  headers: Record<string, string>;
  maxPayloadBytes: number;
  handshakeTimeoutMs: number;
}

export interface StreamedUpload {
  url: URL;
  headers: Record<string, string>;
  /** Exactly this many bytes come from `body`. */
  length: number;
  /** Each piece is written out before the next is asked for: `body` may reuse one buffer. */
  body: AsyncIterable<Uint8Array>;
  /** The whole body has been handed to the network. */
  onBodySent?: () => void;
  /** Idle time after which the upload is given up. */
  idleTimeoutMs: number;
}

export interface HttpAnswer {
  status: number;
  headers: HeaderLookup;
  text: string;
}

export interface HttpRequest {
  url: URL;
  method: "GET" | "POST" | "DELETE";
  headers: Record<string, string>;
  /** A small body (JSON text), sent whole. */
  body?: string;
  /** The whole exchange, answer included, must finish within this. */
  timeoutMs: number;
}

/** The request could not be made or did not finish: `code` says why when the system told (ECONNREFUSED, …). */
export interface RequestFailure extends Error {
  code?: string;
}

export interface Network {
  /**
   * One request with a small body, resolving with the whole answer; rejects (a RequestFailure) when the
   * server cannot be reached or the time runs out. Every answer resolves, whatever its status.
   */
  request(request: HttpRequest): Promise<HttpAnswer>;
  openSocket(url: URL, options: SocketOptions, handlers: SocketHandlers): PlatformSocket;
  /**
   * PUTs a body streamed piece by piece and resolves with the answer, which may come before the body is
   * complete (a refusal). Rejects when the server cannot be reached or the body's source throws.
   */
  putStreamed(upload: StreamedUpload): Promise<HttpAnswer>;
  /**
   * A GET whose answer's body is read piece by piece, at the pace the caller reads it (a large file is
   * never held whole). Resolves once the answer's head has come; rejects when the server cannot be reached.
   */
  getStreamed(download: StreamedDownload): Promise<StreamedAnswer>;
}

export interface StreamedDownload {
  url: URL;
  headers: Record<string, string>;
  /** Aborting it ends the transfer at any point: before the head has come or while the body is read. */
  signal: AbortSignal;
}

export interface StreamedAnswer {
  status: number;
  headers: HeaderLookup;
  /** The body; a transfer that breaks off makes it throw (a RequestFailure). */
  body: AsyncIterable<Uint8Array>;
  /** Releases the connection without reading the rest. */
  cancel(): Promise<void>;
}

export interface Clock {
  now(): number;
  /** Lets a repeating timer run without keeping the process alive on its own (keep-alive pings). */
  detach(timer: ReturnType<typeof setInterval>): void;
}

export interface Platform {
  crypto: CryptoBackend;
  /** The home at `location` (a folder, a database name): its documents, locks, held messages, history. */
  home(location: string): HomeStorage;
  files: FileAccess;
  network: Network;
  clock: Clock;
}
