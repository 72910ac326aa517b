// What the user decides about other people's keys: the safety number to compare with them (verify), and
// accepting new keys after a change (trust). The `verify` and `trust` commands and chat's /verify share
// these functions, so each says the same thing the same way; the pins themselves live in contacts.ts.

import type { PublicKeys } from "../protocol/http.js";
import type { Contacts, TrustOutcome } from "./contacts.js";
import { fingerprint, safetyNumber } from "./crypto/index.js";
import { KeyMismatchError, UsageError } from "./errors.js";
import type { LoggedIn } from "./session.js";

/** The safety number between the logged-in user and another, and where that user's keys stand. */
export interface SafetyReport {
  username: string;
  /** 60 digits in 12 groups of 5 (PROTOCOL §3.7), the same on both sides when each has the other's keys. */
  safetyNumber: string;
  /** The keys the number covers: the pinned ones or, while a change waits for `trust`, the server's new ones. */
  publicKeys: PublicKeys;
  fingerprint: string;
  /** ISO 8601: when these keys were marked verified; null if they never were. */
  verifiedAt: string | null;
  /** While a change waits for `trust`: the pinned keys, which the number does not cover. */
  keyChange: { pinnedFingerprint: string; pinnedSince: string; seenAt: string } | null;
  /** True when this report pinned the keys (first contact). */
  newlyPinned: boolean;
}

/**
 * Asks the server for the user's keys (pinning them on first contact, recording a change) and computes
 * the safety number the user should compare. While a key change is pending the number covers the NEW
 * keys: if the other person sees the same, the new keys are theirs and `trust` can accept them.
 */
export async function safetyReport(
  contacts: Contacts,
  me: LoggedIn,
  username: string,
): Promise<SafetyReport> {
  if (username === me.username) {
    throw new UsageError("a safety number is between you and someone else: name another user");
  }
  const { contact, offered } = await contacts.check(username);
  const publicKeys = contact.keyChange ? offered : contact.publicKeys;
  return {
    username,
    safetyNumber: safetyNumber(mine(me), { username, publicKeys }),
    publicKeys,
    fingerprint: fingerprint(publicKeys),
    verifiedAt: contact.verifiedAt ?? null,
    keyChange: contact.keyChange
      ? {
          pinnedFingerprint: contact.fingerprint,
          pinnedSince: contact.firstSeen,
          seenAt: contact.keyChange.seenAt,
        }
      : null,
    newlyPinned: contact.newlyPinned,
  };
}

/** The lines to show for a report, without advice on how to mark it (that depends on where it is shown). */
export function describeSafetyNumber(report: SafetyReport): string[] {
  const { username: name } = report;
  const digits = report.safetyNumber.split(" ");
  const rows = [0, 4, 8].map((start) => `    ${digits.slice(start, start + 4).join(" ")}`);
  if (report.keyChange) {
    const { pinnedFingerprint, pinnedSince, seenAt } = report.keyChange;
    return [
      `WARNING: ${name}'s KEYS CHANGED (noticed ${seenAt}). Either ${name} really has new keys or someone is ` +
        `intercepting your messages.`,
      `  pinned since ${pinnedSince}: fingerprint ${pinnedFingerprint}`,
      `  the server now gives:       fingerprint ${report.fingerprint}`,
      `safety number with ${name}'s NEW keys:`,
      ...rows,
      `If ${name} sees the same number, run \`telepound trust ${name}\` to accept the new keys, then ` +
        `\`telepound verify ${name}\` to mark them verified. Until then nothing is sent to ${name}.`,
    ];
  }
  return [
    `safety number with ${name} (compare it with the one ${name} sees, in person or on a call you trust):`,
    ...rows,
    `${name}'s key fingerprint: ${report.fingerprint}`,
    report.verifiedAt === null ? `${name} is not verified yet` : `${name} verified on ${report.verifiedAt}`,
  ];
}

