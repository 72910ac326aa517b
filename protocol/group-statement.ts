// Group membership statements: the signed record of one membership change (create, add, remove, leave,
// and the consent steps invite, join, decline), its byte layout, its hash chain and the one set of
// transition rules that both the server and clients apply.
//
// Pure and shared by the Worker and the client: encoding, decoding and the rules live here; verifying the
// Ed25519 signature is left to the caller (WebCrypto in the Worker, node:crypto in the client), which
// signs or verifies exactly statementSigningInput(statement). docs/PROTOCOL.md §7 describes the same format.

import { ByteReader, ByteWriter, FormatError, concatBytes, equalBytes, sha256, utf8 } from "./bytes.js";
import { DIGEST_BYTES, SIGNATURE_BYTES, compareNames, membersDigest } from "./envelope.js";
import { GROUP_NAME_PATTERN, MAX_RECIPIENTS, USERNAME_PATTERN } from "./limits.js";

/**
 * Version 2 adds `invitedDigest`: every statement commits to the pending invitations as well as the
 * members, so a client that learns a group at any epoch can check a later join. Version 1 statements
 * (made before invitations) still decode, as committing to no invitations; new ones must be version 2.
 */
export const STATEMENT_VERSION = 2;
export const LEGACY_STATEMENT_VERSION = 1;
/** Domain separation: a statement's signature is never valid as an envelope's, and the reverse. */
export const STATEMENT_SIGNATURE_CONTEXT = utf8("telepound/v1/group-statement\0");
export const STATEMENT_HASH_CONTEXT = utf8("telepound/v1/group-statement-hash\0");
/** A create statement's `prev`: it starts a chain. */
export const GENESIS_PREV = new Uint8Array(DIGEST_BYTES);
/** The longest statement: fixed fields, four names of at most 32 bytes each and two digests. */
export const MAX_STATEMENT_BYTES = 1 + 1 + 1 + 32 + 4 + DIGEST_BYTES + 8 + 3 * (1 + 32) + 2 * DIGEST_BYTES;

/**
 * invite (by the admin) names a user who becomes a member only by signing a join; decline is the
 * invitee's no. A remove of an invitee withdraws the invitation.
 */
export const StatementAction = {
  create: 1,
  add: 2,
  remove: 3,
  leave: 4,
  invite: 5,
  join: 6,
  decline: 7,
} as const;
export type StatementActionName = keyof typeof StatementAction;
const ACTION_NAMES = new Map<number, StatementActionName>(
  Object.entries(StatementAction).map(([name, byte]) => [byte, name as StatementActionName]),
);

export interface GroupStatement {
  /** STATEMENT_VERSION unless given; LEGACY_STATEMENT_VERSION only for statements stored before it. */
  version?: number;
  action: StatementActionName;
  group: string;
  /** The epoch this change starts. */
  epoch: number;
  /** statementHash() of the previous statement; GENESIS_PREV for a create. */
  prev: Uint8Array;
  /** The signer's clock, ms since the Unix epoch: shown, never trusted for ordering. */
  at: number;
  /** The signer: the admin for create/add/remove/invite, the user themselves for leave/join/decline. */
  by: string;
  /** Whom the change concerns; equal to `by` for create, leave, join and decline. */
  user: string;
  /** The admin after the change; "" once the group closed (the last member left). */
  admin: string;
  /** membersDigest() of the members after the change. */
  membersDigest: Uint8Array;
  /** membersDigest() of the users invited and not yet answered after the change (absent in version 1). */
  invitedDigest: Uint8Array;
}

/** What a verified chain knows after a statement: enough to check the next one. */
export interface GroupChainState {
  group: string;
  epoch: number;
  /** statementHash() of the statement that made this state. */
  hash: Uint8Array;
  /** Sorted by compareNames; empty once the group closed. */
  members: string[];
  /** "" once the group closed. */
  admin: string;
  /** Invited, not yet joined or declined; sorted by compareNames; never a member. */
  invited: string[];
}

/** A statement that breaks the transition rules: the server answers 400/403/409, a client refuses it. */
export class StatementRuleError extends Error {
  override name = "StatementRuleError";
  constructor(
    /** forbidden: the signer may not make this change; stale: another epoch or history; invalid: the rest. */
    readonly kind: "forbidden" | "stale" | "invalid",
    message: string,
  ) {
    super(message);
  }
}

