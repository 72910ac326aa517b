// The users who have written to this user: sent them a direct message, or joined a group on an
// invitation this user signed. Only they may be added to this user's groups without an invitation
// (protocol 3 consent, group-room.ts asks here); everyone else is invited and joins or declines.

export class Correspondents {
  constructor(private readonly sql: SqlStorage) {}

  /**
   * Records that `username` wrote to this user. INSERT OR IGNORE: a correspondent already known, the
   * steady state of every conversation, writes no row.
   */
  record(username: string, now: number): void {
    this.sql.exec("INSERT OR IGNORE INTO correspondents (username, since) VALUES (?, ?)", username, now);
  }

  /** Which of `usernames` have written to this user. */
  among(usernames: readonly string[]): string[] {
    return [...new Set(usernames)].filter(
      (name) => this.sql.exec("SELECT 1 FROM correspondents WHERE username = ?", name).toArray().length > 0,
    );
  }
}
