// The home in a browser (client/platform.ts HomeStorage): one IndexedDB database per location
// (idb-database.ts) for the documents, the records and the history; locks from the Web Locks API, which
// every tab of the origin shares and which the browser releases when a tab closes, so a closed or crashed
// tab never leaves a home locked. Each document and record write is one transaction, so it is atomic.

import { type Claim, type HomeStorage, LockTimeoutError, type RecordFolder } from "../../client/platform.js";
import type { HistoryStore } from "../../client/store/history.js";
import { IdbHistory } from "./idb-history.js";
import { STORES, committed, openHomeDatabase, settled } from "./idb-database.js";

/** The core holds the short lock for milliseconds; a wait this long means a stuck tab. */
const LOCK_WAIT_MS = 10_000;

interface StoredRecord {
  folder: string;
  name: string;
  bytes: Uint8Array;
  modifiedAt: number;
}

export class IdbHomeStorage implements HomeStorage {
  private database: Promise<IDBDatabase> | null = null;

  /** `downloads`: where received files go by default (a folder of browser-files.ts). */
  constructor(
    readonly location: string,
    readonly downloads: string,
  ) {}

  describe(name: string): string {
    return `${this.location}/${name}`;
  }

  async ensure(): Promise<void> {
    await this.db();
  }

  async read(name: string): Promise<string | null> {
    const db = await this.db();
    const text = await settled(db.transaction(STORES.documents).objectStore(STORES.documents).get(name));
    return typeof text === "string" ? text : null;
  }

  async write(name: string, text: string): Promise<void> {
    await this.change(STORES.documents, (store) => store.put(text, name));
  }

  async remove(name: string): Promise<void> {
    await this.change(STORES.documents, (store) => store.delete(name));
  }

  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    await this.ensure();
    try {
      // The signal only bounds the wait: once granted, the lock is held until `fn` settles.
      return await navigator.locks.request(
        this.lockName("home"),
        { signal: AbortSignal.timeout(LOCK_WAIT_MS) },
        () => fn(),
      );
    } catch (error) {
      if (error instanceof DOMException && (error.name === "TimeoutError" || error.name === "AbortError")) {
        throw new LockTimeoutError(`${this.describe("home.lock")} is held`);
      }
      throw error;
    }
  }

  /** Held until released or until this tab closes; another tab is told who holds it. */
  // Which command holds it stays with the holding tab: a browser has no shared place to read it from.
  async claimReceiver(_command: string): Promise<Claim | { heldBy: string; pid: string }> {
    await this.ensure();
    const name = this.lockName("receiver");
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const granted = await new Promise<boolean>((resolve, reject) => {
      navigator.locks
        .request(name, { ifAvailable: true }, (lock) => {
          resolve(lock !== null);
          // The lock stays ours for as long as this callback's promise is pending.
          return lock === null ? undefined : held;
        })
        .catch(reject);
    });
    if (granted) {
      return { release: async () => release() };
    }
    // The holder's client id is the nearest thing a browser has to a process id.
    const state = await navigator.locks.query();
    const holder = state.held?.find((lock) => lock.name === name);
    return { heldBy: "another tab", pid: holder?.clientId ?? "?" };
  }

  records(path: readonly string[]): RecordFolder {
    return new IdbRecordFolder(this, path.join("/"));
  }

  openHistory(owner: string): Promise<HistoryStore> {
    return IdbHistory.open(this.location, owner);
  }

  /** Closes this home's connection (log out deletes the database, which waits for open connections). */
  async close(): Promise<void> {
    const opening = this.database;
    this.database = null;
    if (opening) (await opening.catch(() => null))?.close();
  }

  /** The connection, opened on first use; a connection closed by another tab's delete is opened again. */
  db(): Promise<IDBDatabase> {
    this.database ??= openHomeDatabase(this.location).then((db) => {
      db.addEventListener("close", () => (this.database = null));
      const previous = db.onversionchange;
      db.onversionchange = (event) => {
        this.database = null;
        previous?.call(db, event);
      };
      return db;
    });
    return this.database;
  }

  /** One write in its own transaction, resolved once it is durable. */
  async change(store: string, write: (store: IDBObjectStore) => IDBRequest): Promise<void> {
    const db = await this.db();
    const transaction = db.transaction(store, "readwrite", { durability: "strict" });
    write(transaction.objectStore(store));
    await committed(transaction);
  }

  private lockName(which: "home" | "receiver"): string {
    return `telepound:${this.location}:${which}`;
  }
}

/** One folder of records: the records whose key starts with the folder's path. */
class IdbRecordFolder implements RecordFolder {
  constructor(
    private readonly home: IdbHomeStorage,
    private readonly folder: string,
  ) {}

  async list(): Promise<Array<{ name: string; modifiedAt: number }>> {
    const db = await this.home.db();
    const store = db.transaction(STORES.records).objectStore(STORES.records);
    const records = (await settled(store.getAll(this.range()))) as StoredRecord[];
    return records.map(({ name, modifiedAt }) => ({ name, modifiedAt }));
  }

  async read(name: string): Promise<Uint8Array | null> {
    const db = await this.home.db();
    const store = db.transaction(STORES.records).objectStore(STORES.records);
    const record = (await settled(store.get([this.folder, name]))) as StoredRecord | undefined;
    return record ? new Uint8Array(record.bytes) : null;
  }

  async write(name: string, bytes: Uint8Array): Promise<void> {
    const record: StoredRecord = { folder: this.folder, name, bytes: bytes.slice(), modifiedAt: Date.now() };
    await this.home.change(STORES.records, (store) => store.put(record));
  }

  /** The delete is queued at once and commits on its own, whatever the caller does next. */
  removeNow(name: string): void {
    void this.home
      .change(STORES.records, (store) => store.delete([this.folder, name]))
      .catch(() => undefined);
  }

  /** Every [folder, name]: arrays sort after strings, so [folder, []] is above every name. */
  private range(): IDBKeyRange {
    return IDBKeyRange.bound([this.folder], [this.folder, []]);
  }
}
