// Per-socket state of a shard, kept in the WebSocket attachment so it survives hibernation (with a copy in
// memory, read without a clone), and the one place frames are written to a client.

import { CloseCode, type ErrorCode, type ServerFrame } from "../../protocol/frames.js";
import { encodeDelivery } from "../../protocol/envelope.js";
import type { QueuedItem } from "../home/queue.js";

/** The backlog source that is the user's home; every other source is a group name (never empty). */
export const HOME_SOURCE = "";

export interface Connection {
  /**
   * Random per socket. The runtime may hand us a different WebSocket object for the same socket on
   * each event, so in-memory per-socket state is keyed by this, not by the object.
   */
  readonly id: string;
  readonly user: string;
  readonly session: string;
  /** This shard's own name, so close handlers can tell the user's home where the socket was. */
  readonly shard: string;
  /** False for send-only sockets (`?receive=0`): they get no deliveries; presence counts them apart. */
  readonly receive: boolean;
  /** When the session behind this socket expires (ms since epoch); the socket is closed after it. */
  readonly expiresAt: number;
  /**
   * Where this socket's backlog still comes from, the one being sent first: HOME_SOURCE for the user's
   * home (direct messages and events), then each group's room. Live pushes from a source still listed
   * are held back, so a client sees each source's messages in the order they were stored. Empty once live.
   */
  readonly draining: readonly string[];
  /** Highest sequence sent so far from the backlog of `draining[0]`. */
  readonly backlogCursor: number;
  /**
   * Sources in `draining` with live pushes held back in the shard's memory for this socket. Memory can be
   * dropped (a cap, a wake-up from hibernation); a source listed here whose held pushes are gone is read
   * again from its queue, so nothing is missed.
   */
  readonly held?: readonly string[];
  /**
   * When this socket must have acknowledged (ms since epoch): set when something to acknowledge is sent
   * after its last acknowledgement, cleared by the next one; past it the socket is closed. 0 or absent:
   * nothing is awaited.
   */
  readonly ackDueAt?: number;
}

/**
 * A frame on its way to a socket: a queued item, or a group delivery whose frame is built only as it is
 * sent, so the signed part (the bulk) is held once per shard, not once per member.
 */
export type PendingItem = QueuedItem | { kind: "group"; signed: Uint8Array; slot: Uint8Array };

/** The memory a pending item holds for its socket (a group delivery's shared signed part counted too). */
export function pendingBytes(item: PendingItem): number {
  return item.kind === "group" ? item.signed.length + item.slot.length : item.data.length;
}

/** Closes a socket that left something unacknowledged too long: its queue keeps it for the next connect. */
export function closeSilentSocket(ws: WebSocket): void {
  try {
    ws.close(CloseCode.ackTimeout, "acknowledgement timeout");
  } catch {
    // Already closing.
  }
}

/** Closes a socket whose session was logged out or expired: reconnecting needs a new login. */
export function closeEndedSession(ws: WebSocket, reason: string): void {
  try {
    ws.close(CloseCode.sessionEnded, reason);
  } catch {
    // Already closing.
  }
}

export function userTag(username: string): string {
  return `user:${username}`;
}

/**
 * The attachment of each socket, as last written by this object: deserializeAttachment is a structured
 * clone, and a shard reads a socket's connection for each push and each frame from it (in a 1000-member
 * fan-out profile, about a tenth of the shard's CPU). The attachment stays what survives hibernation; this
 * copy is memory only, and a woken object reads each attachment once.
 */
const cachedConnections = new WeakMap<WebSocket, Connection | null>();
/**
 * The WebSocket object each socket (by Connection.id) was last read or written through. The runtime may
 * hand out a new object for a socket (after hibernation), and a copy cached under another object is
 * then not trusted: it is read from the attachment again, as it would be without the copy. An entry
 * goes when its socket is counted out (every close, error and refusal does), so it holds live sockets only.
 */
const objectOfSocket = new Map<string, WebSocket>();

export function connectionOf(ws: WebSocket): Connection | null {
  const cached = cachedConnections.get(ws);
  // Null is final: a socket counted out never has a connection again.
  if (cached === null) return null;
  if (cached !== undefined && objectOfSocket.get(cached.id) === ws) return cached;
  const stored = (ws.deserializeAttachment() as Connection | null) ?? null;
  remember(ws, stored);
  return stored;
}

/** Writes a socket's connection (null: counted out, closed) to its attachment and to the copy. */
export function setConnection(ws: WebSocket, connection: Connection | null): void {
  ws.serializeAttachment(connection);
  remember(ws, connection);
}

function remember(ws: WebSocket, connection: Connection | null): void {
  const previous = cachedConnections.get(ws);
  if (previous && previous.id !== connection?.id && objectOfSocket.get(previous.id) === ws)
    objectOfSocket.delete(previous.id);
  cachedConnections.set(ws, connection);
  if (connection) objectOfSocket.set(connection.id, ws);
}

export function sendFrame(ws: WebSocket, frame: ServerFrame): void {
  try {
    ws.send(JSON.stringify(frame));
  } catch {
    // The socket closed under us; the close handler does the bookkeeping.
  }
}

export function sendError(ws: WebSocket, code: ErrorCode, message: string, id?: string): void {
  sendFrame(ws, id === undefined ? { type: "error", code, message } : { type: "error", code, message, id });
}

const utf8Decoder = new TextDecoder();

/** Sends a pending item: envelopes as binary frames, events as the JSON text they were stored as. */
export function sendItem(ws: WebSocket, item: PendingItem): boolean {
  switch (item.kind) {
    case "envelope":
      return sendBinary(ws, item.data);
    case "group":
      return sendBinary(ws, encodeDelivery(item.signed, item.slot));
    case "event":
      return sendText(ws, utf8Decoder.decode(item.data));
  }
}

function sendText(ws: WebSocket, text: string): boolean {
  try {
    ws.send(text);
    return true;
  } catch {
    return false;
  }
}

export function sendBinary(ws: WebSocket, frame: Uint8Array): boolean {
  try {
    ws.send(frame);
    return true;
  } catch {
    return false;
  }
}
