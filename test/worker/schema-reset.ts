// Puts an object's SQLite schema back to an older version, for tests of what a migration does to state
// written before it.

/** The position of the migration that mentions `text`: the schema version just before it. */
export function migrationIndex(migrations: readonly string[], text: string): number {
  const index = migrations.findIndex((migration) => migration.includes(text));
  if (index < 0) throw new Error(`no migration mentions ${text}`);
  return index;
}

/** Rebuilds an object's tables as the first `version` migrations made them, empty, at that version. */
export function resetSchemaTo(sql: SqlStorage, version: number, migrations: readonly string[]): void {
  const named = (type: "table" | "view") =>
    sql
      .exec<{ name: string }>(
        "SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
        type,
      )
      .toArray()
      .map((row) => row.name);
  for (const name of named("view")) sql.exec(`DROP VIEW "${name}"`);
  for (const name of named("table")) if (name !== "schema_version") sql.exec(`DROP TABLE "${name}"`);
  for (const migration of migrations.slice(0, version)) sql.exec(migration);
  sql.exec("UPDATE schema_version SET version = ?", version);
}
