// The calls objects make to each other, and the Worker to them: what each call takes and answers.
// Defined here once, apart from the classes, so that a caller (another object, a route, names.ts) needs
// only these shapes and never imports a class it would otherwise import it back from.

import type { GroupFailureCode } from "./group/membership.js";
import type { LoginResult, RefusalReason, SessionRecord } from "./home/account.js";
import type { MemberSession } from "./group/queue.js";
import type { Backlog, QueuedItem } from "./home/queue.js";
import type { ShardStats } from "../protocol/http.js";

// ---- the Worker → a shard -----------------------------------------------------------------------

/**
 * Headers the Worker sets on the upgrade it forwards (a client cannot reach a shard directly), and the one
 * the shard answers a refused session with: 401 and why ("unknown" or "expired"), for the Worker to word.
 */
export const ShardHeaders = {
  user: "X-Telepound-User",
  session: "X-Telepound-Session",
  /** SHA-256 (hex) of the token's secret: the shard has the user's home check it. */
  secretHash: "X-Telepound-Secret-Hash",
  receive: "X-Telepound-Receive",
  /** The balancer's ticket for this connection (balancer/shard-pool.ts ShardLoad.ticket). */
  ticket: "X-Telepound-Ticket",
  refusal: "X-Telepound-Refusal",
} as const;

// ---- a balancer (load-balancer.ts, balancer/shard-pool.ts) ---------------------------------------

// The policy's own types, defined with it (it is pure, so Node tests load it without the runtime's types).
export type { ShardLoad, ShardPolicy, ShardState } from "./balancer/shard-pool.js";

/** Where a connection goes, and its ticket (ShardLoad.ticket), which the Worker hands the shard. */
export interface Assignment {
  shard: string;
  ticket: number;
  /** The shard has never reported, so this connect may be what creates it: it must be placed. */
  unreported: boolean;
}

/** What GET /v1/stats shows of one balancer. */
export interface BalancerSnapshot {
  shards: ShardStats[];
}

// ---- a user's home ------------------------------------------------------------------------------

export type DeliverResult =
  | { ok: true; status: "delivered" | "stored" }
  | { ok: false; reason: "unknown_user" }
  | { ok: false; reason: "quota_exceeded"; message: string };

/**
 * Something for this user, by sender and id: an envelope's delivery frame (signed part, signature, this
 * user's slot) or a group event. The pair is the item's key: ids are chosen by senders, so two may meet.
 */
export interface Incoming extends QueuedItem {
  /** The envelope's sender (checked by the shard), or eventSender(group) for a group's event. */
  sender: string;
  id: string;
  /**
   * A sent copy's sealing session: every other live session of the user gets the copy, this one not
   * (it has the message). With no other session the copy is stored for nobody, so not at all.
   */
  exceptSession?: string;
}

/**
 * Where an item comes from: a user's upload through a shard, held to the quotas, or a group's room (its
 * events, and the messages it hands over from its own queue), which is stored whatever the quotas say:
 * those were accepted already, and the room's queue has its own quota per member (group/queue.ts).
 */
export type DeliveryOrigin = "upload" | "room";

/** The sender key of a group's membership events: not a username (no "#" in those), so none can meet it. */
export function eventSender(group: string): string {
  return `#${group}`;
}

/**
 * What a socket's attach gets: the session's expiry, the first backlog batch, and the groups whose rooms
 * queue the user's group messages; or why not.
 */
export type AttachResult =
  | { ok: true; expiresAt: number; sessions: number; backlog: Backlog; groups: string[] }
  | { ok: false; reason: RefusalReason };

/** A send-only socket's check: the session's expiry and the account's live session count; or why not. */
export type SenderCheck =
  { ok: true; expiresAt: number; sessions: number } | { ok: false; reason: RefusalReason };

/** A session the home ended, with the shards that hold its sockets: the Worker closes them there. */
export interface EndedSessionSockets extends SessionRecord {
  shards: string[];
}

/** A login's answer: the account's keys, and the sessions the session cap ended to make room for it. */
export type HomeLoginResult =
  | Exclude<LoginResult, { ok: true }>
  | (Extract<LoginResult, { ok: true }> & { endedSessions: EndedSessionSockets[] });

/** A session in GET /v1/sessions: `connected` when one of its sockets receives right now. */
export interface ListedSession extends SessionRecord {
  connected: boolean;
}

/**
 * A home's answer to a room that made its user a member (or no longer one): the live sessions, which the
 * room queues its messages for, and the shards that hold the user's receiving sockets right now, which
 * the room pushes to from then on (a member added while connected never opens the group's backlog).
 * Both empty for a user who left.
 */
export interface GroupTracking {
  sessions: MemberSession[];
  shards: string[];
}

/** Message and event ids one session has stored or shown. */
export interface SessionAck {
  session: string;
  ids: string[];
}

/** A stored item on its way to a shard; `seq` lets the shard merge live pushes with the backlog. */
export interface Outgoing extends QueuedItem {
  seq: number;
  /** Not for this session's sockets (a sent copy, Incoming.exceptSession). */
  exceptSession?: string;
}

// ---- a group's room -----------------------------------------------------------------------------

/** A refusal with code consent_required names in `users` who must be invited rather than added. */
export type GroupResult<T> =
  ({ ok: true } & T) | { ok: false; code: GroupFailureCode; message: string; users?: string[] };

/** One group message, already checked by the shard for shape and sender; the room checks membership. */
export interface GroupPost {
  sender: string;
  id: string;
  epoch: number;
  membersDigest: Uint8Array;
  /** Signed part and signature, forwarded unchanged to every member. */
  signed: Uint8Array;
  slots: Array<{ recipient: string; bytes: Uint8Array }>;
}

/** A stored group message on its way to the shards: each gives its members' sockets their copy. */
export interface GroupDelivery {
  seq: number;
  sender: string;
  /** Signed part and signature, the same for every member. */
  signed: Uint8Array;
  slots: Array<{ member: string; slot: Uint8Array }>;
}

/** What a shard did with one pushed group message. */
export interface GroupPushOutcome {
  /** A receiving socket of a member other than the sender got it (or holds it while its backlog drains). */
  reachedOther: boolean;
  /**
   * The members whose slots came with it and who have no receiving socket on the shard: the room stops
   * sending their slots there, and stops pushing there when none of them was found.
   */
  absent: string[];
}

/**
 * A stored group message on its way to a relay (group-relay.ts): the signed part once, and for each shard
 * the relay reaches, the slots of the members there.
 */
export interface RelayedDelivery {
  seq: number;
  sender: string;
  signed: Uint8Array;
  shards: Array<{ shard: string; slots: Array<{ member: string; slot: Uint8Array }> }>;
}

/** What each shard of a relayed delivery did with it, in the order given; null where the push failed. */
export type RelayOutcome = Array<GroupPushOutcome | null>;

/** A session's acknowledgement of group messages, with its backlog cursor while it is still draining. */
export interface GroupAck {
  member: string;
  session: string;
  ids: string[];
  cursor: number | null;
}

export type PostResult =
  | { ok: true; status: "delivered" | "stored" }
  | {
      ok: false;
      code: "unknown_group" | "forbidden" | "stale_epoch" | "bad_frame" | "quota_exceeded";
      message: string;
    };
