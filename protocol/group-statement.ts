// Group membership statements: the signed record of one membership change (create, add, remove, leave),
// its byte layout, its hash chain and the one set of transition rules that both the server and clients apply.
//
// Pure and shared by the Worker and the client: encoding, decoding and the rules live here; verifying the
// Ed25519 signature is left to the caller (WebCrypto in the Worker, node:crypto in the client), which
// signs or verifies exactly statementSigningInput(statement). docs/PROTOCOL.md §7 describes the same format.

import { ByteReader, ByteWriter, FormatError, concatBytes, equalBytes, sha256, utf8 } from "./bytes.js";
import { DIGEST_BYTES, SIGNATURE_BYTES, compareNames, membersDigest } from "./envelope.js";
import { GROUP_NAME_PATTERN, MAX_RECIPIENTS, USERNAME_PATTERN } from "./limits.js";

export const STATEMENT_VERSION = 1;
/** Domain separation: a statement's signature is never valid as an envelope's, and the reverse. */
export const STATEMENT_SIGNATURE_CONTEXT = utf8("telepound/v1/group-statement\0");
export const STATEMENT_HASH_CONTEXT = utf8("telepound/v1/group-statement-hash\0");
/** A create statement's `prev`: it starts a chain. */
export const GENESIS_PREV = new Uint8Array(DIGEST_BYTES);
/** The longest statement: fixed fields plus four names of at most 32 bytes each. */
export const MAX_STATEMENT_BYTES = 1 + 1 + 1 + 32 + 4 + DIGEST_BYTES + 8 + 3 * (1 + 32) + DIGEST_BYTES;

export const StatementAction = { create: 1, add: 2, remove: 3, leave: 4 } as const;
export type StatementActionName = keyof typeof StatementAction;
const ACTION_NAMES = new Map<number, StatementActionName>(
  Object.entries(StatementAction).map(([name, byte]) => [byte, name as StatementActionName]),
);

export interface GroupStatement {
  action: StatementActionName;
  group: string;
  /** The epoch this change starts. */
  epoch: number;
  /** statementHash() of the previous statement; GENESIS_PREV for a create. */
  prev: Uint8Array;
  /** The signer's clock, ms since the Unix epoch: shown, never trusted for ordering. */
  at: number;
  /** The signer: the admin for create/add/remove, the leaver for leave. */
  by: string;
  /** Whom the change concerns; equal to `by` for create and leave. */
  user: string;
  /** The admin after the change; "" once the group closed (the last member left). */
  admin: string;
  /** membersDigest() of the members after the change. */
  membersDigest: Uint8Array;
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
  return new ByteWriter(MAX_STATEMENT_BYTES)
    .u8(STATEMENT_VERSION)
    .u8(StatementAction[statement.action])
    .str8(statement.group)
    .u32(statement.epoch)
    .bytes(statement.prev)
    .u64(statement.at)
    .str8(statement.by)
    .str8(statement.user)
    .str8(statement.admin)
    .bytes(statement.membersDigest)
    .finish();
}

