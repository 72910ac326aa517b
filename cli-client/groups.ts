// What this device knows about its groups: for each, a chain of membership statements it verified
// itself (signature under the signer's pinned key, the shared transition rules, the members and invitations
// digests), anchored at the group's create or at the statement that added or invited this user. Nothing
// the server says about membership is believed unless such a chain proves it; sends are sealed for, and
// messages checked against, verified states only (docs/PROTOCOL.md §7). An invitee's chain proves whom
// they are invited to join, so the join they sign follows a verified head.

import { FormatError, fromHex, toHex } from "../protocol/bytes.js";
import { compareNames, membersDigest } from "../protocol/envelope.js";
import {
  type GroupChainState,
  type GroupStatement,
  StatementRuleError,
  decodeStatement,
  nextState,
  statementHash,
} from "../protocol/group-statement.js";
import type { GroupEventKind } from "../protocol/frames.js";
import type { GroupInfo } from "../protocol/http.js";
import { MAX_RECIPIENTS } from "../protocol/limits.js";
import type { Contacts } from "./contacts.js";
import { CryptoError, fromBase64, verifyStatement } from "./crypto/index.js";
import { KeyMismatchError, NetworkError, NotFoundError, RefusedError } from "./errors.js";
import type { GroupsFile, Home, VerifiedEpochRecord } from "./home.js";
import type { LoggedIn } from "./session.js";

/** Member lists kept per group in groups.json, newest first; hashes and digests are kept for every epoch. */
export const EPOCHS_KEPT = 64;
/** Most epochs one catch-up fetches one by one before giving up (a group that changed this often is odd). */
export const MAX_CATCH_UP = 1024;

export type VerifiedEpoch = VerifiedEpochRecord;

export interface EpochMembers {
  epoch: number;
  /** Sorted by compareNames: the order membersDigest and key slots use. */
  members: string[];
}

/**
 * A statement as the server hands it over: base64 statement and signature, and the member and invitation
 * lists after it (checked against the statement's digests).
 */
export interface SignedStatementInput {
  statement: string;
  signature: string;
  members: readonly string[];
  invited: readonly string[];
}

export type LearnOutcome =
  /** New verified states, oldest first (a catch-up may adopt several). */
  | { kind: "adopted"; epochs: VerifiedEpoch[] }
  /** The very statement already verified: a replay, nothing changes. */
  | { kind: "known"; epoch: VerifiedEpoch }
  /** A second, different statement for an epoch: recorded, and the group is refused from now on. */
  | { kind: "fork"; epoch: number; message: string }
  /** Not verifiable (bad signature, broken rules, missing epochs): nothing adopted. */
  | { kind: "refused"; reason: string };

interface Parsed {
  bytes: Uint8Array;
  signature: Uint8Array;
  statement: GroupStatement;
  hash: Uint8Array;
  hashHex: string;
  members: string[];
  invited: string[];
}

interface Chain {
  name: string;
  anchor: number;
  epochs: Map<number, VerifiedEpoch>;
  forks: Map<number, Set<string>>;
}

/** A verified state and the statement that led to it, with how the change is shown. */
interface Step {
  parsed: Parsed;
  state: GroupChainState;
  event: GroupEventKind;
}

/** Why a chain could not be extended; `fork` when it is because the server showed another history. */
class ChainBreak extends Error {
  constructor(
    message: string,
    readonly forkAt: number | null = null,
  ) {
    super(message);
  }
}

export class GroupDirectory {
  private readonly chains = new Map<string, Chain>();
  /** Groups changed since the last save: only these are merged into the file. */
  private readonly dirty = new Set<string>();

  private constructor(
    private readonly home: Home,
    private readonly me: LoggedIn,
    private readonly contacts: Contacts,
  ) {}

  static async load(home: Home, me: LoggedIn, contacts: Contacts): Promise<GroupDirectory> {
    const directory = new GroupDirectory(home, me, contacts);
    const file = await home.read("groups.json");
    if (file?.owner === me.username) {
      for (const group of file.groups) directory.chains.set(group.name, fromFile(group));
    }
    return directory;
  }

