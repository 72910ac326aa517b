// Versioned SQLite schemas for Durable Objects. Each object class lists its migrations in order; an
// object applies the ones it has not applied yet when it wakes, so stored state written by an older
// version is brought forward instead of breaking on a missing column.

export function migrate(storage: DurableObjectStorage, migrations: readonly string[]): void {
  // One transaction: a migration that fails half-way leaves the previous version intact.
  storage.transactionSync(() => applyPending(storage.sql, migrations));
}

function applyPending(sql: SqlStorage, migrations: readonly string[]): void {
  sql.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  const row = sql.exec<{ version: number }>("SELECT version FROM schema_version").toArray()[0];
  const current = row?.version ?? 0;
  if (current >= migrations.length) return;
  for (let version = current; version < migrations.length; version++) sql.exec(migrations[version]!);
  if (row) sql.exec("UPDATE schema_version SET version = ?", migrations.length);
  else sql.exec("INSERT INTO schema_version (version) VALUES (?)", migrations.length);
}
