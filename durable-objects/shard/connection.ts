// Per-socket state of a shard, kept in the WebSocket attachment so it survives hibernation, and the
// one place frames are written to a client.

import { CloseCode, type ErrorCode, type ServerFrame } from "../../protocol/frames.js";
import type { QueuedItem } from "../home/queue.js";

/** The backlog source that is the user's home; every other source is a group name (never empty). */
export const HOME_SOURCE = "";

export interface Connection {
  /**
   * Random per socket. The runtime may hand us a different WebSocket object for the same socket on
   * each event, so in-memory per-socket state is keyed by this, not by the object.
   */
  id: string;
  user: string;
  session: string;
  /** This shard's own name, so close handlers can tell the user's home where the socket was. */
  shard: string;
  /** False for send-only sockets (`?receive=0`): they get no deliveries and are not in presence. */
  receive: boolean;
  /** When the session behind this socket expires (ms since epoch); the socket is closed after it. */
  expiresAt: number;
  /**
   * Where this socket's backlog still comes from, the one being sent first: HOME_SOURCE for the user's
   * home (direct messages and events), then each group's room. Live pushes from a source still listed
   * are held back, so a client sees each source's messages in the order they were stored. Empty once live.
   */
  draining: string[];
  /** Highest sequence sent so far from the backlog of `draining[0]`. */
  backlogCursor: number;
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

export function connectionOf(ws: WebSocket): Connection | null {
  return (ws.deserializeAttachment() as Connection | null) ?? null;
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

/** Sends a queued item: envelopes as binary frames, events as the JSON text they were stored as. */
export function sendItem(ws: WebSocket, item: QueuedItem): boolean {
  return item.kind === "envelope" ? sendBinary(ws, item.data) : sendText(ws, utf8Decoder.decode(item.data));
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