  /** The newest verified state of `name` with its members, or null; refuses a forked group. */
  latest(name: string): EpochMembers | null {
    this.refuseFork(name);
    const head = this.headOf(name);
    return head?.members ? { epoch: head.epoch, members: head.members } : null;
  }

  /** The newest verified state, whatever it is (null before any). */
  headOf(name: string): VerifiedEpoch | null {
    const chain = this.chains.get(name);
    return chain ? chainHead(chain) : null;
  }

  isForked(name: string): boolean {
    return (this.chains.get(name)?.forks.size ?? 0) > 0;
  }

  /** Throws the loud fork error (exit 8) if the server ever showed this device two histories of `name`. */
  refuseFork(name: string): void {
    const chain = this.chains.get(name);
    const first = chain ? Math.min(...chain.forks.keys()) : Infinity;
    if (Number.isFinite(first)) throw new KeyMismatchError(forkMessage(name, first, "Nothing was sent."));
  }

  /** Verified changes of `name` not shown to the user yet, oldest first. */
  unshown(name: string): VerifiedEpoch[] {
    const chain = this.chains.get(name);
    if (!chain) return [];
    return [...chain.epochs.values()].filter((epoch) => !epoch.shown).sort((a, b) => a.epoch - b.epoch);
  }

  markShown(name: string, epochs: readonly VerifiedEpoch[]): void {
    const chain = this.chains.get(name);
    if (!chain) return;
    for (const { epoch } of epochs) {
      const known = chain.epochs.get(epoch);
      if (known && !known.shown) {
        known.shown = true;
        this.dirty.add(name);
      }
    }
  }

  /** Whether the newest verified state has this user invited (not a member): what `group join` needs. */
  isInvited(name: string): boolean {
    return this.headOf(name)?.invited?.includes(this.me.username) ?? false;
  }

  /**
   * Asks the server for the group's current head (GroupInfo: 403 neither member nor invited, 404 no such
   * group) and verifies it, fetching and verifying every epoch in between. Throws on a fork or an
   * unverifiable answer; returns the server's GroupInfo (its lists and admin now proved) and what was
   * adopted.
   */
  async catchUp(name: string): Promise<{ info: GroupInfo; adopted: VerifiedEpoch[] }> {
    this.refuseFork(name);
    const info = await this.me.api.groupInfo(name);
    if (info.name !== name) {
      throw new NetworkError(
        `protocol failure: asked for the group ${name}, the server answered for ${info.name}`,
      );
    }
    const adopted = await this.adoptHead(name, info, "Nothing was sent.");
    const head = this.headOf(name);
    if (!head || head.epoch !== info.epoch || head.admin !== info.admin) {
      throw new NetworkError(
        `protocol failure: the server's group ${name} (epoch ${info.epoch}) is not the verified head (epoch ${head?.epoch ?? "none"})`,
      );
    }
    await this.save();
    return { info, adopted };
  }

  /**
   * Verifies the head statement a GroupInfo answer carries, with its lists, and adopts it (and any
   * epoch between): the states adopted, or the error settle() reports, with `consequence` said.
   */
  async adoptHead(name: string, info: GroupInfo, consequence: string): Promise<VerifiedEpoch[]> {
    const outcome = await this.learn(name, {
      statement: info.statement,
      signature: info.signature,
      members: info.members.map((member) => member.username),
      invited: info.invited,
    });
    return this.settle(name, outcome, consequence);
  }

  /** Turns a learn outcome into adopted states, or the error a command reports (exit 8). */
  settle(name: string, outcome: LearnOutcome, consequence: string): VerifiedEpoch[] {
    if (outcome.kind === "adopted") return outcome.epochs;
    if (outcome.kind === "known") return [];
    if (outcome.kind === "fork") throw new KeyMismatchError(`${outcome.message} ${consequence}`);
    throw new KeyMismatchError(
      `the server's membership statement for the group ${name} does not verify: ${outcome.reason}. ${consequence}`,
    );
  }

