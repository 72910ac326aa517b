// Live pushes held back on sockets that are still draining a backlog, in memory with a byte cap per socket
// and one per shard. Past a cap, what a socket holds is dropped, never sent: its queue has all of it.
//
// A source (home or group) whose held pushes were dropped, or lost to a wake-up from hibernation, is
// "incomplete" on that socket: the drain then reads that source's queue again from its cursor.

import { type PendingItem, pendingBytes } from "./connection.js";

/** A live push held back on a socket until the backlog of its source has been sent. */
export interface HeldPush {
  source: string;
  seq: number;
  item: PendingItem;
}

interface SocketHold {
  pushes: HeldPush[];
  bytes: number;
  /** Sources whose every push since the drain began holding them is in `pushes`. */
  complete: Set<string>;
}

export class HeldPushes {
  /** By socket id (the runtime may hand over a different WebSocket object for the same socket). */
  private readonly bySocket = new Map<string, SocketHold>();
  private totalBytes = 0;

  constructor(
    private readonly maxBytesPerSocket: number,
    private readonly maxBytesPerShard: number,
  ) {}

  /** Bytes held on this shard in all, for tests and logs. */
  get bytes(): number {
    return this.totalBytes;
  }

  /**
   * Holds a push for a socket, or drops it (and, past a cap, everything the socket holds). `first` says
   * this is the first push of `source` held on this socket in its current drain: only then is the held
   * list complete for that source.
   */
  hold(socketId: string, push: HeldPush, first: boolean): void {
    let hold = this.bySocket.get(socketId);
    if (!hold) {
      hold = { pushes: [], bytes: 0, complete: new Set() };
      this.bySocket.set(socketId, hold);
    }
    if (first) hold.complete.add(push.source);
    // Already incomplete: the queue will be read again for this source, so holding more buys nothing.
    if (!hold.complete.has(push.source)) return;
    const size = pendingBytes(push.item);
    if (hold.bytes + size > this.maxBytesPerSocket) return this.drop(socketId);
    while (this.totalBytes + size > this.maxBytesPerShard) {
      const largest = this.largest();
      if (largest === undefined) break;
      this.drop(largest);
      if (largest === socketId) return;
    }
    hold.pushes.push(push);
    hold.bytes += size;
    this.totalBytes += size;
  }

  /** Whether every push of `source` held on this socket since its first one is still here. */
  isComplete(socketId: string, source: string): boolean {
    return this.bySocket.get(socketId)?.complete.has(source) ?? false;
  }

  /** Takes out the socket's held pushes of `source`, in the order they came. */
  take(socketId: string, source: string): HeldPush[] {
    const hold = this.bySocket.get(socketId);
    if (!hold) return [];
    hold.complete.delete(source);
    const taken: HeldPush[] = [];
    const kept: HeldPush[] = [];
    for (const push of hold.pushes) (push.source === source ? taken : kept).push(push);
    const takenBytes = taken.reduce((sum, push) => sum + pendingBytes(push.item), 0);
    hold.pushes = kept;
    hold.bytes -= takenBytes;
    this.totalBytes -= takenBytes;
    return taken;
  }

  /** Everything held for the socket goes (it closed, went live, or passed a cap). */
  drop(socketId: string): void {
    const hold = this.bySocket.get(socketId);
    if (!hold) return;
    this.totalBytes -= hold.bytes;
    this.bySocket.delete(socketId);
  }

  private largest(): string | undefined {
    let found: string | undefined;
    let most = -1;
    for (const [id, hold] of this.bySocket)
      if (hold.bytes > most) {
        most = hold.bytes;
        found = id;
      }
    return found;
  }
}
