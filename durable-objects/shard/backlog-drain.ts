// How a receiving socket catches up: the backlog of each of its sources (its home, then each group's room)
// in acknowledged batches, with live pushes from a source held back until that source's backlog is sent,
// so a client sees each source's items in the order they were stored. Then "synced".
//
// The socket's place in this (which sources remain, the cursor in the current one) is in its attachment;
// the held-back pushes are in memory only: the queues still have them.

import { sendFrame, sendItem, type Connection, HOME_SOURCE, connectionOf } from "./connection.js";
import type { Backlog, QueuedItem } from "../home/queue.js";

/** A live push held back on a socket until the backlog of its source has been sent. */
interface HeldPush {
  source: string;
  seq: number;
  item: QueuedItem;
}

export class BacklogDrain {
  /** By socket id (the runtime may hand over a different WebSocket object for the same socket). */
  private readonly heldBack = new Map<string, HeldPush[]>();

  /** `openGroup` asks a group's room for a session's first batch. */
  constructor(private readonly openGroup: (connection: Connection, group: string) => Promise<Backlog>) {}

  /**
   * Sends a pushed item now, or holds it back while its source's backlog is still draining on this
   * socket. True if sent or held.
   */
  push(ws: WebSocket, connection: Connection, source: string, seq: number, item: QueuedItem): boolean {
    if (!connection.draining.includes(source)) return sendItem(ws, item);
    const held = this.heldBack.get(connection.id) ?? [];
    held.push({ source, seq, item });
    this.heldBack.set(connection.id, held);
    return true;
  }

  /**
   * Sends one backlog batch of the source being drained. When that source has nothing more, what was held
   * back from it follows (minus what the backlog already carried: sequence at or below the cursor) and
   * the next source's backlog is opened; after the last one the socket is live and told "synced".
   */
  send(ws: WebSocket, connection: Connection, backlog: Backlog): void {
    for (const item of backlog.items) sendItem(ws, item);
    if (backlog.more) {
      ws.serializeAttachment({ ...connection, backlogCursor: backlog.cursor } satisfies Connection);
      return;
    }
    const [source, ...rest] = connection.draining;
    const next: Connection = { ...connection, draining: rest, backlogCursor: 0 };
    ws.serializeAttachment(next);
    this.release(ws, connection.id, source ?? HOME_SOURCE, backlog.cursor);
    if (rest.length > 0) void this.openNextGroup(ws, next);
    else {
      this.heldBack.delete(connection.id);
      sendFrame(ws, { type: "synced" });
    }
  }

  /** The socket closed or was refused. */
  forget(connectionId: string): void {
    this.heldBack.delete(connectionId);
  }

  /** Asks the room of the next group in `draining` for this session's first batch. */
  private async openNextGroup(ws: WebSocket, connection: Connection): Promise<void> {
    const group = connection.draining[0]!;
    let backlog: Backlog;
    try {
      backlog = await this.openGroup(connection, group);
    } catch (error) {
      // The room's messages stay queued for the next connect; the other sources carry on.
      console.error(`${connection.shard}: opening ${group}'s backlog for ${connection.user} failed`, error);
      backlog = { items: [], cursor: 0, more: false };
    }
    const current = connectionOf(ws);
    if (current?.id === connection.id && current.draining[0] === group) this.send(ws, current, backlog);
  }

  private release(ws: WebSocket, connectionId: string, source: string, cursor: number): void {
    const held = this.heldBack.get(connectionId);
    if (!held) return;
    const kept: HeldPush[] = [];
    for (const push of held) {
      if (push.source !== source) kept.push(push);
      else if (push.seq > cursor) sendItem(ws, push.item);
    }
    this.heldBack.set(connectionId, kept);
  }
}