  /**
   * The verified members of `name` at `epoch`, for checking a group message: from the chain, else
   * fetched and verified (a newer epoch extends the chain; a trimmed one is checked against its hash).
   * Throws RefusedError when the epoch cannot be verified, KeyMismatchError for a forked epoch.
   */
  async membersAt(name: string, epoch: number): Promise<string[]> {
    const chain = this.chains.get(name);
    if (chain && [...chain.forks.keys()].some((forked) => epoch >= forked)) {
      throw new KeyMismatchError(
        forkMessage(name, Math.min(...chain.forks.keys()), "Its messages are dropped."),
      );
    }
    const known = chain?.epochs.get(epoch);
    if (known?.members) return known.members;
    const answer = await this.me.api.groupEpoch(name, epoch);
    if (known) {
      // A trimmed member list: the answer must be the very statement verified before, with its members.
      const parsed = parse(answer);
      if (parsed.hashHex !== known.hash || toHex(membersDigest(parsed.members)) !== known.digest)
        throw new RefusedError(`the server's epoch ${epoch} of ${name} is not the one this device verified`);
      return parsed.members;
    }
    const outcome = await this.learn(name, answer);
    if (outcome.kind === "fork") throw new KeyMismatchError(outcome.message);
    if (outcome.kind === "refused")
      throw new RefusedError(`epoch ${epoch} of ${name} does not verify: ${outcome.reason}`);
    const members = this.chains.get(name)?.epochs.get(epoch)?.members;
    if (!members) throw new RefusedError(`epoch ${epoch} of ${name} could not be verified`);
    return members;
  }

  /**
   * Verifies one statement from the server (an event, a GroupInfo head, an epoch answer) against the chain,
   * fetching missing epochs in between, and adopts it and them only if all verify. Nothing is adopted
   * otherwise. A statement for a known epoch with a different hash is a fork, recorded here.
   */
  async learn(name: string, input: SignedStatementInput): Promise<LearnOutcome> {
    let signed: Parsed;
    try {
      signed = parse(input);
    } catch (error) {
      if (error instanceof FormatError || error instanceof CryptoError)
        return { kind: "refused", reason: `malformed statement: ${error.message}` };
      throw error;
    }
    const { statement } = signed;
    if (statement.group !== name)
      return { kind: "refused", reason: `the statement is for the group ${statement.group}, not ${name}` };
    const chain = this.chains.get(name);
    const known = chain?.epochs.get(statement.epoch);
    if (known?.hash === signed.hashHex) {
      // The very statement, but lists beside it that are not the signed ones: the server lies.
      if (toHex(membersDigest(signed.members)) !== known.digest)
        return { kind: "refused", reason: "the member list given does not match the signed members digest" };
      if (toHex(membersDigest(signed.invited)) !== known.invitedDigest)
        return {
          kind: "refused",
          reason: "the invitation list given does not match the signed invitations digest",
        };
      return { kind: "known", epoch: known };
    }
    const unsigned = await this.signatureProblem(signed);
    if (unsigned) return { kind: "refused", reason: unsigned };
    if (known) return this.recordFork(name, statement.epoch, [known.hash, signed.hashHex]);
    const head = chain ? chainHead(chain) : null;
    if (head && chain && statement.epoch <= head.epoch) {
      if (statement.epoch >= chain.anchor) return this.recordFork(name, statement.epoch, [signed.hashHex]);
      return {
        kind: "refused",
        reason: `epoch ${statement.epoch} is older than this device's verified history`,
      };
    }
    try {
      const { anchor, states } = await this.extend(name, chain && head ? { chain, head } : null, signed);
      // A walk back from a new anchor may cross epochs verified before: the same statements, or a fork.
      const current = this.chains.get(name);
      for (const { parsed } of states) {
        const before = current?.epochs.get(parsed.statement.epoch);
        if (before && before.hash !== parsed.hashHex)
          return this.recordFork(name, parsed.statement.epoch, [parsed.hashHex]);
      }
      return { kind: "adopted", epochs: this.adopt(name, anchor, states) };
    } catch (error) {
      if (!(error instanceof ChainBreak)) throw error;
      if (error.forkAt !== null) return this.recordFork(name, error.forkAt, [signed.hashHex], error.message);
      return { kind: "refused", reason: error.message };
    }
  }

