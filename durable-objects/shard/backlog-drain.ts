// How a receiving socket catches up: the backlog of each of its sources (its home, then each group's room)
// in acknowledged batches, with live pushes from a source held back until that source's backlog is sent,
// so a client sees each source's items in the order they were stored. Then "synced".
//
// The socket's place in this (which sources remain, the cursor in the current one, which sources have
// pushes held) is in its attachment; the held-back pushes are in memory only, capped (shard/held-pushes.ts):
// when they are gone the source's queue, which has them all, is read again from the cursor.

import {
  type Connection,
  HOME_SOURCE,
  type PendingItem,
  connectionOf,
  setConnection,
  sendFrame,
  sendItem,
} from "./connection.js";
import { HeldPushes } from "./held-pushes.js";
import type { Backlog } from "../home/queue.js";

/** What the drain needs from the shard: the queues, and the acknowledgement clock. */
export interface DrainSources {
  /** A group room's first batch for a session. */
  openGroup(connection: Connection, group: string): Promise<Backlog>;
  /** The batch after `cursor` of a source, or null while the session has items at or before it unacknowledged. */
  readAfter(connection: Connection, source: string, cursor: number): Promise<Backlog | null>;
  /** Something to acknowledge was sent on this socket: returns the connection with its deadline set. */
  awaitAck(connection: Connection): Connection;
}

export class BacklogDrain {
  private readonly held: HeldPushes;

  constructor(
    private readonly sources: DrainSources,
    caps: { bytesPerSocket: number; bytesPerShard: number },
  ) {
    this.held = new HeldPushes(caps.bytesPerSocket, caps.bytesPerShard);
  }

  /** Bytes of live pushes held on this shard in all. */
  get heldBytes(): number {
    return this.held.bytes;
  }

  /**
   * Sends pushed items of one source now, or holds them back while that source's backlog is still draining
   * on this socket (or drops them past the caps: the queue has them). True if sent or held.
   */
  push(
    ws: WebSocket,
    connection: Connection,
    source: string,
    items: Array<{ seq: number; item: PendingItem }>,
  ): boolean {
    if (!connection.draining.includes(source)) {
      let ok = true;
      for (const { item } of items) ok = sendItem(ws, item) && ok;
      const due = this.sources.awaitAck(connection);
      if (due !== connection) setConnection(ws, due);
      return ok;
    }
    const heldSources = connection.held ?? [];
    const first = !heldSources.includes(source);
    if (first) setConnection(ws, { ...connection, held: [...heldSources, source] } satisfies Connection);
    items.forEach(({ seq, item }, index) =>
      this.held.hold(connection.id, { source, seq, item }, first && index === 0),
    );
    return true;
  }

  /**
   * Sends one backlog batch of the source being drained. When that source has nothing more, what was held
   * back from it follows (minus what the backlog already carried: sequence at or below the cursor) and
   * the next source's backlog is opened; after the last one the socket is live and told "synced". If some
   * of what was held is gone, the source's queue is read again after the cursor first.
   */
  send(ws: WebSocket, connection: Connection, backlog: Backlog): void {
    for (const item of backlog.items) sendItem(ws, item);
    const sent = backlog.items.length > 0 ? this.sources.awaitAck(connection) : connection;
    if (backlog.more) {
      setConnection(ws, { ...sent, backlogCursor: backlog.cursor } satisfies Connection);
      return;
    }
    const [source = HOME_SOURCE, ...rest] = sent.draining;
    const heldSources = sent.held ?? [];
    const wasHeld = heldSources.includes(source);
    const others = heldSources.filter((held) => held !== source);
    if (wasHeld && !this.held.isComplete(sent.id, source)) {
      // Pushes of this source were dropped: they are in its queue after the cursor. Read on from there,
      // once this batch is acknowledged (the ack asks for the next batch), or now if it was empty.
      this.held.take(sent.id, source);
      const rereading: Connection = { ...sent, backlogCursor: backlog.cursor, held: others };
      setConnection(ws, rereading);
      if (backlog.items.length === 0) void this.readAgain(ws, rereading, source);
      return;
    }
    const next: Connection = { ...sent, draining: rest, backlogCursor: 0, held: others };
    let live = next;
    for (const push of this.held.take(sent.id, source))
      if (push.seq > backlog.cursor) {
        sendItem(ws, push.item);
        live = this.sources.awaitAck(live);
      }
    setConnection(ws, live);
    if (rest.length > 0) void this.openNextGroup(ws, live);
    else {
      this.held.drop(sent.id);
      sendFrame(ws, { type: "synced" });
    }
  }

  /** The socket closed or was refused. */
  forget(connectionId: string): void {
    this.held.drop(connectionId);
  }

  /** Asks the room of the next group in `draining` for this session's first batch. */
  private async openNextGroup(ws: WebSocket, connection: Connection): Promise<void> {
    const group = connection.draining[0]!;
    let backlog: Backlog;
    try {
      backlog = await this.sources.openGroup(connection, group);
    } catch (error) {
      // The room's messages stay queued for the next connect; the other sources carry on.
      console.error(`${connection.shard}: opening ${group}'s backlog for ${connection.user} failed`, error);
      backlog = { items: [], cursor: 0, more: false };
    }
    const current = connectionOf(ws);
    if (current?.id === connection.id && current.draining[0] === group) this.send(ws, current, backlog);
  }

  /** Reads a source's queue again after the cursor, for pushes that were dropped while held. */
  private async readAgain(ws: WebSocket, connection: Connection, source: string): Promise<void> {
    let backlog: Backlog | null;
    try {
      backlog = await this.sources.readAfter(connection, source, connection.backlogCursor);
    } catch (error) {
      // Closed so the client reconnects, and the queue (which has everything) is read anew.
      console.error(
        `${connection.shard}: re-reading ${source || "home"} for ${connection.user} failed`,
        error,
      );
      try {
        ws.close(1011, "backlog read failed; reconnect");
      } catch {
        // Already closing.
      }
      return;
    }
    const current = connectionOf(ws);
    if (backlog && current?.id === connection.id && current.draining[0] === source)
      this.send(ws, current, backlog);
  }
}