export function encodeStatement(statement: GroupStatement): Uint8Array {
  if (statement.prev.length !== DIGEST_BYTES) throw new FormatError(`prev must be ${DIGEST_BYTES} bytes`);
  if (statement.membersDigest.length !== DIGEST_BYTES)
    throw new FormatError(`membersDigest must be ${DIGEST_BYTES} bytes`);
  const version = statement.version ?? STATEMENT_VERSION;
  if (version !== STATEMENT_VERSION && version !== LEGACY_STATEMENT_VERSION)
    throw new FormatError(`unsupported statement version ${version}`);
  if (version === LEGACY_STATEMENT_VERSION && StatementAction[statement.action] > StatementAction.leave)
    throw new FormatError(`a version 1 statement cannot ${statement.action}`);
  if (version === STATEMENT_VERSION && statement.invitedDigest.length !== DIGEST_BYTES)
    throw new FormatError(`invitedDigest must be ${DIGEST_BYTES} bytes`);
  const writer = new ByteWriter(MAX_STATEMENT_BYTES)
    .u8(version)
    .u8(StatementAction[statement.action])
    .str8(statement.group)
    .u32(statement.epoch)
    .bytes(statement.prev)
    .u64(statement.at)
    .str8(statement.by)
    .str8(statement.user)
    .str8(statement.admin)
    .bytes(statement.membersDigest);
  if (version === STATEMENT_VERSION) writer.bytes(statement.invitedDigest);
  return writer.finish();
}

/** What a version 1 statement commits to about invitations: that there are none. */
export const NO_INVITATIONS_DIGEST = membersDigest([]);

/** Decodes and checks the shape (names, version, action); the rules are nextState()'s. */
export function decodeStatement(bytes: Uint8Array): GroupStatement {
  if (bytes.length > MAX_STATEMENT_BYTES) throw new FormatError("statement too long");
  const reader = new ByteReader(bytes);
  const version = reader.u8("statement version");
  if (version !== STATEMENT_VERSION && version !== LEGACY_STATEMENT_VERSION)
    throw new FormatError(`unsupported statement version ${version}`);
  const actionByte = reader.u8("statement action");
  const action = ACTION_NAMES.get(actionByte);
  if (!action || (version === LEGACY_STATEMENT_VERSION && actionByte > StatementAction.leave))
    throw new FormatError(`unknown statement action ${actionByte}`);
  const group = reader.str8("statement group");
  if (!GROUP_NAME_PATTERN.test(group)) throw new FormatError("statement group is not a valid group name");
  const epoch = reader.u32("statement epoch");
  if (epoch < 1) throw new FormatError("statement epoch must be at least 1");
  const prev = reader.bytes(DIGEST_BYTES, "statement prev").slice();
  const at = reader.u64("statement at");
  const by = reader.str8("statement by");
  if (!USERNAME_PATTERN.test(by)) throw new FormatError("statement by is not a valid username");
  const user = reader.str8("statement user");
  if (!USERNAME_PATTERN.test(user)) throw new FormatError("statement user is not a valid username");
  const admin = reader.str8("statement admin");
  if (admin !== "" && !USERNAME_PATTERN.test(admin))
    throw new FormatError("statement admin is not a valid username");
  const digest = reader.bytes(DIGEST_BYTES, "statement membersDigest").slice();
  const invitedDigest =
    version === STATEMENT_VERSION
      ? reader.bytes(DIGEST_BYTES, "statement invitedDigest").slice()
      : NO_INVITATIONS_DIGEST.slice();
  reader.end("the statement");
  return { version, action, group, epoch, prev, at, by, user, admin, membersDigest: digest, invitedDigest };
}

/** The exact bytes `by` signs with Ed25519 and everyone verifies. */
export function statementSigningInput(statement: Uint8Array): Uint8Array {
  return concatBytes(STATEMENT_SIGNATURE_CONTEXT, statement);
}

/** Names a statement and its signature: the next statement's `prev`, and what a fork differs in. */
export function statementHash(statement: Uint8Array, signature: Uint8Array): Uint8Array {
  if (signature.length !== SIGNATURE_BYTES)
    throw new FormatError(`signature must be ${SIGNATURE_BYTES} bytes`);
  return sha256(concatBytes(STATEMENT_HASH_CONTEXT, statement, signature));
}

/**
 * The lists given beside a statement. `members` (any order) is the member list a create comes with and
 * `invited` the users it invites; for the other actions the rules derive both, and lists given beside
 * them (a server's answer) must be the derived ones.
 */
export interface StatementLists {
  members?: readonly string[];
  invited?: readonly string[];
}

/**
 * The state a statement leads to from `prev` (the verified state before it; null when there is none: the
 * chain starts here). Throws StatementRuleError for every break of the rules (docs/PROTOCOL.md §7.1).
 * The hash is the caller's (statementHash of the bytes and signature it verified).
 */