  /**
   * The states from the known head (exclusive) through `signed`, verified in order: directly, after
   * fetching the epochs in between, or from a new anchor (the create, the add or invite of this user)
   * when there is no chain or this user has left the known one.
   */
  private async extend(
    name: string,
    known: { chain: Chain; head: VerifiedEpoch } | null,
    signed: Parsed,
  ): Promise<{ anchor: number | null; states: Step[] }> {
    const me = this.me.username;
    const anchorable = isAnchor(signed, me);
    /** Verified states of the known chain up to where this user left it, kept beside a new anchor. */
    let leftKnown: Step[] = [];
    if (known) {
      const { head } = known;
      const fromHead: GroupChainState = {
        group: name,
        epoch: head.epoch,
        hash: fromHex(head.hash),
        members: head.members ?? [],
        admin: head.admin,
        invited: head.invited ?? [],
      };
      const { fetched, missing } = await this.fetchRange(name, head.epoch + 1, signed.statement.epoch - 1);
      if (!missing) return { anchor: null, states: this.verifyForward(fromHead, [...fetched, signed]) };
      // The server would not show the rest: fine only if what it showed removes us, withdraws or ends our
      // invitation (or closes the group), after which a create, re-add or new invitation starts a new
      // chain. While we are in it, member or invited, the chain must be complete.
      leftKnown = this.verifyForward(fromHead, fetched);
      const last = leftKnown.at(-1)?.state ?? fromHead;
      if (last.members.includes(me) || last.invited.includes(me)) throw missing;
    }
    const rest = await this.anchorAndFollow(name, signed, anchorable);
    return { anchor: rest.anchor, states: [...leftKnown, ...rest.states] };
  }

  /**
   * A new chain through `signed`: from `signed` itself, or from the create, add or invite of us it
   * follows (our join follows our invitation, back through `prev` hashes).
   */
  private async anchorAndFollow(
    name: string,
    signed: Parsed,
    anchorable: boolean,
  ): Promise<{ anchor: number; states: Step[] }> {
    const me = this.me.username;
    if (anchorable) return { anchor: signed.statement.epoch, states: [anchorStep(signed)] };
    // No chain yet, and this is a later change: walk back to the statement that brought us in.
    const back: Parsed[] = [signed];
    for (let epoch = signed.statement.epoch - 1; ; epoch--) {
      if (epoch < 1 || back.length > MAX_CATCH_UP)
        throw new ChainBreak(
          `no create, add or invitation of ${me} found before epoch ${signed.statement.epoch}`,
        );
      const earlier = await this.fetchOne(name, epoch);
      const later = back[0]!;
      if (toHex(later.statement.prev) !== earlier.hashHex)
        throw new ChainBreak(`epoch ${later.statement.epoch} does not follow epoch ${epoch}'s statement`);
      back.unshift(earlier);
      if (isAnchor(earlier, me)) break;
    }
    const [first, ...rest] = back;
    const anchor = anchorStep(first!);
    return {
      anchor: first!.statement.epoch,
      states: [anchor, ...this.verifyForward(anchor.state, rest)],
    };
  }

  /**
   * Applies the shared rules statement by statement. One that does not follow the verified history (its
   * prev or epoch is not the next, or a create while the group is open) contradicts it: a fork.
   */
  private verifyForward(from: GroupChainState, statements: Parsed[]): Step[] {
    const states: Step[] = [];
    let previous = from;
    for (const parsed of statements) {
      const { statement } = parsed;
      let state: GroupChainState;
      try {
        state = nextState(previous, statement, parsed.hash, {
          members: parsed.members,
          invited: parsed.invited,
        });
      } catch (error) {
        if (!(error instanceof StatementRuleError)) throw error;
        throw new ChainBreak(
          `epoch ${statement.epoch}: ${error.message}`,
          error.kind === "stale" ? statement.epoch : null,
        );
      }
      const withdrawn = statement.action === "remove" && previous.invited.includes(statement.user);
      states.push({ parsed, state, event: withdrawn ? "uninvited" : EVENT_OF_ACTION[statement.action] });
      previous = state;
    }
    return states;
  }

