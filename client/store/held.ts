// Messages held because their sender's keys changed: signed with keys the user has not accepted, they are
// neither shown nor dropped. Each is kept here and then acknowledged to the server (left unacknowledged it
// would stall the server's backlog behind it, PROTOCOL §6), and every receiver checks the held messages
// again when it starts: once `trust` has accepted the sender's new keys, they verify and are shown.
//
//   held/USER/ID   one delivery frame as received, still encrypted (ID: its message id, 32 hex digits),
//                  in the platform's record folder (client/platform.ts RecordFolder)

import { deliveryHead } from "../../protocol/envelope.js";
import type { RecordFolder } from "../platform.js";
import type { Home } from "./home.js";

/** At most this many messages are held (a server could send any number); past it they are dropped. */
export const HELD_LIMIT = 1000;
const MESSAGE_ID = /^[0-9a-f]{32}$/;

export class HeldMessages {
  private readonly folder: RecordFolder;

  constructor(home: Home, owner: string) {
    this.folder = home.heldFolder(owner);
  }

  /** Ids of the held messages, oldest first. */
  async ids(): Promise<string[]> {
    return (await this.folder.list())
      .filter((entry) => MESSAGE_ID.test(entry.name))
      .sort((a, b) => a.modifiedAt - b.modifiedAt)
      .map((entry) => entry.name);
  }

  /** The held frame, or null if it is no longer held. */
  read(id: string): Promise<Uint8Array | null> {
    return this.folder.read(checked(id));
  }

  /** Keeps a frame (atomic, owner-only); false when HELD_LIMIT other messages are held already. */
  async keep(id: string, frame: Uint8Array): Promise<boolean> {
    const held = await this.names();
    if (held.length >= HELD_LIMIT && !held.includes(checked(id))) return false;
    await this.folder.write(checked(id), frame);
    return true;
  }

  /**
   * Lets go of a message that was finally shown or dropped. At once, so it is done before the process
   * exits; a copy that survives anyway is only checked again and dropped as a duplicate.
   */
  release(id: string): void {
    this.folder.removeNow(checked(id));
  }

  /** How many held messages claim to be from `sender` (for `trust` to say what it will release). */
  async countFrom(sender: string): Promise<number> {
    let count = 0;
    for (const id of await this.names()) {
      const frame = await this.read(id);
      if (frame && deliveryHead(frame)?.sender === sender) count++;
    }
    return count;
  }

  private async names(): Promise<string[]> {
    return (await this.folder.list()).map((entry) => entry.name).filter((name) => MESSAGE_ID.test(name));
  }
}

/** Ids become file names: anything but 32 hex digits would be a path. */
function checked(id: string): string {
  if (!MESSAGE_ID.test(id)) throw new TypeError(`not a message id: ${id}`);
  return id;
}
