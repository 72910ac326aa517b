// JSON text frames on the WebSocket, both directions: one type-tagged union each, validated with zod at
// the edge that receives them. Binary frames (envelopes) are described in envelope.ts.

import { z } from "zod";
import { GROUP_NAME_PATTERN, MAX_ACK_IDS } from "./limits.js";

export const messageIdHex = z.string().regex(/^[0-9a-f]{32}$/, "message ids are 32 lower-case hex digits");

// ---- client → server -------------------------------------------------------------------------------

export const AckFrame = z.strictObject({
  type: z.literal("ack"),
  /** Deliveries the client has stored or shown; the server may now forget them for this session. */
  ids: z.array(messageIdHex).min(1).max(MAX_ACK_IDS),
  /**
   * For group messages: the group they were sent to (the envelope's target). Group messages are queued
   * in their group's room, so their acknowledgements go there; without it, ids are for the user's home.
   */
  group: z.string().regex(GROUP_NAME_PATTERN, "group names are 3–32 of a-z 0-9 _ -").optional(),
});

export const PingFrame = z.strictObject({ type: z.literal("ping") });

export const ClientFrame = z.discriminatedUnion("type", [AckFrame, PingFrame]);
export type ClientFrame = z.infer<typeof ClientFrame>;

/** WebSocket close codes the server uses besides the standard ones (docs/PROTOCOL.md). */
export const CloseCode = {
  /** The session behind the socket was logged out or expired: log in again before reconnecting. */
  sessionEnded: 4401,
  /** The client kept flooding after being rate limited. */
  flooding: 1008,
  /**
   * The client left what it was sent unacknowledged past the server's timeout (PROTOCOL §4.5): nothing is
   * lost, the queue keeps it; reconnect and acknowledge.
   */
  ackTimeout: 4408,
} as const;

/** The exact ping text; the server answers it without waking a hibernated shard. */
export const PING_TEXT = '{"type":"ping"}';
export const PONG_TEXT = '{"type":"pong"}';

// ---- server → client -------------------------------------------------------------------------------

export const ErrorCode = z.enum([
  "bad_frame",
  "too_large",
  "forbidden",
  "unknown_user",
  "unknown_group",
  /** A group message sealed for an epoch that is no longer current: refetch the group and seal again. */
  "stale_epoch",
  "rate_limited",
  /** The recipient's queue (or the sender's share of it) is full: nothing was stored; send again later. */
  "quota_exceeded",
  "internal",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

export const WelcomeFrame = z.object({
  type: z.literal("welcome"),
  user: z.string(),
  shard: z.string(),
  serverTime: z.number(),
  /**
   * The account's live sessions, this socket's own included: with 1, no other device would get a sent
   * copy (envelope kind 3), so a client may skip sealing one. Absent from servers before sent copies; a
   * client that finds none assumes other sessions may exist.
   */
  sessions: z.int().min(1).optional(),
});

/**
 * The account's live session count changed (a login added one; a logout, a revoke or the session cap
 * ended one): sent to the user's receiving sockets, so a client knows whether sent copies have anyone
 * to reach. Not queued: a socket that misses it learns the count from its next welcome.
 */
export const SessionsFrame = z.object({
  type: z.literal("sessions"),
  count: z.int().min(1),
});

/** Sent once per connection, after every message queued before it connected has been pushed. */
export const SyncedFrame = z.object({ type: z.literal("synced") });

/** Answer to an upload: "delivered" (pushed to a live connection) or "stored" (queued for later). */
export const SentFrame = z.object({
  type: z.literal("sent"),
  id: messageIdHex,
  status: z.enum(["delivered", "stored"]),
});

export const ErrorFrame = z.object({
  type: z.literal("error"),
  code: ErrorCode,
  message: z.string(),
  /** The message id of the upload this error answers, whenever the frame held one (envelope.ts uploadHead). */
  id: messageIdHex.optional(),
});

export const PongFrame = z.object({ type: z.literal("pong") });

/** invited, joined, declined and uninvited (an invitation withdrawn by a remove) are the consent steps. */
export const GroupEventKind = z.enum([
  "created",
  "added",
  "removed",
  "left",
  "invited",
  "joined",
  "declined",
  "uninvited",
]);
export type GroupEventKind = z.infer<typeof GroupEventKind>;

/**
 * A group membership change, queued and acknowledged like a message. It carries the signed statement
 * that made it and the whole member list; a client believes only what the statement's signature and
 * the chain rules confirm (protocol/group-statement.ts), the other fields are the server's summary.
 */
export const EventFrame = z.object({
  type: z.literal("event"),
  id: messageIdHex,
  event: GroupEventKind,
  group: z.string(),
  /** Who made the change (for "left", the leaver; for "created", the creator). */
  by: z.string(),
  /** Whom it concerns (for "created", the creator). */
  user: z.string(),
  epoch: z.int(),
  /** Members after the change, sorted; empty when the last member left and the group closed. */
  members: z.array(z.string()),
  /** Users invited and not yet answered after the change, sorted; never a member. */
  invited: z.array(z.string()),
  /** The admin after the change (a hand-over shows here), or null once the group closed. */
  admin: z.string().nullable(),
  at: z.number(),
  /** The signed statement (base64) and its Ed25519 signature (base64). */
  statement: z.base64(),
  signature: z.base64(),
});
export type EventFrame = z.infer<typeof EventFrame>;

export const ServerFrame = z.discriminatedUnion("type", [
  WelcomeFrame,
  SyncedFrame,
  SentFrame,
  ErrorFrame,
  PongFrame,
  EventFrame,
  SessionsFrame,
]);
export type ServerFrame = z.infer<typeof ServerFrame>;
export type ErrorFrame = z.infer<typeof ErrorFrame>;
export type SentFrame = z.infer<typeof SentFrame>;
export type SessionsFrame = z.infer<typeof SessionsFrame>;
