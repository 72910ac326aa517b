// Messages held because their sender's keys changed: signed with keys the user has not accepted, they are
// neither shown nor dropped. Each is kept here and then acknowledged to the server (left unacknowledged it
// would stall the server's backlog behind it, PROTOCOL §6), and every receiver checks the held messages
// again when it starts: once `trust` has accepted the sender's new keys, they verify and are shown.
//
//   held/USER/ID   one delivery frame as received, still encrypted (ID: its message id, 32 hex digits)

import { rmSync } from "node:fs";
import { mkdir, readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { CryptoError, readDelivery } from "../crypto/index.js";
import { type Home, isErrno, writeAtomic } from "./home.js";

/** At most this many messages are held (a server could send any number); past it they are dropped. */
export const HELD_LIMIT = 1000;
const MESSAGE_ID = /^[0-9a-f]{32}$/;

export class HeldMessages {
  private readonly dir: string;

  constructor(
    private readonly home: Home,
    owner: string,
  ) {
    this.dir = join(home.dir, "held", owner);
  }

  /** Ids of the held messages, oldest first. */
  async ids(): Promise<string[]> {
    const held = await Promise.all(
      (await this.names()).map(async (id) => {
        try {
          return { id, at: (await stat(join(this.dir, id))).mtimeMs };
        } catch (error) {
          // Released meanwhile by another receiver that finished with it.
          if (isErrno(error, "ENOENT")) return null;
          throw error;
        }
      }),
    );
    return held
      .filter((entry) => entry !== null)
      .sort((a, b) => a.at - b.at)
      .map((entry) => entry.id);
  }

  /** The held frame, or null if it is no longer held. */
  async read(id: string): Promise<Uint8Array | null> {
    try {
      return new Uint8Array(await readFile(join(this.dir, checked(id))));
    } catch (error) {
      if (isErrno(error, "ENOENT")) return null;
      throw error;
    }
  }

  /** Keeps a frame (atomic, owner-only); false when HELD_LIMIT other messages are held already. */
  async keep(id: string, frame: Uint8Array): Promise<boolean> {
    const held = await this.names();
    if (held.length >= HELD_LIMIT && !held.includes(checked(id))) return false;
    await this.home.ensure();
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeAtomic(this.dir, checked(id), frame);
    return true;
  }

  /**
   * Lets go of a message that was finally shown or dropped. Synchronous, so it is done before the process
   * exits; a copy that survives anyway is only checked again and dropped as a duplicate.
   */
  release(id: string): void {
    rmSync(join(this.dir, checked(id)), { force: true });
  }

  /** How many held messages claim to be from `sender` (for `trust` to say what it will release). */
  async countFrom(sender: string): Promise<number> {
    let count = 0;
    for (const id of await this.names()) {
      const frame = await this.read(id);
      try {
        if (frame && readDelivery(frame).header.sender === sender) count++;
      } catch (error) {
        if (!(error instanceof CryptoError)) throw error;
      }
    }
    return count;
  }

  private async names(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((name) => MESSAGE_ID.test(name));
    } catch (error) {
      if (isErrno(error, "ENOENT")) return [];
      throw error;
    }
  }
}

/** Ids become file names: anything but 32 hex digits would be a path. */
function checked(id: string): string {
  if (!MESSAGE_ID.test(id)) throw new TypeError(`not a message id: ${id}`);
  return id;
}