/** The --json shape of a report (also what `verify --json` prints). */
export function safetyReportData(report: SafetyReport): Record<string, unknown> {
  return {
    username: report.username,
    safetyNumber: report.safetyNumber,
    fingerprint: report.fingerprint,
    verified: report.verifiedAt !== null,
    ...(report.verifiedAt === null ? {} : { verifiedAt: report.verifiedAt }),
    keyChanged: report.keyChange !== null,
  };
}

/**
 * Records that the user compared the report's number with the other person and it matched. Refused while
 * a key change is pending (the number covers keys not accepted yet) or if the keys changed since the
 * report. Returns when the keys were verified (ISO 8601).
 */
export async function markVerified(contacts: Contacts, report: SafetyReport): Promise<string> {
  if (report.keyChange) {
    throw new KeyMismatchError(
      `${report.username}'s keys changed and are not accepted yet: nothing was marked. If ${report.username} ` +
        `sees the same number, run \`telepound trust ${report.username}\`, then verify again.`,
    );
  }
  const verifiedAt = await contacts.markVerified(report.username, report.publicKeys);
  report.verifiedAt = verifiedAt;
  return verifiedAt;
}

export interface TrustResult {
  username: string;
  outcome: TrustOutcome;
  fingerprint: string;
  /** The fingerprint of the keys that were replaced, when they were. */
  previousFingerprint: string | null;
  safetyNumber: string;
  verifiedAt: string | null;
}

/** Accepts the keys the server now gives for the user (`trust`): see Contacts.trustCurrentKeys. */
export async function trustKeys(contacts: Contacts, me: LoggedIn, username: string): Promise<TrustResult> {
  if (username === me.username)
    throw new UsageError("your own keys are not pinned: there is nothing to trust");
  const { outcome, contact, previous } = await contacts.trustCurrentKeys(username);
  return {
    username,
    outcome,
    fingerprint: contact.fingerprint,
    previousFingerprint: outcome === "replaced" ? previous!.fingerprint : null,
    safetyNumber: safetyNumber(mine(me), contact),
    verifiedAt: contact.verifiedAt ?? null,
  };
}

/** The lines to show for a `trust` outcome; `held`: how many messages from the user wait in the hold. */
export function describeTrust(result: TrustResult, held = 0): string[] {
  const { username: name } = result;
  const verifyHint = `compare the safety number with ${name}, then run \`telepound verify ${name}\` to mark the keys verified`;
  const number = `safety number with ${name}: ${result.safetyNumber}`;
  switch (result.outcome) {
    case "unchanged":
      return [
        `nothing changed: the server gives the keys pinned for ${name} (fingerprint ${result.fingerprint})`,
      ];
    case "restored":
      return [
        `the server gives ${name}'s pinned keys again (fingerprint ${result.fingerprint}): the recorded key ` +
          `change is dropped and sending to ${name} works again`,
      ];
    case "pinned":
      return [
        `first contact with ${name}: pinned their key fingerprint ${result.fingerprint}`,
        number,
        verifyHint,
      ];
    case "replaced":
      return [
        `accepted ${name}'s new keys: fingerprint ${result.fingerprint} (was ${result.previousFingerprint})`,
        number,
        `${name} is no longer verified: ${verifyHint}`,
        ...(held === 0
          ? []
          : [
              `${held === 1 ? "1 message" : `${held} messages`} from ${name} held until now will be shown by the next inbox, listen or chat`,
            ]),
      ];
  }
}

/** What inbox (and anything else that receives) says about messages it held for a changed sender. */
export function heldNotice(sender: string, count: number): string {
  const messages = count === 1 ? "1 message" : `${count} messages`;
  return (
    `${messages} from ${sender} held until you trust their new keys: compare safety numbers with ` +
    `\`telepound verify ${sender}\`, then run \`telepound trust ${sender}\``
  );
}

function mine(me: LoggedIn): { username: string; publicKeys: PublicKeys } {
  return {
    username: me.username,
    publicKeys: { encryption: me.exported.encryptionPublic, signing: me.exported.signingPublic },
  };
}
