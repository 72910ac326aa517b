// The acknowledgement clock of a shard's sockets: a socket that was sent something and then sends no
// acknowledgement within the timeout is closed (CloseCode.ackTimeout), so a client that never acknowledges
// cannot keep a socket, its drain and its pushes on a shard. Its queue keeps everything for its next connect.
//
// Deadlines live in the sockets' attachments (they survive hibernation); one Durable Object alarm checks them.

import { type Connection, closeSilentSocket, connectionOf } from "./connection.js";

export class AckDeadlines {
  /** When the alarm is set for, as far as this instance knows (null after a wake-up, or none set). */
  private alarmAt: number | null = null;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly timeoutMs: number,
  ) {}

  /** Something to acknowledge was sent: the connection with its deadline, unchanged if one is running. */
  awaitAck(connection: Connection, now = Date.now()): Connection {
    if (connection.ackDueAt) return connection;
    const due = now + this.timeoutMs;
    this.schedule(due);
    return { ...connection, ackDueAt: due };
  }

  /** The socket acknowledged: nothing is awaited until something more is sent. */
  acknowledged(connection: Connection): Connection {
    return connection.ackDueAt ? { ...connection, ackDueAt: 0 } : connection;
  }

  /**
   * The alarm: closes every socket past its deadline and sets the alarm for the next one. Returns the
   * sockets closed, for the shard's bookkeeping.
   */
  closeOverdue(sockets: WebSocket[], now = Date.now()): WebSocket[] {
    const closed: WebSocket[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const ws of sockets) {
      const connection = connectionOf(ws);
      if (!connection?.ackDueAt) continue;
      if (connection.ackDueAt <= now) {
        closeSilentSocket(ws);
        closed.push(ws);
      } else next = Math.min(next, connection.ackDueAt);
    }
    // This alarm has fired: the next one is set outright, for the earliest deadline still running.
    this.alarmAt = Number.isFinite(next) ? next : null;
    if (this.alarmAt !== null) void this.storage.setAlarm(this.alarmAt);
    return closed;
  }

  /**
   * Sets the alarm for `at` unless one is due sooner. After a wake-up this instance does not know the
   * alarm and sets it outright: an earlier one it replaces is at most one timeout earlier (every deadline
   * is now plus the timeout), and the alarm closes everything overdue, so no socket waits past two.
   */
  private schedule(at: number): void {
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    this.alarmAt = at;
    void this.storage.setAlarm(at);
  }
}
