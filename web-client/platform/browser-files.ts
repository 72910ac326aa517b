// Files for attachments in a browser (client/platform.ts FileAccess). The core speaks in paths, so:
// - a File a person picked (<input type=file>, a drop) is registered here and gets a path,
//   /picked/N/NAME, which stat and openForSending read piece by piece (File.slice), never whole;
// - received files are written piece by piece into the Origin Private File System under their folder's
//   path (e.g. /received/HOME), to a temporary name first; commit moves them under the first free variant
//   of their name. A committed file is offered as an object URL of its OPFS File, which is backed by disk,
//   so saving a 100 MiB file never needs 100 MiB of page memory.

import { numberedName } from "../../client/files.js";
import type { FileAccess, FileError, IncomingFile, ReadableFile } from "../../client/platform.js";

const PICKED_PREFIX = "/picked/";
/** Commits of every tab take turns, so two never pick the same free name. */
const COMMIT_LOCK = "telepound:received-files:commit";

/** The browser's FileAccess, and what a page needs beyond it: picked files in, received files out. */
export interface BrowserFiles extends FileAccess {
  /** A path for `file` that the core can send from, valid until `forget`. */
  register(file: File): string;
  forget(path: string): void;
  /** An object URL of a committed received file (revoke it with URL.revokeObjectURL when done). */
  downloadUrl(path: string): Promise<string>;
  /** The committed received file itself (disk-backed). */
  receivedFile(path: string): Promise<File>;
  deleteReceived(path: string): Promise<void>;
  /** Removes a folder of received files and everything in it; nothing if it does not exist. */
  removeFolder(folder: string): Promise<void>;
}

/** What OPFS handles have in Chromium beyond the DOM library's types: moving a file within its folder. */
interface MovableFileHandle extends FileSystemFileHandle {
  move(newName: string): Promise<void>;
}

export function browserFiles(): BrowserFiles {
  const picked = new Map<string, File>();
  let nextPick = 1;

  const pickedFile = (path: string): File => {
    const file = picked.get(path);
    if (!file) throw fileError("ENOENT", `${path}: no such file`);
    return file;
  };

  return {
    register(file) {
      const path = `${PICKED_PREFIX}${nextPick++}/${file.name}`;
      picked.set(path, file);
      return path;
    },

    forget(path) {
      picked.delete(path);
    },

    async stat(path) {
      if (path.startsWith(PICKED_PREFIX)) return { path, isFile: true, size: pickedFile(path).size };
      const { folder, name } = split(path);
      const directory = await opfsFolder(folder, false);
      const file = await failingAsFileError(() => directory.getFileHandle(name).then((h) => h.getFile()));
      return { path: normalise(path), isFile: true, size: file.size };
    },

    baseName: (path) => path.split("/").filter(Boolean).pop() ?? "",

    resolveFolder: (path) => normalise(path),

    async openForSending(path): Promise<ReadableFile> {
      const file = path.startsWith(PICKED_PREFIX) ? pickedFile(path) : await this.receivedFile(path);
      return {
        async read(buffer, position, length) {
          const piece = new Uint8Array(await file.slice(position, position + length).arrayBuffer());
          buffer.set(piece);
          return piece.length;
        },
        close: async () => undefined,
      };
    },

    async ensureFolder(folder) {
      await opfsFolder(normalise(folder), true);
    },

    async receive(folder, name): Promise<IncomingFile> {
      const directory = await opfsFolder(normalise(folder), true);
      const temp = `.telepound-${randomHex(8)}.part`;
      const handle = await failingAsFileError(() => directory.getFileHandle(temp, { create: true }));
      const writable = await failingAsFileError(() => handle.createWritable());
      let open = true;
      return {
        async write(bytes) {
          await failingAsFileError(() => writable.write(bytes as Uint8Array<ArrayBuffer>));
        },
        async commit() {
          // close() is what makes the written bytes the file's (until then they sit in a swap file).
          await failingAsFileError(() => writable.close());
          open = false;
          return navigator.locks.request(COMMIT_LOCK, async () => {
            for (let n = 0; n < 10_000; n++) {
              const candidate = numberedName(name, n);
              if (await exists(directory, candidate)) continue;
              await failingAsFileError(() => (handle as MovableFileHandle).move(candidate));
              return `${normalise(folder)}/${candidate}`;
            }
            throw fileError("EEXIST", `no free name for ${name} in ${folder}`);
          });
        },
        async abort() {
          if (open) await writable.abort().catch(() => undefined);
          open = false;
          await directory.removeEntry(temp).catch(() => undefined);
        },
      };
    },

    async receivedFile(path) {
      const { folder, name } = split(path);
      const directory = await opfsFolder(folder, false);
      return failingAsFileError(() => directory.getFileHandle(name).then((handle) => handle.getFile()));
    },

    async downloadUrl(path) {
      return URL.createObjectURL(await this.receivedFile(path));
    },

    async deleteReceived(path) {
      const { folder, name } = split(path);
      const directory = await opfsFolder(folder, false);
      await failingAsFileError(() => directory.removeEntry(name));
    },

    async removeFolder(folder) {
      const { folder: parent, name } = split(normalise(folder));
      const directory = await opfsFolder(parent, false).catch(() => null);
      await directory?.removeEntry(name, { recursive: true }).catch((error: unknown) => {
        if (!(error instanceof DOMException && error.name === "NotFoundError")) throw error;
      });
    },
  };
}

/** "/a/b/", "a//b" → "/a/b": one spelling per folder. */
function normalise(path: string): string {
  return `/${path.split("/").filter(Boolean).join("/")}`;
}

function split(path: string): { folder: string; name: string } {
  const parts = path.split("/").filter(Boolean);
  const name = parts.pop();
  if (!name) throw fileError("ENOENT", `${path}: no such file`);
  return { folder: `/${parts.join("/")}`, name };
}

async function opfsFolder(folder: string, create: boolean): Promise<FileSystemDirectoryHandle> {
  let directory = await navigator.storage.getDirectory();
  for (const part of folder.split("/").filter(Boolean)) {
    const parent = directory;
    directory = await failingAsFileError(() => parent.getDirectoryHandle(part, { create }));
  }
  return directory;
}

async function exists(directory: FileSystemDirectoryHandle, name: string): Promise<boolean> {
  try {
    await directory.getFileHandle(name);
    return true;
  } catch (error) {
    if (error instanceof DOMException && error.name === "NotFoundError") return false;
    // A folder of that name: taken too.
    if (error instanceof DOMException && error.name === "TypeMismatchError") return true;
    throw error;
  }
}

/** The errno-like code the core reacts to (client/files.ts), for each DOMException OPFS throws. */
const CODES: Record<string, string> = {
  NotFoundError: "ENOENT",
  TypeMismatchError: "ENOTDIR",
  QuotaExceededError: "ENOSPC",
  NotAllowedError: "EACCES",
  NoModificationAllowedError: "EACCES",
  InvalidModificationError: "EEXIST",
};

async function failingAsFileError<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof DOMException) {
      throw fileError(CODES[error.name] ?? error.name, error.message);
    }
    throw error;
  }
}

function fileError(code: string, message: string): FileError {
  return Object.assign(new Error(message), { code });
}

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
}