  /**
   * Epochs first..last from the epoch route, each signature checked (the rules are verifyForward's): as
   * many as the server answers, in order, and why the rest is missing, if it is.
   */
  private async fetchRange(
    name: string,
    first: number,
    last: number,
  ): Promise<{ fetched: Parsed[]; missing: ChainBreak | null }> {
    if (last - first + 1 > MAX_CATCH_UP) throw new ChainBreak(`more than ${MAX_CATCH_UP} epochs are missing`);
    const fetched: Parsed[] = [];
    for (let epoch = first; epoch <= last; epoch++) {
      try {
        fetched.push(await this.fetchOne(name, epoch));
      } catch (error) {
        if (error instanceof ChainBreak) return { fetched, missing: error };
        throw error;
      }
    }
    return { fetched, missing: null };
  }

  private async fetchOne(name: string, epoch: number): Promise<Parsed> {
    let answer: SignedStatementInput;
    try {
      answer = await this.me.api.groupEpoch(name, epoch);
    } catch (error) {
      if (error instanceof RefusedError || error instanceof NotFoundError)
        throw new ChainBreak(`epoch ${epoch} is missing (${error.message}): the chain cannot be completed`);
      throw error;
    }
    let parsed: Parsed;
    try {
      parsed = parse(answer);
    } catch (error) {
      if (error instanceof FormatError || error instanceof CryptoError)
        throw new ChainBreak(`epoch ${epoch}: malformed statement: ${error.message}`);
      throw error;
    }
    if (parsed.statement.group !== name || parsed.statement.epoch !== epoch)
      throw new ChainBreak(`the server answered epoch ${epoch} of ${name} with another statement`);
    const problem = await this.signatureProblem(parsed);
    if (problem) throw new ChainBreak(`epoch ${epoch}: ${problem}`);
    return parsed;
  }

  /** Null when `by` signed it under their pinned key (pinned now on first contact); else why not. */
  private async signatureProblem(signed: Parsed): Promise<string | null> {
    const { by } = signed.statement;
    try {
      const signer = await this.contacts.resolveForReceiving(by);
      if (verifyStatement(signer.keys.signing, signed.bytes, signed.signature)) return null;
      return `the signature is not ${by}'s (it does not verify under their pinned key)`;
    } catch (error) {
      if (error instanceof NotFoundError) return `its signer ${by} has no account`;
      if (error instanceof KeyMismatchError || error instanceof CryptoError) return error.message;
      throw error;
    }
  }

  private adopt(name: string, anchor: number | null, states: Step[]): VerifiedEpoch[] {
    let chain = this.chains.get(name);
    if (!chain) {
      chain = { name, anchor: anchor ?? states[0]!.state.epoch, epochs: new Map(), forks: new Map() };
      this.chains.set(name, chain);
    } else if (anchor !== null) chain.anchor = anchor;
    const adopted = states.map(({ parsed, state, event }): VerifiedEpoch => {
      const { statement } = parsed;
      return {
        epoch: state.epoch,
        hash: parsed.hashHex,
        digest: toHex(statement.membersDigest),
        invitedDigest: toHex(statement.invitedDigest),
        action: statement.action,
        event,
        by: statement.by,
        user: statement.user,
        admin: state.admin,
        at: statement.at,
        members: state.members,
        invited: state.invited,
        shown: false,
      };
    });
    // Another learn in flight (a receiver and a send share this directory) may have adopted some already.
    const fresh = adopted.filter((epoch) => !chain.epochs.has(epoch.epoch));
    for (const epoch of fresh) chain.epochs.set(epoch.epoch, epoch);
    trimMembers(chain);
    this.dirty.add(name);
    return fresh;
  }

