// The group invitations waiting for this user's join or decline, kept in their home so `GET /v1/groups`
// lists them and so one user can be sent only so many at once: a room reserves a place here before it
// applies an invite, and drops it when the invitation ends. The rooms stay the authority on invitations.

import type { GroupInvitation } from "../../protocol/http.js";

export type InvitationOffer = { ok: true } | { ok: false; pending: number; limit: number };

export class PendingInvitations {
  constructor(private readonly sql: SqlStorage) {}

  /**
   * Reserves a place for an invitation to `group`, unless `limit` are pending already. An invitation to
   * a group already pending is kept as it was (who signed it, when): a second offer for it takes no place.
   */
  offer(group: string, by: string, at: number, limit: number): InvitationOffer {
    if (this.has(group)) return { ok: true };
    const pending = this.count();
    if (pending >= limit) return { ok: false, pending, limit };
    this.sql.exec("INSERT INTO invitations (group_name, by, invited_at) VALUES (?, ?, ?)", group, by, at);
    return { ok: true };
  }

  drop(group: string): void {
    this.sql.exec("DELETE FROM invitations WHERE group_name = ?", group);
  }

  /** Oldest first. */
  list(): GroupInvitation[] {
    return this.sql
      .exec<{ group_name: string; by: string; invited_at: number }>(
        "SELECT group_name, by, invited_at FROM invitations ORDER BY invited_at, group_name",
      )
      .toArray()
      .map((row) => ({ group: row.group_name, by: row.by, at: row.invited_at }));
  }

  private has(group: string): boolean {
    return this.sql.exec("SELECT 1 FROM invitations WHERE group_name = ?", group).toArray().length > 0;
  }

  private count(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM invitations").one().n;
  }
}