/** Decodes and checks the shape (names, version, action); the rules are nextState()'s. */
export function decodeStatement(bytes: Uint8Array): GroupStatement {
  if (bytes.length > MAX_STATEMENT_BYTES) throw new FormatError("statement too long");
  const reader = new ByteReader(bytes);
  const version = reader.u8("statement version");
  if (version !== STATEMENT_VERSION) throw new FormatError(`unsupported statement version ${version}`);
  const actionByte = reader.u8("statement action");
  const action = ACTION_NAMES.get(actionByte);
  if (!action) throw new FormatError(`unknown statement action ${actionByte}`);
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
  reader.end("the statement");
  return { action, group, epoch, prev, at, by, user, admin, membersDigest: digest };
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
 * The state a statement leads to from `prev` (the verified state before it; null when there is none: the
 * chain starts here). `members` is the resulting member list as given alongside a create (any order); the
 * other actions derive it. Throws StatementRuleError for every break of the rules (docs/PROTOCOL.md §7.1).
 * The hash is the caller's (statementHash of the bytes and signature it verified).
 */
export function nextState(
  prev: GroupChainState | null,
  statement: GroupStatement,
  hash: Uint8Array,
  members?: readonly string[],
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
  let result: string[];
  let admin: string;
  if (action === "create") {
    if (prev && prev.members.length > 0)
      throw new StatementRuleError("stale", `the group ${prev.group} exists: it cannot be created again`);
    if (!equalBytes(statement.prev, GENESIS_PREV))
      throw new StatementRuleError("invalid", "a create statement's prev must be 32 zero bytes");
    if (user !== by || statement.admin !== by)
      throw new StatementRuleError("invalid", "a create statement names its signer as user and admin");
    if (!members) throw new StatementRuleError("invalid", "a create statement comes with its member list");
    result = sortedUnique(members);
    if (!result.includes(by)) throw new StatementRuleError("invalid", "the creator must be a member");
    admin = by;
  } else {
    if (!prev || prev.members.length === 0)
      throw new StatementRuleError("stale", "there is no open group to change: it must be created first");
    if (!equalBytes(statement.prev, prev.hash))
      throw new StatementRuleError(
        "stale",
        `the statement does not follow epoch ${prev.epoch}'s (prev differs)`,
      );
    if (action === "add" || action === "remove") {
      if (by !== prev.admin)
        throw new StatementRuleError("forbidden", `only the admin (${prev.admin}) may ${action} members`);
      if (statement.admin !== prev.admin)
        throw new StatementRuleError("invalid", "adding or removing a member does not change the admin");
    }
    if (action === "add") {
      if (prev.members.includes(user)) throw new StatementRuleError("invalid", `${user} is already a member`);
      if (prev.members.length >= MAX_RECIPIENTS)
        throw new StatementRuleError("invalid", `groups are limited to ${MAX_RECIPIENTS} members`);
      result = sortedUnique([...prev.members, user]);
    } else if (action === "remove") {
      if (!prev.members.includes(user)) throw new StatementRuleError("invalid", `${user} is not a member`);
      if (user === by)
        throw new StatementRuleError("invalid", "the admin leaves with a leave statement, not a remove");
      result = prev.members.filter((name) => name !== user);
    } else {
      if (user !== by) throw new StatementRuleError("forbidden", "only a member may sign their own leaving");
      if (!prev.members.includes(by)) throw new StatementRuleError("forbidden", `${by} is not a member`);
      result = prev.members.filter((name) => name !== by);
    }
    admin = statement.admin;
    if (action === "leave") {
      if (result.length === 0) {
        if (admin !== "") throw new StatementRuleError("invalid", "the last member's leave names no admin");
      } else if (by === prev.admin) {
        if (!result.includes(admin))
          throw new StatementRuleError(
            "invalid",
            "a leaving admin must hand the group to a remaining member",
          );
      } else if (admin !== prev.admin) {
        throw new StatementRuleError("invalid", "only a leaving admin hands the group over");
      }
    }
  }
  if (result.length > MAX_RECIPIENTS)
    throw new StatementRuleError("invalid", `groups are limited to ${MAX_RECIPIENTS} members`);
  if (!equalBytes(membersDigest(result), statement.membersDigest))
    throw new StatementRuleError("invalid", "the signed members digest does not match the member list");
  // A list given beside an add, remove or leave (a server's answer) must be the one the rules derive.
  if (members && action !== "create" && !sameNames(sortedUnique(members), result))
    throw new StatementRuleError("invalid", "the member list given does not match the signed statement");
  return { group: statement.group, epoch: statement.epoch, hash, members: result, admin };
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i]);
}

function sortedUnique(names: readonly string[]): string[] {
  return [...new Set(names)].sort(compareNames);
}
