// A group's membership in its room's SQLite: who is in it, who is invited, who is admin, the epoch, and
// the member and invitation lists, signed statement and signature of every past epoch (clients verify the
// chain and older messages against them). Every change is a statement signed by its sender
// (protocol/group-statement.ts), checked here against the shared rules and the room's own, so the server
// enforces them whatever a client does.

import { encodeBase64 } from "hono/utils/encode";
import type { GroupEventKind } from "../../protocol/frames.js";
import {
  GENESIS_PREV,
  type GroupChainState,
  type GroupStatement,
  STATEMENT_VERSION,
  type StatementLists,
  StatementRuleError,
  decodeStatement,
  nextState,
  statementHash,
} from "../../protocol/group-statement.js";
import type { GroupInfo } from "../../protocol/http.js";
import { MAX_RECIPIENTS } from "../../protocol/limits.js";

/** A statement as the room receives it: its bytes and signature, decoded, the signature already verified. */
export interface SignedStatement {
  bytes: Uint8Array;
  signature: Uint8Array;
  statement: GroupStatement;
}

/** One epoch as stored: what the epoch route and GroupInfo answer. */
export interface EpochRecord {
  epoch: number;
  members: string[];
  /** Invited and not yet answered in this epoch (none for epochs recorded before invitations existed). */
  invited: string[];
  /** Absent for epochs recorded before membership was signed. */
  statement: Uint8Array | null;
  signature: Uint8Array | null;
}

export type GroupFailureCode = "not_found" | "forbidden" | "conflict" | "bad_request" | "consent_required";
export class GroupRuleError extends Error {
  constructor(
    readonly code: GroupFailureCode,
    message: string,
  ) {
    super(message);
  }
}

/** What one membership change did: the event every affected user is told about. */
export interface MembershipChange {
  group: string;
  event: GroupEventKind;
  by: string;
  user: string;
  epoch: number;
  /** Members after the change, sorted. */
  members: string[];
  /** Invited and not yet answered after the change, sorted. */
  invited: string[];
  admin: string | null;
  /** The signed statement that made the change, and its signature. */
  statement: Uint8Array;
  signature: Uint8Array;
  /** Everyone to tell: see notifyFor(). */
  notify: string[];
  /** Users whose group list changes: joined (true) or not any more (false). */
  listUpdates: Array<[string, boolean]>;
  /**
   * Users whose invitation to this group ended (joined, declined, withdrawn, settled by an add, or the
   * group closed): their homes drop it from their pending invitations.
   */
  invitationsEnded: string[];
  /** For a join, the admin who signed the invitation: the joiner has now written to them. */
  inviter: string | null;
}

export class Membership {
  constructor(private readonly sql: SqlStorage) {}

  exists(): boolean {
    return this.sql.exec("SELECT 1 FROM group_info").toArray().length > 0;
  }

  /** The group's name, or null once it has closed. */
  nameIfOpen(): string | null {
    return this.sql.exec<{ name: string }>("SELECT name FROM group_info").toArray()[0]?.name ?? null;
  }

  info(): GroupInfo | null {
    const row = this.sql
      .exec<{ name: string; admin: string; epoch: number; created_at: number }>("SELECT * FROM group_info")
      .toArray()[0];
    if (!row) return null;
    const members = this.sql
      .exec<{ username: string; joined_at: number }>(
        "SELECT username, joined_at FROM members ORDER BY joined_order",
      )
      .toArray()
      .map((member) => ({ username: member.username, joinedAt: member.joined_at }));
    const head = this.epochRecord(row.epoch);
    return {
      name: row.name,
      admin: row.admin,
      epoch: row.epoch,
      members,
      invited: this.invitedNames(),
      createdAt: row.created_at,
      statement: base64(head?.statement ?? null),
      signature: base64(head?.signature ?? null),
    };
  }

  isMember(username: string): boolean {
    return this.sql.exec("SELECT 1 FROM members WHERE username = ?", username).toArray().length > 0;
  }

  isInvited(username: string): boolean {
    return this.sql.exec("SELECT 1 FROM invitations WHERE username = ?", username).toArray().length > 0;
  }

  /** Sorted member names: the order membersDigest and key slots use. */
  memberNames(): string[] {
    return this.sql
      .exec<{ username: string }>("SELECT username FROM members")
      .toArray()
      .map((row) => row.username)
      .sort();
  }

  /** Sorted names of the users invited and not yet answered. */
  invitedNames(): string[] {
    return this.sql
      .exec<{ username: string }>("SELECT username FROM invitations")
      .toArray()
      .map((row) => row.username)
      .sort();
  }

  /** The current epoch; for a closed group, the last one (a group re-created later continues from it). */
  epoch(): number {
    return this.sql
      .exec<{ epoch: number }>(
        "SELECT COALESCE((SELECT epoch FROM group_info), (SELECT MAX(epoch) FROM epochs), 0) AS epoch",
      )
      .one().epoch;
  }