  private recordFork(name: string, epoch: number, hashes: string[], detail?: string): LearnOutcome {
    const chain = this.chains.get(name);
    if (chain) {
      const known = chain.forks.get(epoch) ?? new Set<string>();
      const existing = chain.epochs.get(epoch)?.hash;
      for (const hash of existing ? [existing, ...hashes] : hashes) known.add(hash);
      chain.forks.set(epoch, known);
      this.dirty.add(name);
    }
    const message = forkMessage(name, epoch, detail ? `(${detail})` : "");
    return { kind: "fork", epoch, message };
  }

  /** Writes the changed groups, merged with what other processes wrote meanwhile (union of verified epochs). */
  async save(): Promise<void> {
    if (this.dirty.size === 0) return;
    const names = [...this.dirty];
    this.dirty.clear();
    try {
      await this.home.withLock(async () => {
        const file = await this.home.read("groups.json");
        const current: GroupsFile =
          file?.owner === this.me.username ? file : { version: 3, owner: this.me.username, groups: [] };
        for (const name of names) {
          const ours = this.chains.get(name)!;
          const index = current.groups.findIndex((group) => group.name === name);
          const merged = index >= 0 ? merge(ours, fromFile(current.groups[index]!)) : ours;
          this.chains.set(name, merged);
          const entry = toFile(merged);
          if (index >= 0) current.groups[index] = entry;
          else current.groups.push(entry);
        }
        await this.home.write("groups.json", current);
      });
    } catch (error) {
      for (const name of names) this.dirty.add(name);
      throw error;
    }
  }
}

/** The loud warning for a fork: two histories means the server lies to someone. */
export function forkMessage(name: string, epoch: number, consequence: string): string {
  return (
    `GROUP FORK in ${name} at epoch ${epoch}: the server showed two different histories of this group's ` +
    `membership, each signed. Someone is being shown a false membership. Sends to ${name} are refused and ` +
    `its messages from epoch ${epoch} on are dropped. ${consequence}`
  ).trim();
}

function parse(input: SignedStatementInput): Parsed {
  const bytes = fromBase64(input.statement, "membership statement");
  const signature = fromBase64(input.signature, "statement signature");
  const statement = decodeStatement(bytes);
  const hash = statementHash(bytes, signature);
  return {
    bytes,
    signature,
    statement,
    hash,
    hashHex: toHex(hash),
    members: sortedNames(input.members),
    invited: sortedNames(input.invited),
  };
}

function sortedNames(names: readonly string[]): string[] {
  return [...new Set(names)].sort(compareNames);
}

/** How each action is shown (a remove that withdrew an invitation is "uninvited", told apart by the chain). */
const EVENT_OF_ACTION = {
  create: "created",
  add: "added",
  remove: "removed",
  leave: "left",
  invite: "invited",
  join: "joined",
  decline: "declined",
} as const satisfies Record<GroupStatement["action"], GroupEventKind>;

/**
 * A statement a chain may start at, for this user: the group's create with us among its members or its
 * invitees, our own add, or an invitation of us. Our join is not one: it follows the invitation.
 */
function isAnchor(signed: Parsed, me: string): boolean {
  const { action, user } = signed.statement;
  if (action === "create") return signed.members.includes(me) || signed.invited.includes(me);
  return (action === "add" || action === "invite") && user === me;
}

/**
 * The state an anchor leads to, with no earlier state to check against: a create is checked by the rules
 * alone; an add or invite of this user by its own fields (signed by the admin it names, this user a member
 * after an add and invited after an invite, the lists matching the signed digests).
 */
