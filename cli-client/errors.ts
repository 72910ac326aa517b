// The CLI's typed errors and the exit code each maps to; the only place exit codes are defined.
// Commands throw these; cli.ts turns whatever was thrown into one stderr line and an exit code.
//
// Exit codes: ExitCode names them and EXIT_CODE_MEANINGS says what each means; `telepound --help`
// prints that table, and the README's table adds the details.

import {
  CryptoError,
  PayloadTooLargeError,
  TamperedMessageError,
  WrongPasswordError,
} from "./crypto/index.js";
import { FormatError } from "../protocol/bytes.js";

export const ExitCode = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  auth: 3,
  notFound: 4,
  network: 5,
  rateLimited: 6,
  refused: 7,
  keyMismatch: 8,
  busy: 9,
  membershipChanged: 10,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** One line per exit code, in order; `telepound --help` prints them, so keep each short. */
export const EXIT_CODE_MEANINGS: Readonly<Record<ExitCode, string>> = {
  [ExitCode.ok]: "ok",
  [ExitCode.unexpected]: "unexpected error: a bug, or the home folder is damaged, locked or unwritable",
  [ExitCode.usage]: "usage error: bad arguments or options, no password available, passwords differ",
  [ExitCode.auth]: "not logged in, session expired or revoked, or wrong password",
  [ExitCode.notFound]: "not found: unknown user or group",
  [ExitCode.network]: "server unreachable, or a protocol failure (malformed answer, connection dropped)",
  [ExitCode.rateLimited]: "rate limited: try again later",
  [ExitCode.refused]: "refused by the server: name taken, forbidden, too large, quota full, bad request",
  [ExitCode.keyMismatch]: "key mismatch: a user's keys changed, or a message failed to verify",
  [ExitCode.busy]: "busy: another inbox, listen or chat already receives for this home",
  [ExitCode.membershipChanged]: "group membership changed: review it and send again (nothing was sent)",
  [ExitCode.interrupted]: "interrupted (Ctrl-C at a prompt or during inbox)",
};

/** An expected failure: its message is shown as is, without a stack trace. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  override name = "UsageError";
  constructor(message: string) {
    super(message, ExitCode.usage);
  }
}

export class AuthError extends CliError {
  override name = "AuthError";
  constructor(message: string) {
    super(message, ExitCode.auth);
  }
}

export class NotFoundError extends CliError {
  override name = "NotFoundError";
  constructor(message: string) {
    super(message, ExitCode.notFound);
  }
}

/** The server could not be reached, or answered something that breaks the protocol. */
export class NetworkError extends CliError {
  override name = "NetworkError";
  constructor(message: string) {
    super(message, ExitCode.network);
  }
}

export class RateLimitedError extends CliError {
  override name = "RateLimitedError";
  constructor(
    message: string,
    /** Seconds the server asked us to wait, when it said. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message, ExitCode.rateLimited);
  }
}

export class RefusedError extends CliError {
  override name = "RefusedError";
  constructor(message: string) {
    super(message, ExitCode.refused);
  }
}

/**
 * A group change that would make members of users who never wrote to its signer (403 consent_required):
 * `users` names them. The group commands catch it and invite them instead; uncaught it is a refusal.
 */
export class ConsentRequiredError extends RefusedError {
  override name = "ConsentRequiredError";
  constructor(
    message: string,
    readonly users: readonly string[],
  ) {
    super(message);
  }
}

/**
 * A group message sealed for an epoch the group has left behind (a member joined or left meanwhile):
 * the sender refetches the group and seals again; only after several tries does it reach the user.
 */
export class StaleEpochError extends RefusedError {
  override name = "StaleEpochError";
}

export class KeyMismatchError extends CliError {
  override name = "KeyMismatchError";
  constructor(message: string) {
    super(message, ExitCode.keyMismatch);
  }
}

/**
 * A group send met a verified membership change the user had not been shown: it was shown instead, and
 * nothing was sealed. The next send proceeds (the change has been shown).
 */
export class MembershipChangedError extends CliError {
  override name = "MembershipChangedError";
  constructor(message: string) {
    super(message, ExitCode.membershipChanged);
  }
}

/** Another process already receives for this home (Home.claimReceiver). */
export class BusyError extends CliError {
  override name = "BusyError";
  constructor(message: string) {
    super(message, ExitCode.busy);
  }
}

export class InterruptedError extends CliError {
  override name = "InterruptedError";
  constructor(message = "interrupted") {
    super(message, ExitCode.interrupted);
  }
}

/** Exit code and one-line message for anything thrown, including errors from crypto/ and protocol/. */
export function describeError(error: unknown): { exitCode: ExitCode; message: string } {
  if (error instanceof CliError) return { exitCode: error.exitCode, message: error.message };
  // Order matters: the specific crypto errors may extend CryptoError.
  if (error instanceof WrongPasswordError) return { exitCode: ExitCode.auth, message: "wrong password" };
  // The user's own input over the protocol's limits: the server would refuse it, so it is refused here.
  if (error instanceof PayloadTooLargeError)
    return { exitCode: ExitCode.refused, message: `too large: ${error.message}` };
  if (error instanceof TamperedMessageError) {
    return { exitCode: ExitCode.keyMismatch, message: `verification failed: ${error.message}` };
  }
  if (error instanceof CryptoError) {
    return { exitCode: ExitCode.keyMismatch, message: `verification failed: ${error.message}` };
  }
  if (error instanceof FormatError) {
    return { exitCode: ExitCode.network, message: `protocol failure: ${error.message}` };
  }
  // Ctrl-C at an @inquirer prompt rejects with ExitPromptError; matched by name to avoid importing its internals.
  if (error instanceof Error && error.name === "ExitPromptError") {
    return { exitCode: ExitCode.interrupted, message: "interrupted" };
  }
  // One line, as for every failure; cli.ts adds the stack trace when TELEPOUND_DEBUG is set.
  const message = error instanceof Error ? error.message : String(error);
  return { exitCode: ExitCode.unexpected, message: `unexpected error: ${message}` };
}
