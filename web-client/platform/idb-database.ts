// The IndexedDB database of one home (one per location): its schema, and promises over IndexedDB's
// events. Shared by the home's documents and records (idb-home.ts) and its history (idb-history.ts).
//
//   documents  name → the document's JSON text (session, identity, state, contacts, …)
//   records    [folder, name] → { folder, name, bytes, modifiedAt }: folders of binary records (held/alice)
//   history    seq (auto) → one history entry with its owner and conversation ("u:NAME", "g:NAME");
//              unique on [owner, id], listed newest first through [owner] or [owner, conversation]

const SCHEMA_VERSION = 1;

export const STORES = { documents: "documents", records: "records", history: "history" } as const;
export const HISTORY_INDEX = {
  ownerAndId: "owner-id",
  owner: "owner",
  conversation: "owner-conversation",
} as const;

/** The database of the home at `location`. */
export function databaseName(location: string): string {
  return `telepound-home:${location}`;
}

/** Opens (creating or upgrading) the home's database; it closes itself when another tab deletes it. */
export async function openHomeDatabase(location: string): Promise<IDBDatabase> {
  const opening = indexedDB.open(databaseName(location), SCHEMA_VERSION);
  opening.onupgradeneeded = () => {
    const db = opening.result;
    // Version 1 is the only one so far; later versions add their steps after this one.
    db.createObjectStore(STORES.documents);
    db.createObjectStore(STORES.records, { keyPath: ["folder", "name"] });
    const history = db.createObjectStore(STORES.history, { keyPath: "seq", autoIncrement: true });
    history.createIndex(HISTORY_INDEX.ownerAndId, ["owner", "id"], { unique: true });
    history.createIndex(HISTORY_INDEX.owner, "owner");
    history.createIndex(HISTORY_INDEX.conversation, ["owner", "conversation"]);
  };
  const db = await settled(opening);
  // Log out in another tab deletes the database: this connection must not hold that up.
  db.onversionchange = () => db.close();
  return db;
}

/** Deletes the home's database, waiting for other tabs' connections to close (they do at once). */
export function deleteHomeDatabase(location: string): Promise<void> {
  return settled(indexedDB.deleteDatabase(databaseName(location))).then(() => undefined);
}

/** The request's result once it succeeds. */
export function settled<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error("IndexedDB request failed"));
  });
}

/** Resolves once the transaction committed (its writes are durable), rejects if it aborted. */
export function committed(transaction: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onabort = () => reject(transaction.error ?? new Error("IndexedDB transaction aborted"));
    transaction.onerror = () => undefined; // reported by onabort, once
  });
}