  epochRecord(epoch: number): EpochRecord | null {
    const row = this.sql
      .exec<{
        members: string;
        invited: string;
        statement: ArrayBuffer | null;
        signature: ArrayBuffer | null;
      }>("SELECT members, invited, statement, signature FROM epochs WHERE epoch = ?", epoch)
      .toArray()[0];
    if (!row) return null;
    return {
      epoch,
      members: JSON.parse(row.members) as string[],
      invited: JSON.parse(row.invited) as string[],
      statement: row.statement ? new Uint8Array(row.statement) : null,
      signature: row.signature ? new Uint8Array(row.signature) : null,
    };
  }

  /**
   * What the shared rules check the next statement against: the newest epoch's hash, members, invitations
   * and admin. Null before the first create. An open group whose head predates signed membership has no
   * hash to continue from: it cannot change any more (a closed one can be created anew).
   */
  chainState(): GroupChainState | null {
    const epoch = this.epoch();
    const head = epoch > 0 ? this.epochRecord(epoch) : null;
    if (!head) return null;
    const name = this.nameIfOpen();
    if (name !== null && (!head.statement || !head.signature)) {
      throw new GroupRuleError(
        "conflict",
        `the group ${name} was made before membership was signed: its members must leave and create it again`,
      );
    }
    // A closed group's name is its last statement's (a room is addressed by its name, so it never changes).
    const group = name ?? (head.statement ? decodeStatement(head.statement).group : "");
    return {
      group,
      epoch,
      hash: head.statement && head.signature ? statementHash(head.statement, head.signature) : GENESIS_PREV,
      members: head.members,
      admin:
        name === null ? "" : this.sql.exec<{ admin: string }>("SELECT admin FROM group_info").one().admin,
      invited: head.invited,
    };
  }

  /**
   * Throws the GroupRuleError apply() would throw for this statement, changing nothing: the room checks
   * first, so a statement that breaks a rule is told so before anyone is asked for consent or room.
   */
  check(requester: string, signed: SignedStatement, lists: StatementLists): void {
    const { statement } = signed;
    if (statement.by !== requester)
      throw new GroupRuleError("forbidden", "a membership statement must be signed by you, its sender");
    const { action } = statement;
    const version = statement.version ?? STATEMENT_VERSION;
    if (version !== STATEMENT_VERSION) {
      // Version 1 lives on only in stored history: a new one would commit to no invitations at all.
      throw new GroupRuleError(
        "bad_request",
        `statement version ${version} is no longer accepted for a change: sign statement version ${STATEMENT_VERSION}`,
      );
    }
    if (action === "create") {
      if (this.exists()) throw new GroupRuleError("conflict", `the group ${statement.group} exists already`);
      if (!lists.members) throw new GroupRuleError("bad_request", "a create comes with its full member list");
    } else {
      if (!this.exists()) throw new GroupRuleError("not_found", "no such group");
      this.checkRoomRules(statement);
    }
    const expected = this.epoch() + 1;
    if (statement.epoch !== expected) {
      throw new GroupRuleError(
        "conflict",
        `stale statement: it is signed for epoch ${statement.epoch}, the next epoch of ${statement.group} is ${expected}; fetch the group and sign again`,
      );
    }
    try {
      const prev = this.chainState();
      // A group closed before membership was signed left no statement to take its name from.
      if (prev?.group === "") prev.group = statement.group;
      const given = action === "create" ? lists : {};
      nextState(prev, statement, statementHash(signed.bytes, signed.signature), given);
    } catch (error) {
      if (!(error instanceof StatementRuleError)) throw error;
      const code =
        error.kind === "forbidden" ? "forbidden" : error.kind === "stale" ? "conflict" : "bad_request";
      throw new GroupRuleError(code, error.message);
    }
  }

  /**
   * Throws unless `by` may make this change at all: the admin for add, remove and invite, an invitee for
   * join and decline, a member for leave. Checked before anything else (the signature, accounts), so a
   * refusal reveals nothing else; and again inside apply().
   */
  requireRights(statement: GroupStatement): void {
    const { action, by } = statement;
    if (action === "add" || action === "remove" || action === "invite") {
      this.requireAdmin(by, action === "invite" ? "invite users" : `${action} members`);
    } else if (action === "join" || action === "decline") {
      if (!this.isInvited(by))
        throw new GroupRuleError(
          "forbidden",
          this.isMember(by) ? "you are a member of this group already" : "you are not invited to this group",
        );
    } else if (action === "leave" && !this.isMember(by)) {
      throw new GroupRuleError("forbidden", "you are not a member of this group");
    }
  }

