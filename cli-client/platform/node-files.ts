// Files for attachments on Node (client/platform.ts FileAccess): a file to send is read piece by piece
// from its handle; a received one is written to a temporary owner-only file in the target folder, made
// durable, and only then placed under the first free variant of its name, never replacing a file.

import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, link, mkdir, open, rename, stat, unlink } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import type { FileAccess, IncomingFile, ReadableFile } from "../../client/platform.js";
import { CliError, ExitCode } from "../../client/errors.js";
import { numberedName } from "../../client/files.js";

export const nodeFiles: FileAccess = {
  async stat(path) {
    const info = await stat(path);
    return { path: resolve(path), isFile: info.isFile(), size: info.size };
  },

  baseName: (path) => basename(path),

  resolveFolder: (path) => resolve(path),

  async openForSending(path): Promise<ReadableFile> {
    const handle = await open(path, "r");
    return {
      async read(buffer, position, length) {
        const { bytesRead } = await handle.read(buffer, 0, length, position);
        return bytesRead;
      },
      close: () => handle.close(),
    };
  },

  async ensureFolder(folder) {
    await mkdir(folder, { recursive: true, mode: 0o700 });
    await access(folder, constants.W_OK);
  },

  async receive(folder, name): Promise<IncomingFile> {
    const temp = join(folder, `.telepound-${randomBytes(8).toString("hex")}.part`);
    const handle = await open(temp, "wx", 0o600);
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await handle.close();
    };
    return {
      async write(bytes) {
        await handle.write(bytes);
      },
      async commit() {
        await handle.sync();
        await close();
        return placeUnique(temp, folder, name);
      },
      async abort() {
        await close().catch(() => undefined);
        await unlink(temp).catch(() => undefined);
      },
    };
  },
};

/**
 * Moves `temp` to the first free numbered variant of `name` in `dir`, never replacing an existing file:
 * link() fails if the target exists, so the check and the move are one step. File systems without hard
 * links get an exclusive create of the target, then a rename over that empty file of ours.
 */
export async function placeUnique(temp: string, dir: string, name: string): Promise<string> {
  for (let n = 0; n < 10_000; n++) {
    const target = join(dir, numberedName(name, n));
    try {
      await link(temp, target);
      await unlink(temp);
      return target;
    } catch (error) {
      if (isErrno(error, "EEXIST")) continue;
      if (!isErrno(error, "EPERM") && !isErrno(error, "ENOTSUP") && !isErrno(error, "EOPNOTSUPP"))
        throw error;
    }
    try {
      const reserved = await open(target, "wx", 0o600);
      await reserved.close();
    } catch (error) {
      if (isErrno(error, "EEXIST")) continue;
      throw error;
    }
    await rename(temp, target);
    return target;
  }
  throw new CliError(`no free name for ${name} in ${dir}`, ExitCode.unexpected);
}

function isErrno(error: unknown, code: string): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === code;
}
