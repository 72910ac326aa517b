// Messages waiting to be sent, kept in the home (outbox.json) until each has gone: a face that lets
// people type while the server is out of reach (chat) puts them here first, so quitting or a crash loses
// none of them; the next session of the same user sends them, in the order they were typed.
//
// Only the queue is kept here; sending is the face's: it takes the items in order, sends each with
// TelepoundClient.send, and removes it once the server has it (or it failed for good).

import { toHex } from "../protocol/bytes.js";
import { randomBytes } from "./crypto/primitives.js";
import type { Home, QueuedSend } from "./store/home.js";

export type { QueuedSend } from "./store/home.js";

export type SendTarget = QueuedSend["to"];

export class SendQueue {
  constructor(
    private readonly home: Home,
    /** Whose queue: one left by another user of the home is never sent as this one. */
    private readonly owner: string,
    private readonly now: () => number,
  ) {}

  /** What waits, oldest first. */
  async list(): Promise<QueuedSend[]> {
    const file = await this.home.read("outbox.json");
    return file && file.owner === this.owner ? file.items : [];
  }

  /** Keeps a message until `remove`; written before this resolves. */
  async add(to: SendTarget, message: { text: string; file?: string | undefined }): Promise<QueuedSend> {
    const item: QueuedSend = {
      id: toHex(randomBytes(8)),
      to,
      text: message.text,
      ...(message.file === undefined ? {} : { file: message.file }),
      queuedAt: this.now(),
    };
    await this.update((items) => [...items, item]);
    return item;
  }

  /** The message went (or never can): it is no longer kept. */
  async remove(id: string): Promise<void> {
    await this.update((items) => items.filter((item) => item.id !== id));
  }

  private async update(change: (items: QueuedSend[]) => QueuedSend[]): Promise<void> {
    // Under the home's lock: a send from another process on this home must not lose this one's change.
    await this.home.withLock(async () => {
      const items = change(await this.list());
      if (items.length === 0) await this.home.remove("outbox.json");
      else await this.home.write("outbox.json", { owner: this.owner, items });
    });
  }
}
