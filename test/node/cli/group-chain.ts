// Signed membership chains for the CLI tests: statements made and signed with the test users' real keys
// (protocol/group-statement.ts), as the events, GroupInfo heads and epoch answers a server would hand out,
// and a stub that keeps the chain the client itself signs (create, add, remove, leave, invite, join,
// decline) and answers from it.

import { toHex } from "../../../protocol/bytes.js";
import { compareNames, membersDigest } from "../../../protocol/envelope.js";
import type { EventFrame, GroupEventKind } from "../../../protocol/frames.js";
import {
  GENESIS_PREV,
  type GroupStatement,
  decodeStatement,
  encodeStatement,
  statementHash,
  statementSigningInput,
} from "../../../protocol/group-statement.js";
import type { GroupInfo } from "../../../protocol/http.js";
import { sign } from "../../../cli-client/crypto/primitives.js";
import type { VerifiedEpochRecord } from "../../../cli-client/home.js";
import type { TestUser } from "./fixtures.js";
import type { StubServer } from "./helpers.js";

export interface ChainEntry {
  epoch: number;
  statement: GroupStatement;
  /** base64, as the server sends them */
  bytes: string;
  signature: string;
  /** Sorted members after this statement. */
  members: string[];
  /** Members after it, oldest first (the server's GroupInfo order). */
  joinOrder: string[];
  /** Sorted invitees after this statement. */
  invited: string[];
  admin: string;
  /** The event a server announces it with. */
  event: GroupEventKind;
}

const EVENT_OF_ACTION = {
  create: "created",
  add: "added",
  remove: "removed",
  leave: "left",
  invite: "invited",
  join: "joined",
  decline: "declined",
} as const;

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"));

export class SignedChain {
  readonly entries: ChainEntry[] = [];

  constructor(
    readonly group: string,
    private readonly users: TestUser[],
  ) {}

  get head(): ChainEntry {
    return this.entries.at(-1)!;
  }

  create(by: TestUser, others: string[], epoch = 1, invited: string[] = []): ChainEntry {
    const joinOrder = [...new Set([by.name, ...others])];
    return this.push(
      by,
      { action: "create", epoch, prev: GENESIS_PREV, user: by.name, admin: by.name },
      joinOrder,
      invited,
    );
  }

  add(by: TestUser, user: string): ChainEntry {
    const invited = this.head.invited.filter((name) => name !== user);
    return this.push(
      by,
      { action: "add", user, admin: this.head.admin },
      [...this.head.joinOrder, user],
      invited,
    );
  }

  /** Removes a member, or withdraws an invitation. */
  remove(by: TestUser, user: string): ChainEntry {
    const joinOrder = this.head.joinOrder.filter((name) => name !== user);
    const invited = this.head.invited.filter((name) => name !== user);
    return this.push(by, { action: "remove", user, admin: this.head.admin }, joinOrder, invited);
  }

  /** `by` leaves; an admin hands over to the longest-standing member left; the last one closes it. */
  leave(by: TestUser): ChainEntry {
    const joinOrder = this.head.joinOrder.filter((name) => name !== by.name);
    const admin = this.head.admin === by.name ? (joinOrder[0] ?? "") : this.head.admin;
    const invited = joinOrder.length === 0 ? [] : this.head.invited;
    return this.push(by, { action: "leave", user: by.name, admin }, joinOrder, invited);
  }

  invite(by: TestUser, user: string): ChainEntry {
    const invited = [...this.head.invited, user];
    return this.push(by, { action: "invite", user, admin: this.head.admin }, this.head.joinOrder, invited);
  }

  /** `by` accepts their invitation. */
  join(by: TestUser): ChainEntry {
    const invited = this.head.invited.filter((name) => name !== by.name);
    const joinOrder = [...this.head.joinOrder, by.name];
    return this.push(by, { action: "join", user: by.name, admin: this.head.admin }, joinOrder, invited);
  }

  decline(by: TestUser): ChainEntry {
    const invited = this.head.invited.filter((name) => name !== by.name);
    return this.push(
      by,
      { action: "decline", user: by.name, admin: this.head.admin },
      this.head.joinOrder,
      invited,
    );
  }

  /** A statement made elsewhere (the client's own, sent in a request), appended as the server would. */
  append(
    bytes: string,
    signature: string,
    createMembers: string[] = [],
    createInvited: string[] = [],
  ): ChainEntry {
    const statement = decodeStatement(fromBase64(bytes));
    const before = this.entries.at(-1);
    const members = before?.joinOrder ?? [];
    const invited = before?.invited ?? [];
    const { action, user } = statement;
    const without = (names: string[]) => names.filter((name) => name !== user);
    const lists: [string[], string[]] =
      action === "create"
        ? [[...new Set([statement.by, ...createMembers])], createInvited]
        : action === "add" || action === "join"
          ? [[...members, user], without(invited)]
          : action === "invite"
            ? [members, [...invited, user]]
            : action === "decline"
              ? [members, without(invited)]
              : action === "leave" && members.length === 1
                ? [[], []]
                : [without(members), without(invited)];
    return this.record(statement, bytes, signature, ...lists);
  }

  /**
   * Any statement `by` signs after the head (fields override the defaults), recorded with the lists a
   * server would give beside it: also for what the rules refuse (a forged join, a digest that lies).
   */
  push(by: TestUser, fields: Partial<GroupStatement>, joinOrder: string[], invited: string[]): ChainEntry {
    const previous = this.entries.at(-1);
    const statement: GroupStatement = {
      action: "add",
      group: this.group,
      epoch: (previous?.epoch ?? 0) + 1,
      prev: previous
        ? statementHash(fromBase64(previous.bytes), fromBase64(previous.signature))
        : GENESIS_PREV,
      at: 1_700_000_000_000 + this.entries.length,
      by: by.name,
      user: by.name,
      admin: by.name,
      membersDigest: membersDigest(joinOrder),
      invitedDigest: membersDigest(invited),
      ...fields,
    };
    const bytes = encodeStatement(statement);
    const signature = sign(by.identity.signing.privateKey, statementSigningInput(bytes));
    return this.record(statement, base64(bytes), base64(signature), joinOrder, invited);
  }