  /** The room's own rules for a change of an open group, with the answers they always had (403, 404, 409). */
  private checkRoomRules(statement: GroupStatement): void {
    const { action, by, user } = statement;
    this.requireRights(statement);
    const member = this.isMember(user);
    const invited = this.isInvited(user);
    if (action === "add" || action === "invite") {
      if (member) throw new GroupRuleError("conflict", `${user} is already a member`);
      if (action === "invite" && invited) throw new GroupRuleError("conflict", `${user} is already invited`);
      // One envelope carries at most MAX_RECIPIENTS key slots, and every invitee may join: a bigger group
      // could not be messaged. Adding an invitee settles their invitation and takes no new place.
      const places = this.memberNames().length + this.invitedNames().length;
      if (places >= MAX_RECIPIENTS && !(action === "add" && invited)) {
        throw new GroupRuleError(
          "conflict",
          `groups are limited to ${MAX_RECIPIENTS} members and invitations together`,
        );
      }
    } else if (action === "remove") {
      if (!member && !invited)
        throw new GroupRuleError("not_found", `${user} is neither a member nor invited`);
      if (user === by)
        throw new GroupRuleError("bad_request", "the admin leaves with `leave`, not by removing themselves");
    }
  }

  /**
   * Applies one signed statement (its signature checked by the caller) made by `requester`: the room's
   * own rules first, then the shared transition rules (check()), then the change itself. `lists` are the
   * member and invitation lists a create comes with. Synchronous: run it in a transaction, so nothing
   * interleaves between check and change.
   */
  apply(requester: string, signed: SignedStatement, lists: StatementLists, now: number): MembershipChange {
    this.check(requester, signed, lists);
    const { action, by, user } = signed.statement;
    let change: UnsignedChange;
    switch (action) {
      case "create":
        change = this.create(signed.statement.group, by, lists.members!, lists.invited ?? [], now);
        break;
      case "add":
        change = this.add(user, now);
        break;
      case "invite":
        change = this.invite(user, by, now);
        break;
      case "join":
        change = this.join(user, now);
        break;
      case "decline":
        change = this.decline(user);
        break;
      case "remove":
        change = this.isMember(user) ? this.remove(user) : this.uninvite(user);
        break;
      case "leave":
        change = this.leave(by, signed.statement.admin);
        break;
    }
    this.sql.exec(
      "UPDATE epochs SET statement = ?, signature = ? WHERE epoch = ?",
      signed.bytes,
      signed.signature,
      change.epoch,
    );
    return { ...change, statement: signed.bytes, signature: signed.signature };
  }

  private create(
    name: string,
    creator: string,
    members: readonly string[],
    invited: readonly string[],
    now: number,
  ): UnsignedChange {
    this.sql.exec(
      "INSERT INTO group_info (id, name, admin, epoch, created_at) VALUES (1, ?, ?, ?, ?)",
      name,
      creator,
      this.epoch(),
      now,
    );
    // The creator first: the longest-standing member, the first an admin hands over to after them.
    for (const member of new Set([creator, ...members])) this.insertMember(member, now);
    for (const invitee of new Set(invited)) this.insertInvitation(invitee, creator, now);
    // The invitees hear of it too: the event is their invitation.
    return this.advance("created", creator, creator, {
      tell: this.invitedNames(),
      joined: this.memberNames(),
    });
  }

  private add(user: string, now: number): UnsignedChange {
    const by = this.admin();
    const wasInvited = this.deleteInvitation(user) !== null;
    this.insertMember(user, now);
    return this.advance("added", by, user, { joined: [user], invitationsEnded: wasInvited ? [user] : [] });
  }

  private invite(user: string, by: string, now: number): UnsignedChange {
    this.insertInvitation(user, by, now);
    return this.advance("invited", by, user, { tell: [user] });
  }

  private join(user: string, now: number): UnsignedChange {
    const inviter = this.deleteInvitation(user);
    this.insertMember(user, now);
    return this.advance("joined", user, user, { joined: [user], invitationsEnded: [user], inviter });
  }

  private decline(user: string): UnsignedChange {
    this.deleteInvitation(user);
    return this.advance("declined", user, user, { tell: [user], invitationsEnded: [user] });
  }

  private remove(user: string): UnsignedChange {
    const by = this.admin();
    this.sql.exec("DELETE FROM members WHERE username = ?", user);
    return this.advance("removed", by, user, { tell: [user], departed: [user] });
  }

  /** The admin withdraws an invitation (a remove statement naming an invitee). */
  private uninvite(user: string): UnsignedChange {
    const by = this.admin();
    this.deleteInvitation(user);
    return this.advance("uninvited", by, user, { tell: [user], invitationsEnded: [user] });
  }

