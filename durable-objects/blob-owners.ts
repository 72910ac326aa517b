// Who uploaded files that someone here is to fetch, and until when: in a recipient's home (direct files),
// and in a group's room (the group's files; a member's home tells the room, not every uploader). A session
// that ends is told to each of them, so it no longer keeps their file waiting (home/blobs.ts).

export class BlobOwners {
  constructor(private readonly sql: SqlStorage) {}

  record(owner: string, until: number): void {
    this.sql.exec(
      `INSERT INTO blob_owners (owner, until) VALUES (?, ?)
       ON CONFLICT (owner) DO UPDATE SET until = max(until, excluded.until)`,
      owner,
      until,
    );
  }

  /** The owners whose files may still wait; the others are forgotten. */
  current(now: number): string[] {
    this.sql.exec("DELETE FROM blob_owners WHERE until <= ?", now);
    return this.sql
      .exec<{ owner: string }>("SELECT owner FROM blob_owners")
      .toArray()
      .map((row) => row.owner);
  }
}
