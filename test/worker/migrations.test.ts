// Schema migrations: applied once, in order, in one transaction; an object woken with an older
// schema version is brought forward with its data intact.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { migrate } from "../../durable-objects/migrations.js";
import { HOME_MIGRATIONS } from "../../durable-objects/home/schema.js";

it("applies only pending migrations and keeps existing rows", async () => {
  const stub = env.HOMES.get(env.HOMES.idFromName(`migration-test-${Date.now()}`));
  await runInDurableObject(stub, (_, state) => {
    const sql = state.storage.sql;
    expect(sql.exec("SELECT version FROM schema_version").one().version).toBe(HOME_MIGRATIONS.length);
    sql.exec("INSERT INTO groups (name, joined_at) VALUES ('kept', 1)");
    const next = [...HOME_MIGRATIONS, "ALTER TABLE groups ADD COLUMN muted INTEGER NOT NULL DEFAULT 0"];
    migrate(state.storage, next);
    migrate(state.storage, next);
    expect(sql.exec("SELECT version FROM schema_version").one().version).toBe(next.length);
    expect(sql.exec("SELECT name, muted FROM groups").toArray()).toEqual([{ name: "kept", muted: 0 }]);
  });
});

it("leaves the previous version intact when a migration fails", async () => {
  const stub = env.HOMES.get(env.HOMES.idFromName(`migration-fail-${Date.now()}`));
  await runInDurableObject(stub, (_, state) => {
    const broken = [...HOME_MIGRATIONS, "CREATE TABLE ok_table (x INTEGER); SELECT * FROM no_such_table"];
    expect(() => migrate(state.storage, broken)).toThrow();
    const sql = state.storage.sql;
    expect(sql.exec("SELECT version FROM schema_version").one().version).toBe(HOME_MIGRATIONS.length);
    expect(sql.exec("SELECT name FROM sqlite_master WHERE name = 'ok_table'").toArray()).toEqual([]);
  });
});
