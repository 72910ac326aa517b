// The home on Node (client/platform.ts HomeStorage): a folder, owner-only (0700 folder, 0600 files),
// every write atomic (temp file, fsync, rename), locks as files holding the owner's pid, the history in
// SQLite beside the documents. The documents themselves are described in client/store/home.ts.

import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { chmod, mkdir, open, readFile, readdir, rename, rm, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { type Claim, type HomeStorage, LockTimeoutError, type RecordFolder } from "../../client/platform.js";
import type { HistoryStore } from "../../client/store/history.js";
import { Home } from "../../client/store/home.js";
import { SqliteHistory } from "./sqlite-history.js";

const LOCK_FILE = "home.lock";
/** Held by the one process that receives for this home (inbox, listen, chat) for as long as it runs. */
const RECEIVER_LOCK_FILE = "receiver.lock";
/** A lock older than this is from a process that died mid-write (locks are held for milliseconds). */
const STALE_LOCK_MS = 30_000;
const LOCK_WAIT_MS = 10_000;

export { resolveHomeDir } from "./home-dir.js";

/** The home in the folder `dir`. */
export function nodeHome(dir: string): Home {
  return new Home(new NodeHomeStorage(dir));
}

export class NodeHomeStorage implements HomeStorage {
  private ensured = false;

  constructor(readonly location: string) {}

  get downloads(): string {
    return join(this.location, "downloads");
  }

  describe(name: string): string {
    return join(this.location, name);
  }

  /** Creates the folder if needed and (re)tightens it to 0700, whatever the umask or who made it. */
  async ensure(): Promise<void> {
    if (this.ensured) return;
    await mkdir(this.location, { recursive: true, mode: 0o700 });
    const info = await stat(this.location);
    if ((info.mode & 0o777) !== 0o700) await chmod(this.location, 0o700);
    this.ensured = true;
  }

  async read(name: string): Promise<string | null> {
    try {
      return await readFile(join(this.location, name), "utf8");
    } catch (error) {
      if (isErrno(error, "ENOENT")) return null;
      throw error;
    }
  }

  async write(name: string, text: string): Promise<void> {
    await this.ensure();
    await writeAtomic(this.location, name, text);
  }

  async remove(name: string): Promise<void> {
    await rm(join(this.location, name), { force: true });
  }

  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    await this.ensure();
    const path = join(this.location, LOCK_FILE);
    const deadline = Date.now() + LOCK_WAIT_MS;
    while (!(await takeLock(path, `${process.pid}\n`, STALE_LOCK_MS))) {
      if (Date.now() > deadline) throw new LockTimeoutError(`${path} is held`);
      await new Promise((done) => setTimeout(done, 15));
    }
    try {
      return await fn();
    } finally {
      await rm(path, { force: true });
    }
  }

  /** The claim is a file holding our pid; one whose process is gone is taken over (after a crash). */
  async claimReceiver(command: string): Promise<Claim | { heldBy: string; pid: string }> {
    await this.ensure();
    const path = join(this.location, RECEIVER_LOCK_FILE);
    // Held for as long as the command runs, so only a dead holder makes it stale, not its age.
    if (!(await takeLock(path, `${process.pid}\n${command}\n`, Number.POSITIVE_INFINITY))) {
      const [pid = "?", heldBy = "telepound"] = (await readFile(path, "utf8").catch(() => "")).split("\n");
      return { heldBy, pid };
    }
    // The lock must go even when the process is ended by a signal we do not otherwise handle.
    const releaseOnExit = () => rmSync(path, { force: true });
    process.once("exit", releaseOnExit);
    return {
      release: async () => {
        process.removeListener("exit", releaseOnExit);
        await rm(path, { force: true });
      },
    };
  }

  records(path: readonly string[]): RecordFolder {
    return new NodeRecordFolder(this, join(this.location, ...path));
  }

  openHistory(owner: string): Promise<HistoryStore> {
    return SqliteHistory.open(this, owner);
  }
}

/** One folder of records, each a file written atomically (0600) in a 0700 folder. */
class NodeRecordFolder implements RecordFolder {
  constructor(
    private readonly home: NodeHomeStorage,
    private readonly dir: string,
  ) {}

  async list(): Promise<Array<{ name: string; modifiedAt: number }>> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if (isErrno(error, "ENOENT")) return [];
      throw error;
    }
    const entries = await Promise.all(
      names.map(async (name) => {
        try {
          return { name, modifiedAt: (await stat(join(this.dir, name))).mtimeMs };
        } catch (error) {
          // Removed meanwhile by another process that finished with it.
          if (isErrno(error, "ENOENT")) return null;
          throw error;
        }
      }),
    );
    return entries.filter((entry) => entry !== null);
  }

  async read(name: string): Promise<Uint8Array | null> {
    try {
      return new Uint8Array(await readFile(join(this.dir, name)));
    } catch (error) {
      if (isErrno(error, "ENOENT")) return null;
      throw error;
    }
  }

  async write(name: string, bytes: Uint8Array): Promise<void> {
    await this.home.ensure();
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeAtomic(this.dir, name, bytes);
  }

  /** Synchronous, so it is done before the process exits. */
  removeNow(name: string): void {
    rmSync(join(this.dir, name), { force: true });
  }
}

export async function writeAtomic(dir: string, name: string, data: string | Uint8Array): Promise<void> {
  const target = join(dir, name);
  const temp = join(dir, `.${name}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const handle = await open(temp, "wx", 0o600);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  // Make the rename itself durable; some file systems refuse fsync on a directory, which is harmless.
  try {
    const folder = await open(dir, "r");
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  } catch {
    // ignored on purpose: see above
  }
}

/**
 * Creates the lock file at `path` holding `content` (our pid first), taking over a stale one; false when
 * a live process holds it.
 */
async function takeLock(path: string, content: string, maxAgeMs: number): Promise<boolean> {
  for (;;) {
    try {
      const handle = await open(path, "wx", 0o600);
      await handle.writeFile(content);
      await handle.close();
      return true;
    } catch (error) {
      if (!isErrno(error, "EEXIST")) throw error;
      if (!(await isStaleLock(path, maxAgeMs))) return false;
      await rm(path, { force: true });
    }
  }
}

/**
 * A lock is stale when its process is gone, or (short-lived locks) older than `maxAgeMs`: a pid may be
 * reused by an unrelated process long after ours died.
 */
async function isStaleLock(path: string, maxAgeMs: number): Promise<boolean> {
  try {
    const [info, text] = await Promise.all([stat(path), readFile(path, "utf8")]);
    if (Date.now() - info.mtimeMs > maxAgeMs) return true;
    const pid = Number.parseInt(text, 10);
    if (!Number.isInteger(pid) || pid <= 0) return Date.now() - info.mtimeMs > 1000;
    try {
      process.kill(pid, 0);
      return false;
    } catch (error) {
      return isErrno(error, "ESRCH");
    }
  } catch (error) {
    // Removed between our open() and now: not stale, just gone; the caller retries.
    if (isErrno(error, "ENOENT")) return false;
    throw error;
  }
}

export function isErrno(error: unknown, code: string): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === code;
}