export function nextState(
  prev: GroupChainState | null,
  statement: GroupStatement,
  hash: Uint8Array,
  lists: StatementLists = {},
): GroupChainState {
  const { action, by, user } = statement;
  if (prev && statement.group !== prev.group)
    throw new StatementRuleError(
      "invalid",
      `a statement for ${statement.group} in the chain of ${prev.group}`,
    );
  if (prev && statement.epoch !== prev.epoch + 1) {
    throw new StatementRuleError(
      "stale",
      `the statement is for epoch ${statement.epoch}, the group is at epoch ${prev.epoch}: the next is ${prev.epoch + 1}`,
    );
  }
  let members: string[];
  let invited: string[];
  let admin: string;
  if (action === "create") {
    if (prev && prev.members.length > 0)
      throw new StatementRuleError("stale", `the group ${prev.group} exists: it cannot be created again`);
    if (!equalBytes(statement.prev, GENESIS_PREV))
      throw new StatementRuleError("invalid", "a create statement's prev must be 32 zero bytes");
    if (user !== by || statement.admin !== by)
      throw new StatementRuleError("invalid", "a create statement names its signer as user and admin");
    if (!lists.members)
      throw new StatementRuleError("invalid", "a create statement comes with its member list");
    members = sortedUnique(lists.members);
    if (!members.includes(by)) throw new StatementRuleError("invalid", "the creator must be a member");
    invited = sortedUnique(lists.invited ?? []);
    const both = invited.find((name) => members.includes(name));
    if (both) throw new StatementRuleError("invalid", `${both} cannot be both a member and invited`);
    admin = by;
  } else {
    if (!prev || prev.members.length === 0)
      throw new StatementRuleError("stale", "there is no open group to change: it must be created first");
    if (!equalBytes(statement.prev, prev.hash))
      throw new StatementRuleError(
        "stale",
        `the statement does not follow epoch ${prev.epoch}'s (prev differs)`,
      );
    const adminAction = action === "add" || action === "remove" || action === "invite";
    if (adminAction) {
      if (by !== prev.admin)
        throw new StatementRuleError("forbidden", `only the admin (${prev.admin}) may ${action} members`);
    } else if (user !== by) {
      throw new StatementRuleError("forbidden", `only ${user} may sign their own ${action}`);
    }
    if (action !== "leave" && statement.admin !== prev.admin)
      throw new StatementRuleError("invalid", `a ${action} statement does not change the admin`);
    members = prev.members;
    invited = prev.invited;
    const isMember = prev.members.includes(user);
    const isInvited = prev.invited.includes(user);
    switch (action) {
      case "add":
        if (isMember) throw new StatementRuleError("invalid", `${user} is already a member`);
        // Adding someone who was invited settles their invitation.
        members = sortedUnique([...members, user]);
        invited = invited.filter((name) => name !== user);
        break;
      case "invite":
        if (isMember) throw new StatementRuleError("invalid", `${user} is already a member`);
        if (isInvited) throw new StatementRuleError("invalid", `${user} is already invited`);
        invited = sortedUnique([...invited, user]);
        break;
      case "join":
        if (!isInvited) throw new StatementRuleError("forbidden", `${user} is not invited`);
        members = sortedUnique([...members, user]);
        invited = invited.filter((name) => name !== user);
        break;
      case "decline":
        if (!isInvited) throw new StatementRuleError("forbidden", `${user} is not invited`);
        invited = invited.filter((name) => name !== user);
        break;
      case "remove":
        if (user === by)
          throw new StatementRuleError("invalid", "the admin leaves with a leave statement, not a remove");
        if (isMember) members = members.filter((name) => name !== user);
        else if (isInvited) invited = invited.filter((name) => name !== user);
        else throw new StatementRuleError("invalid", `${user} is neither a member nor invited`);
        break;
      case "leave":
        if (!isMember) throw new StatementRuleError("forbidden", `${by} is not a member`);
        members = members.filter((name) => name !== by);
        // A closed group has no invitations left to accept.
        if (members.length === 0) invited = [];
        break;
    }
    admin = statement.admin;
    if (action === "leave") {
      if (members.length === 0) {
        if (admin !== "") throw new StatementRuleError("invalid", "the last member's leave names no admin");
      } else if (by === prev.admin) {
        if (!members.includes(admin))
          throw new StatementRuleError(
            "invalid",
            "a leaving admin must hand the group to a remaining member",
          );
      } else if (admin !== prev.admin) {
        throw new StatementRuleError("invalid", "only a leaving admin hands the group over");
      }
    }
  }
  // Every invitee may join, so members and invitations together fit the key slots of one envelope.
  if (members.length + invited.length > MAX_RECIPIENTS)
    throw new StatementRuleError(
      "invalid",
      `groups are limited to ${MAX_RECIPIENTS} members and invitations together`,
    );
  if (!equalBytes(membersDigest(members), statement.membersDigest))
    throw new StatementRuleError("invalid", "the signed members digest does not match the member list");
  if (!equalBytes(membersDigest(invited), statement.invitedDigest))
    throw new StatementRuleError("invalid", "the signed invitations digest does not match the invitations");
  if (action !== "create") {
    if (lists.members && !sameNames(sortedUnique(lists.members), members))
      throw new StatementRuleError("invalid", "the member list given does not match the signed statement");
    if (lists.invited && !sameNames(sortedUnique(lists.invited), invited))
      throw new StatementRuleError(
        "invalid",
        "the invitation list given does not match the signed statement",
      );
  }
  return { group: statement.group, epoch: statement.epoch, hash, members, admin, invited };
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i]);
}

function sortedUnique(names: readonly string[]): string[] {
  return [...new Set(names)].sort(compareNames);
}
