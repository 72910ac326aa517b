// What the core tells its faces about, as plain data: a verified message (what `inbox --json` prints),
// a verified group change, a received file. The printer (cli-client/output.ts) and, later, a daemon's
// JSON-RPC notifications or a web page render these; nothing here knows of a terminal.

import type { GroupEventKind } from "../protocol/frames.js";
import type { Emitter } from "./emitter.js";

/** A decrypted, verified message, as inbox and chat show it. */
export interface ShownMessage {
  id: string;
  from: string;
  /** The recipient (direct, and a message we sent from another device) or the group's name (group). */
  to: string;
  /** Group messages only: the group's name. */
  group?: string;
  /**
   * "out": sent by this user, from another of their devices (a direct message's sent copy, or their own
   * group message); absent for a message received from someone else.
   */
  direction?: "out";
  text: string;
  /** The sender's clock, milliseconds since the Unix epoch. */
  sentAt: number;
  /** A received file, saved and verified. */
  file?: ShownFile;
  /** A file that came with the message but could not be received (the reason); the text still stands. */
  fileError?: string;
  /** Sent before a message of its sender's device that was shown already: it arrives out of order. */
  outOfOrder?: true;
  /** How many messages of its sender's device in this conversation were skipped just before this one. */
  missedBefore?: number;
}

export interface ShownFile {
  /** The sender's name for it, made safe; the saved file may carry a " (1)" suffix. */
  name: string;
  /** Where it was saved. */
  path: string;
  /** Plaintext bytes. */
  size: number;
  /** SHA-256 of the plaintext, hex. */
  sha256: string;
}

/** A group membership change, as its signed statement (verified by groups.ts) says. */
export interface ShownEvent {
  event: GroupEventKind;
  group: string;
  by: string;
  user: string;
  epoch: number;
  members: string[];
  /** Invited and not yet answered after the change, sorted. */
  invited: string[];
  admin: string | null;
  /** The signer's clock, ms. */
  at: number;
  /** Whose signature made the change (verified under their pinned key): always `by`, said explicitly. */
  signedBy: string;
  /** Who it is shown to: the human line says "you" for them (not in --json, where names are plain). */
  viewer: string;
}

/** What a verified change (groups.ts VerifiedEpoch) says, as far as showing it goes. */
export interface VerifiedChange {
  event: GroupEventKind;
  by: string;
  user: string;
  epoch: number;
  members?: string[];
  invited?: string[];
  /** "" once the group closed. */
  admin: string;
  at: number;
}

/**
 * How a verified change is shown to `viewer`: the fields come from the signed statement and the lists
 * its digests proved, never the server's summary.
 */
export function eventOfEpoch(group: string, epoch: VerifiedChange, viewer: string): ShownEvent {
  return {
    event: epoch.event,
    group,
    by: epoch.by,
    user: epoch.user,
    epoch: epoch.epoch,
    members: epoch.members ?? [],
    invited: epoch.invited ?? [],
    admin: epoch.admin === "" ? null : epoch.admin,
    at: epoch.at,
    signedBy: epoch.by,
    viewer,
  };
}

/** Something the user should know that stops nothing: a dropped message, a stray server error. */
export interface Warning {
  /** One line of text, which may carry other people's words: a face sanitises it before showing it. */
  message: string;
}

/** A contact's keys are not the pinned ones: their messages are held, sends to them refused. */
export interface KeyChange {
  user: string;
  /** The loud explanation, with what to do (verify, then trust). */
  message: string;
}

/** A message held because its sender's keys changed: shown once the new keys are trusted. */
export interface HeldMessage {
  from: string;
  id: string;
  /** How many of this sender's messages this receiver has held so far. */
  count: number;
}

/** The live connection's state. */
export type ConnectionState =
  | { state: "connecting" }
  | { state: "open" }
  /** Dropped; the first attempt to reconnect is at `retryAt` (ms since the Unix epoch), in `retryInMs`. */
  | { state: "reconnecting"; cause: string; retryAt: number; retryInMs: number }
  /** Connected again after a drop. */
  | { state: "reopened" }
  | { state: "closed" };

/** A file being sent or received: "start", then "advance" as bytes go, then "end" (done or failed). */
export interface Progress {
  /** The events of one transfer share this number. */
  transfer: number;
  direction: "send" | "receive";
  /** The file's name (the sender's, made safe, when receiving). */
  name: string;
  phase: "start" | "advance" | "end";
  /** Bytes transferred so far, of `total`: the sealed file's size. */
  bytes: number;
  total: number;
  /** The file's own (plaintext) size. */
  size: number;
}

/** Every event the core emits, by name. */
export interface ClientEvents {
  message: ShownMessage;
  groupEvent: ShownEvent;
  warning: Warning;
  keyChange: KeyChange;
  held: HeldMessage;
  connection: ConnectionState;
  progress: Progress;
}

export type ClientEmitter = Emitter<ClientEvents>;
