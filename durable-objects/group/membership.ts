// A group's membership in its room's SQLite: who is in it, who is admin, the epoch, and the member list,
// signed statement and signature of every past epoch (clients verify the chain and older messages
// against them). Every change is a statement signed by a member (protocol/group-statement.ts), checked
// here against the shared rules and the room's own, so the server enforces them whatever a client does.

import { encodeBase64 } from "hono/utils/encode";
import type { GroupEventKind } from "../../protocol/frames.js";
import {
  GENESIS_PREV,
  type GroupChainState,
  type GroupStatement,
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
  /** Absent for epochs recorded before membership was signed. */
  statement: Uint8Array | null;
  signature: Uint8Array | null;
}

export type GroupFailureCode = "not_found" | "forbidden" | "conflict" | "bad_request";
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
  admin: string | null;
  /** The signed statement that made the change, and its signature. */
  statement: Uint8Array;
  signature: Uint8Array;
  /** Everyone to tell: the members after the change plus anyone who just left or was removed. */
  notify: string[];
  /** Users whose group list changes: joined (true) or not any more (false). */
  listUpdates: Array<[string, boolean]>;
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
      createdAt: row.created_at,
      statement: base64(head?.statement ?? null),
      signature: base64(head?.signature ?? null),
    };
  }

  isMember(username: string): boolean {
    return this.sql.exec("SELECT 1 FROM members WHERE username = ?", username).toArray().length > 0;
  }

  /** Sorted member names: the order membersDigest and key slots use. */
  memberNames(): string[] {
    return this.sql
      .exec<{ username: string }>("SELECT username FROM members")
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

  membersAt(epoch: number): string[] | null {
    return this.epochRecord(epoch)?.members ?? null;
  }

  epochRecord(epoch: number): EpochRecord | null {
    const row = this.sql
      .exec<{ members: string; statement: ArrayBuffer | null; signature: ArrayBuffer | null }>(
        "SELECT members, statement, signature FROM epochs WHERE epoch = ?",
        epoch,
      )
      .toArray()[0];
    if (!row) return null;
    return {
      epoch,
      members: JSON.parse(row.members) as string[],
      statement: row.statement ? new Uint8Array(row.statement) : null,
      signature: row.signature ? new Uint8Array(row.signature) : null,
    };
  }

  /**
   * What the shared rules check the next statement against: the newest epoch's hash, members and admin.
   * Null before the first create. An open group whose head predates signed membership has no hash to
   * continue from: it cannot change any more (a closed one can be created anew).
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
    };
  }

  /**
   * Applies one signed statement (its signature checked by the caller) made by `requester`: the room's
   * own rules first, with the answers they always had (403 rights, 404/409 members), then the shared
   * transition rules, then the change itself. `members` is the full member list a create comes with.
   * Synchronous: run it in a transaction, so nothing interleaves between check and change.
   */
  apply(
    requester: string,
    signed: SignedStatement,
    members: string[] | undefined,
    now: number,
  ): MembershipChange {
    const { statement } = signed;
    if (statement.by !== requester)
      throw new GroupRuleError("forbidden", "a membership statement must be signed by you, its sender");
    const { action, by, user } = statement;
    if (action === "create") {
      if (this.exists()) throw new GroupRuleError("conflict", `the group ${statement.group} exists already`);
      if (!members) throw new GroupRuleError("bad_request", "a create comes with its full member list");
    } else {
      if (!this.exists()) throw new GroupRuleError("not_found", "no such group");
      if (action === "add") {
        this.requireAdmin(by, "add members");
        if (this.isMember(user)) throw new GroupRuleError("conflict", `${user} is already a member`);
        // One envelope carries at most MAX_RECIPIENTS key slots: a bigger group could not be messaged.
        if (this.memberNames().length >= MAX_RECIPIENTS) {
          throw new GroupRuleError("conflict", `groups are limited to ${MAX_RECIPIENTS} members`);
        }
      } else if (action === "remove") {
        this.requireAdmin(by, "remove members");
        if (!this.isMember(user)) throw new GroupRuleError("not_found", `${user} is not a member`);
        if (user === by)
          throw new GroupRuleError(
            "bad_request",
            "the admin leaves with `leave`, not by removing themselves",
          );
      } else if (!this.isMember(by)) {
        throw new GroupRuleError("forbidden", "you are not a member of this group");
      }
    }
    const expected = this.epoch() + 1;
    if (statement.epoch !== expected) {
      throw new GroupRuleError(
        "conflict",
        `stale statement: it is signed for epoch ${statement.epoch}, the next epoch of ${statement.group} is ${expected}; fetch the group and sign again`,
      );
    }
    const hash = statementHash(signed.bytes, signed.signature);
    try {
      const prev = this.chainState();
      // A group closed before membership was signed left no statement to take its name from.
      if (prev?.group === "") prev.group = statement.group;
      nextState(prev, statement, hash, members);
    } catch (error) {
      if (!(error instanceof StatementRuleError)) throw error;
      const code =
        error.kind === "forbidden" ? "forbidden" : error.kind === "stale" ? "conflict" : "bad_request";
      throw new GroupRuleError(code, error.message);
    }
    const change =
      action === "create"
        ? this.create(statement.group, by, members!, now)
        : action === "add"
          ? this.add(user, now)
          : action === "remove"
            ? this.remove(user)
            : this.leave(by, statement.admin);
    this.sql.exec(
      "UPDATE epochs SET statement = ?, signature = ? WHERE epoch = ?",
      signed.bytes,
      signed.signature,
      change.epoch,
    );
    return { ...change, statement: signed.bytes, signature: signed.signature };
  }

  private create(name: string, creator: string, members: string[], now: number): UnsignedChange {
    this.sql.exec(
      "INSERT INTO group_info (id, name, admin, epoch, created_at) VALUES (1, ?, ?, ?, ?)",
      name,
      creator,
      this.epoch(),
      now,
    );
    // The creator first: the longest-standing member, the first an admin hands over to after them.
    for (const member of new Set([creator, ...members])) this.insertMember(member, now);
    return this.advance("created", creator, creator, []);
  }

  private add(user: string, now: number): UnsignedChange {
    const by = this.admin();
    this.insertMember(user, now);
    return this.advance("added", by, user, []);
  }

  private remove(user: string): UnsignedChange {
    const by = this.admin();
    this.sql.exec("DELETE FROM members WHERE username = ?", user);
    return this.advance("removed", by, user, [user]);
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
      const epoch = this.epoch() + 1;
      this.sql.exec("INSERT INTO epochs (epoch, members) VALUES (?, '[]')", epoch);
      this.sql.exec("DELETE FROM group_info");
      return {
        group,
        event: "left",
        by: user,
        user,
        epoch,
        members: [],
        admin: null,
        notify: [user],
        listUpdates: [[user, false]],
      };
    }
    if (wasAdmin) this.sql.exec("UPDATE group_info SET admin = ?", successor);
    return this.advance("left", user, user, [user]);
  }

  private admin(): string {
    return this.sql.exec<{ admin: string }>("SELECT admin FROM group_info").one().admin;
  }

  private name(): string {
    return this.sql.exec<{ name: string }>("SELECT name FROM group_info").one().name;
  }

  /** Throws unless `by` is the admin: checked before anything else, so refusals reveal nothing else. */
  requireAdmin(by: string, what: string): void {
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

  /** Bumps the epoch, records its member list, and describes the change. */
  private advance(event: GroupEventKind, by: string, user: string, departed: string[]): UnsignedChange {
    const epoch = this.epoch() + 1;
    const members = this.memberNames();
    this.sql.exec("UPDATE group_info SET epoch = ?", epoch);
    this.sql.exec("INSERT INTO epochs (epoch, members) VALUES (?, ?)", epoch, JSON.stringify(members));
    const admin = this.sql.exec<{ admin: string }>("SELECT admin FROM group_info").one().admin;
    const joined: Array<[string, boolean]> =
      event === "created" ? members.map((member) => [member, true]) : event === "added" ? [[user, true]] : [];
    return {
      group: this.name(),
      event,
      by,
      user,
      epoch,
      members,
      admin,
      notify: [...members, ...departed],
      listUpdates: [...joined, ...departed.map((name): [string, boolean] => [name, false])],
    };
  }
}

/** A change before its statement is attached (apply() adds it). */
type UnsignedChange = Omit<MembershipChange, "statement" | "signature">;

function base64(bytes: Uint8Array | null): string {
  return bytes ? encodeBase64(bytes.slice().buffer) : "";
}