function anchorStep(signed: Parsed): Step {
  const { statement, members, invited, hash } = signed;
  if (statement.action === "create") {
    try {
      return {
        parsed: signed,
        state: nextState(null, statement, hash, { members, invited }),
        event: "created",
      };
    } catch (error) {
      if (error instanceof StatementRuleError) throw new ChainBreak(error.message);
      throw error;
    }
  }
  const { action, by, user, admin } = statement;
  if (toHex(membersDigest(members)) !== toHex(statement.membersDigest))
    throw new ChainBreak("the signed members digest does not match the member list");
  if (toHex(membersDigest(invited)) !== toHex(statement.invitedDigest))
    throw new ChainBreak("the signed invitations digest does not match the invitation list");
  if (admin !== by || !members.includes(by))
    throw new ChainBreak(`the ${action} that brought this user in is not signed by the admin it names`);
  const concerned = action === "add" ? members.includes(user) : invited.includes(user);
  if (!concerned)
    throw new ChainBreak(
      `the ${action} that brought this user in does not leave ${user} ${action === "add" ? "a member" : "invited"}`,
    );
  if (members.length + invited.length > MAX_RECIPIENTS)
    throw new ChainBreak(`groups are limited to ${MAX_RECIPIENTS} members and invitations together`);
  const both = invited.find((name) => members.includes(name));
  if (both) throw new ChainBreak(`${both} cannot be both a member and invited`);
  return {
    parsed: signed,
    state: { group: statement.group, epoch: statement.epoch, hash, members, admin, invited },
    event: EVENT_OF_ACTION[action],
  };
}

function chainHead(chain: Chain): VerifiedEpoch | null {
  let head: VerifiedEpoch | null = null;
  for (const epoch of chain.epochs.values())
    if (epoch.epoch >= chain.anchor && (!head || epoch.epoch > head.epoch)) head = epoch;
  return head;
}

function trimMembers(chain: Chain): void {
  const newest = [...chain.epochs.keys()].sort((a, b) => b - a);
  for (const epoch of newest.slice(EPOCHS_KEPT)) {
    const record = chain.epochs.get(epoch)!;
    delete record.members;
    delete record.invited;
  }
}

function fromFile(entry: GroupsFile["groups"][number]): Chain {
  return {
    name: entry.name,
    anchor: entry.anchor,
    epochs: new Map(entry.epochs.map((epoch) => [epoch.epoch, { ...epoch }])),
    forks: new Map(entry.forks.map((fork) => [fork.epoch, new Set(fork.hashes)])),
  };
}

function toFile(chain: Chain): GroupsFile["groups"][number] {
  return {
    name: chain.name,
    anchor: chain.anchor,
    epochs: [...chain.epochs.values()].sort((a, b) => a.epoch - b.epoch),
    forks: [...chain.forks]
      .sort(([a], [b]) => a - b)
      .map(([epoch, hashes]) => ({ epoch, hashes: [...hashes].sort() })),
  };
}

/** Two processes' knowledge of one group: every verified epoch of either; two hashes for one epoch is a fork. */
function merge(ours: Chain, theirs: Chain): Chain {
  const merged: Chain = {
    name: ours.name,
    anchor: Math.max(ours.anchor, theirs.anchor),
    epochs: new Map(theirs.epochs),
    forks: new Map([...theirs.forks].map(([epoch, hashes]) => [epoch, new Set(hashes)])),
  };
  for (const [epoch, hashes] of ours.forks) {
    const all = merged.forks.get(epoch) ?? new Set<string>();
    for (const hash of hashes) all.add(hash);
    merged.forks.set(epoch, all);
  }
  for (const [number, epoch] of ours.epochs) {
    const other = merged.epochs.get(number);
    if (other && other.hash !== epoch.hash) {
      merged.forks.set(number, new Set([...(merged.forks.get(number) ?? []), other.hash, epoch.hash]));
      continue;
    }
    merged.epochs.set(number, {
      ...epoch,
      shown: epoch.shown || (other?.shown ?? false),
      ...((epoch.members ?? other?.members) ? { members: epoch.members ?? other!.members! } : {}),
      ...((epoch.invited ?? other?.invited) ? { invited: epoch.invited ?? other!.invited! } : {}),
    });
  }
  trimMembers(merged);
  return merged;
}