  /**
   * Any member may leave. An admin who leaves hands the group to the longest-standing member, whom their
   * statement must name (`named`); the last member to leave closes the group, and its name becomes free.
   */
  private leave(user: string, named: string): UnsignedChange {
    const group = this.name();
    const wasAdmin = this.admin() === user;
    this.sql.exec("DELETE FROM members WHERE username = ?", user);
    const successor = this.sql
      .exec<{ username: string }>("SELECT username FROM members ORDER BY joined_order LIMIT 1")
      .toArray()[0]?.username;
    if (successor && wasAdmin && named !== successor) {
      throw new GroupRuleError(
        "bad_request",
        `a leaving admin hands the group to its longest-standing member, ${successor}, not ${named}`,
      );
    }
    if (!successor) {
      // Closed: the name is free again, but epochs keep counting so old messages never match a new group.
      // Nobody is left to join: the invitations end with it.
      const invitationsEnded = this.invitedNames();
      const epoch = this.epoch() + 1;
      this.sql.exec("INSERT INTO epochs (epoch, members, invited) VALUES (?, '[]', '[]')", epoch);
      this.sql.exec("DELETE FROM group_info");
      this.sql.exec("DELETE FROM invitations");
      return {
        group,
        event: "left",
        by: user,
        user,
        epoch,
        members: [],
        invited: [],
        admin: null,
        notify: [user],
        listUpdates: [[user, false]],
        invitationsEnded,
        inviter: null,
      };
    }
    if (wasAdmin) this.sql.exec("UPDATE group_info SET admin = ?", successor);
    return this.advance("left", user, user, { tell: [user], departed: [user] });
  }

  private admin(): string {
    return this.sql.exec<{ admin: string }>("SELECT admin FROM group_info").one().admin;
  }

  private name(): string {
    return this.sql.exec<{ name: string }>("SELECT name FROM group_info").one().name;
  }

  /** Throws unless `by` is the admin: checked before anything else, so refusals reveal nothing else. */
  private requireAdmin(by: string, what: string): void {
    const admin = this.sql.exec<{ admin: string }>("SELECT admin FROM group_info").one().admin;
    if (by !== admin) {
      throw new GroupRuleError(
        "forbidden",
        this.isMember(by) ? `only the admin (${admin}) may ${what}` : "you are not a member of this group",
      );
    }
  }

  private insertMember(username: string, now: number): void {
    const order = this.sql
      .exec<{ next: number }>("SELECT COALESCE(MAX(joined_order), 0) + 1 AS next FROM members")
      .one().next;
    this.sql.exec(
      "INSERT INTO members (username, joined_at, joined_order) VALUES (?, ?, ?)",
      username,
      now,
      order,
    );
  }

  private insertInvitation(username: string, by: string, now: number): void {
    this.sql.exec("INSERT INTO invitations (username, by, invited_at) VALUES (?, ?, ?)", username, by, now);
  }

  /** Ends `username`'s invitation; returns who had signed it, or null if there was none. */
  private deleteInvitation(username: string): string | null {
    return (
      this.sql
        .exec<{ by: string }>("DELETE FROM invitations WHERE username = ? RETURNING by", username)
        .toArray()[0]?.by ?? null
    );
  }

  /**
   * Bumps the epoch, records its member and invitation lists, and describes the change. The members after
   * the change are always told; `tell` names who else is (an invitee, a decliner, whoever left or was
   * removed), `joined` and `departed` whose group lists change.
   */
  private advance(
    event: GroupEventKind,
    by: string,
    user: string,
    effects: {
      tell?: string[];
      joined?: string[];
      departed?: string[];
      invitationsEnded?: string[];
      inviter?: string | null;
    },
  ): UnsignedChange {
    const epoch = this.epoch() + 1;
    const members = this.memberNames();
    const invited = this.invitedNames();
    this.sql.exec("UPDATE group_info SET epoch = ?", epoch);
    this.sql.exec(
      "INSERT INTO epochs (epoch, members, invited) VALUES (?, ?, ?)",
      epoch,
      JSON.stringify(members),
      JSON.stringify(invited),
    );
    const joined = (effects.joined ?? []).map((name): [string, boolean] => [name, true]);
    const departed = (effects.departed ?? []).map((name): [string, boolean] => [name, false]);
    return {
      group: this.name(),
      event,
      by,
      user,
      epoch,
      members,
      invited,
      admin: this.admin(),
      notify: [...new Set([...members, ...(effects.tell ?? [])])],
      listUpdates: [...joined, ...departed],
      invitationsEnded: effects.invitationsEnded ?? [],
      inviter: effects.inviter ?? null,
    };
  }
}

/** A change before its statement is attached (apply() adds it). */
type UnsignedChange = Omit<MembershipChange, "statement" | "signature">;

function base64(bytes: Uint8Array | null): string {
  return bytes ? encodeBase64(bytes.slice().buffer) : "";
}
