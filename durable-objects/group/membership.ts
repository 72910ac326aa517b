// A group's membership in its room's SQLite: who is in it, who is admin, the epoch, and the member list of
// every past epoch (clients verify messages of an older epoch against it). Every rule about who may
// change what lives here, so the server enforces them whatever a client does.

import type { GroupEventKind } from "../../protocol/frames.js";
import type { GroupInfo } from "../../protocol/http.js";
import { MAX_RECIPIENTS } from "../../protocol/limits.js";

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
    return { name: row.name, admin: row.admin, epoch: row.epoch, members, createdAt: row.created_at };
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
    const row = this.sql
      .exec<{ members: string }>("SELECT members FROM epochs WHERE epoch = ?", epoch)
      .toArray()[0];
    return row ? (JSON.parse(row.members) as string[]) : null;
  }

  create(name: string, creator: string, others: string[], now: number): MembershipChange {
    if (this.exists()) throw new GroupRuleError("conflict", `the group ${name} exists already`);
    this.sql.exec(
      "INSERT INTO group_info (id, name, admin, epoch, created_at) VALUES (1, ?, ?, ?, ?)",
      name,
      creator,
      this.epoch(),
      now,
    );
    for (const member of new Set([creator, ...others])) this.insertMember(member, now);
    return this.advance("created", creator, creator, []);
  }

  add(by: string, user: string, now: number): MembershipChange {
    this.requireAdmin(by, "add members");
    if (this.isMember(user)) throw new GroupRuleError("conflict", `${user} is already a member`);
    // One envelope carries at most MAX_RECIPIENTS key slots: a bigger group could not be messaged.
    if (this.memberNames().length >= MAX_RECIPIENTS) {
      throw new GroupRuleError("conflict", `groups are limited to ${MAX_RECIPIENTS} members`);
    }
    this.insertMember(user, now);
    return this.advance("added", by, user, []);
  }

  remove(by: string, user: string, now: number): MembershipChange {
    this.requireAdmin(by, "remove members");
    if (!this.isMember(user)) throw new GroupRuleError("not_found", `${user} is not a member`);
    if (user === by)
      throw new GroupRuleError("bad_request", "the admin leaves with `leave`, not by removing themselves");
    this.sql.exec("DELETE FROM members WHERE username = ?", user);
    return this.advance("removed", by, user, [user]);
  }

  /**
   * Any member may leave. An admin who leaves hands the group to the longest-standing member; the last
   * member to leave closes the group, and its name becomes free again.
   */
  leave(user: string, now: number): MembershipChange {
    if (!this.isMember(user)) throw new GroupRuleError("forbidden", "you are not a member of this group");
    const group = this.name();
    this.sql.exec("DELETE FROM members WHERE username = ?", user);
    const successor = this.sql
      .exec<{ username: string }>("SELECT username FROM members ORDER BY joined_order LIMIT 1")
      .toArray()[0]?.username;
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
    const admin = this.sql.exec<{ admin: string }>("SELECT admin FROM group_info").one().admin;
    if (admin === user) this.sql.exec("UPDATE group_info SET admin = ?", successor);
    return this.advance("left", user, user, [user]);
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
  private advance(event: GroupEventKind, by: string, user: string, departed: string[]): MembershipChange {
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