  private record(
    statement: GroupStatement,
    bytes: string,
    signature: string,
    joinOrder: string[],
    invited: string[],
  ): ChainEntry {
    const previous = this.entries.at(-1);
    const withdrawn = statement.action === "remove" && (previous?.invited.includes(statement.user) ?? false);
    const entry: ChainEntry = {
      epoch: statement.epoch,
      statement,
      bytes,
      signature,
      members: [...joinOrder].sort(compareNames),
      joinOrder,
      invited: [...new Set(invited)].sort(compareNames),
      admin: statement.admin,
      event: withdrawn ? "uninvited" : EVENT_OF_ACTION[statement.action],
    };
    this.entries.push(entry);
    return entry;
  }

  entry(epoch: number): ChainEntry {
    const found = this.entries.find((entry) => entry.epoch === epoch);
    if (!found) throw new Error(`no epoch ${epoch} in the test chain`);
    return found;
  }

  event(entry: ChainEntry, overrides: Partial<EventFrame> = {}): EventFrame {
    return {
      type: "event",
      id: `${entry.epoch}`.padStart(32, "e"),
      event: entry.event,
      group: this.group,
      by: entry.statement.by,
      user: entry.statement.user,
      epoch: entry.epoch,
      members: entry.members,
      invited: entry.invited,
      admin: entry.admin === "" ? null : entry.admin,
      at: entry.statement.at,
      statement: entry.bytes,
      signature: entry.signature,
      ...overrides,
    };
  }

  info(entry: ChainEntry = this.head): GroupInfo {
    return {
      name: this.group,
      admin: entry.admin,
      epoch: entry.epoch,
      members: entry.joinOrder.map((username, i) => ({ username, joinedAt: 1_000 + i })),
      invited: entry.invited,
      createdAt: 1_000,
      statement: entry.bytes,
      signature: entry.signature,
    };
  }

  epochAnswer(entry: ChainEntry) {
    return {
      name: this.group,
      epoch: entry.epoch,
      members: entry.members,
      invited: entry.invited,
      statement: entry.bytes,
      signature: entry.signature,
    };
  }

  /** groups.json's record of an entry, as a device that verified it keeps it. */
  fileRecord(entry: ChainEntry, shown = true): VerifiedEpochRecord {
    return {
      epoch: entry.epoch,
      hash: toHex(statementHash(fromBase64(entry.bytes), fromBase64(entry.signature))),
      digest: toHex(entry.statement.membersDigest),
      invitedDigest: toHex(entry.statement.invitedDigest),
      action: entry.statement.action,
      event: entry.event,
      by: entry.statement.by,
      user: entry.statement.user,
      admin: entry.admin,
      at: entry.statement.at,
      members: entry.members,
      invited: entry.invited,
      shown,
    };
  }

  /**
   * Has the stub answer as the server would from this chain: GET /v1/groups/G (the head), every epoch
   * route, next-epoch, and the change routes (appending the client's own statements, answering the head).
   * Returns the list of requests, "METHOD path".
   */
  serve(server: StubServer): string[] {
    const requests: string[] = [];
    const path = `/v1/groups/${this.group}`;
    const log = (key: string) => requests.push(key);
    server.http.set(`GET ${path}`, () => (log(`GET ${path}`), { status: 200, body: this.info() }));
    server.http.set(`GET ${path}/next-epoch`, () => {
      log(`GET ${path}/next-epoch`);
      return { status: 200, body: { name: this.group, epoch: (this.entries.at(-1)?.epoch ?? 0) + 1 } };
    });
    for (let epoch = 1; epoch <= 200; epoch++) {
      server.http.set(`GET ${path}/epochs/${epoch}`, () => {
        log(`GET ${path}/epochs/${epoch}`);
        const entry = this.entries.find((candidate) => candidate.epoch === epoch);
        return entry
          ? { status: 200, body: this.epochAnswer(entry) }
          : { status: 404, body: { error: { code: "not_found", message: `no epoch ${epoch}` } } };
      });
    }
    const change = (key: string, status = 200) =>
      server.http.set(key, (_request, body) => {
        log(key);
        const { statement, signature, members, invited } = JSON.parse(body) as {
          statement: string;
          signature: string;
          members?: string[];
          invited?: string[];
        };
        this.append(statement, signature, members, invited);
        return status === 204 ? { status } : { status, body: this.info() };
      });
    change("POST /v1/groups", 201);
    change(`POST ${path}/members`);
    change(`POST ${path}/invitations`);
    change(`POST ${path}/join`);
    change(`POST ${path}/decline`, 204);
    change(`POST ${path}/leave`, 204);
    for (const user of this.users) change(`DELETE ${path}/members/${user.name}`);
    return requests;
  }
}

/** groups.json for `owner` holding `chain`'s entries, as if this device had verified them all. */
export function groupsFileOf(owner: string, chain: SignedChain, entries = chain.entries, shown = true) {
  return {
    version: 3 as const,
    owner,
    groups: [
      {
        name: chain.group,
        anchor: entries[0]!.epoch,
        epochs: entries.map((entry) => chain.fileRecord(entry, shown)),
        forks: [],
      },
    ],
  };
}
