// Directory: which user and group names exist, kept in a fixed pool of objects (names.ts) so that asking
// about a name that does not exist wakes, and stores, nothing for that name.
//
// A home or room is a SQLite-backed object: waking one for an invented name leaves a database behind. So
// every path that can name a stranger asks here first (known-names.ts) and reaches the object only when
// the name is registered. A name is registered when its account or group is made, and never removed.

import { DurableObject } from "cloudflare:workers";
import { migrate } from "./migrations.js";

export type NameKind = "user" | "group";

const DIRECTORY_MIGRATIONS: readonly string[] = [
  `CREATE TABLE names (kind TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (kind, name)) WITHOUT ROWID;`,
];

export class Directory extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // One of a fixed few objects, made once: its own schema in the constructor costs nothing per name.
    migrate(ctx.storage, DIRECTORY_MIGRATIONS);
  }

  register(kind: NameKind, name: string): void {
    this.ctx.storage.sql.exec("INSERT OR IGNORE INTO names (kind, name) VALUES (?, ?)", kind, name);
  }

  /** Which of `names` are registered, in their order. Reads only. */
  known(kind: NameKind, names: string[]): boolean[] {
    const sql = this.ctx.storage.sql;
    return names.map(
      (name) => sql.exec("SELECT 1 FROM names WHERE kind = ? AND name = ?", kind, name).toArray().length > 0,
    );
  }
}
