// The groups a user belongs to, kept in their home so `group list` needs no scan of every group, and so
// the cap on groups per user (home/caps.ts) is one count. Group rooms update it on every membership
// change; the rooms stay the authority on membership.

export class GroupList {
  constructor(private readonly sql: SqlStorage) {}

  set(group: string, member: boolean, now: number): void {
    if (member) this.sql.exec("INSERT OR IGNORE INTO groups (name, joined_at) VALUES (?, ?)", group, now);
    else this.sql.exec("DELETE FROM groups WHERE name = ?", group);
  }

  names(): string[] {
    return this.sql
      .exec<{ name: string }>("SELECT name FROM groups ORDER BY name")
      .toArray()
      .map((row) => row.name);
  }

  count(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM groups").one().n;
  }
}
