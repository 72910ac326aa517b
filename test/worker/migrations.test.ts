// Schema migrations: applied once, in order, in one transaction; an object woken with an older
// schema version is brought forward with its data intact (protocol 1 homes losing their KDF column too).

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { migrate } from "../../durable-objects/migrations.js";
import { HOME_MIGRATIONS } from "../../durable-objects/home/schema.js";
import { GROUP_MIGRATIONS } from "../../durable-objects/group/schema.js";
import { Membership } from "../../durable-objects/group/membership.js";
import { Audience } from "../../durable-objects/group/audience.js";
import { Presence } from "../../durable-objects/home/presence.js";

/** The position of the migration that mentions `text`: the schema version just before it. */
function migrationIndex(migrations: readonly string[], text: string): number {
  const index = migrations.findIndex((migration) => migration.includes(text));
  if (index < 0) throw new Error(`no migration mentions ${text}`);
  return index;
}

/** Rebuilds an object's tables as the first `version` migrations made them, empty, at that version. */
function resetSchemaTo(
  sql: SqlStorage,
  version: number,
  migrations: readonly string[] = HOME_MIGRATIONS,
): void {
  const tables = sql
    .exec<{ name: string }>(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
    )
    .toArray();
  for (const { name } of tables) if (name !== "schema_version") sql.exec(`DROP TABLE "${name}"`);
  for (const migration of migrations.slice(0, version)) sql.exec(migration);
  sql.exec("UPDATE schema_version SET version = ?", version);
}

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

it("drops a protocol 1 home's KDF parameters and keeps its account", async () => {
  const stub = env.HOMES.get(env.HOMES.idFromName(`migration-kdf-${Date.now()}`));
  await runInDurableObject(stub, (_, state) => {
    const sql = state.storage.sql;
    // The home as protocol 1 made it (HOME_MIGRATIONS[0]), with an account row, at schema version 1.
    resetSchemaTo(sql, 1);
    sql.exec(
      "INSERT INTO account VALUES (1, 'old', ?, 'hash', '{}', 'sealed', 1)",
      JSON.stringify({ algorithm: "scrypt", salt: "AAAAAAAAAAAAAAAAAAAAAA==", logN: 15, r: 8, p: 1 }),
    );
    migrate(state.storage, HOME_MIGRATIONS);
    expect(sql.exec("SELECT version FROM schema_version").one().version).toBe(HOME_MIGRATIONS.length);
    expect(sql.exec("SELECT * FROM account").toArray()).toEqual([
      {
        id: 1,
        username: "old",
        auth_hash: "hash",
        public_keys: "{}",
        sealed_private_keys: "sealed",
        created_at: 1,
      },
    ]);
  });
});

it("gives a version 2 home's sessions no device name and a last seen of their creation", async () => {
  const stub = env.HOMES.get(env.HOMES.idFromName(`migration-sessions-${Date.now()}`));
  await runInDurableObject(stub, (_, state) => {
    const sql = state.storage.sql;
    resetSchemaTo(sql, 2);
    sql.exec("INSERT INTO sessions (id, secret_hash, created_at, expires_at) VALUES ('s1', 'h', 5, 99)");
    migrate(state.storage, HOME_MIGRATIONS);
    expect(sql.exec("SELECT id, device_name, created_at, last_seen_at FROM sessions").toArray()).toEqual([
      { id: "s1", device_name: null, created_at: 5, last_seen_at: 5 },
    ]);
    expect(sql.exec("SELECT COUNT(*) AS n FROM ended_sessions").one().n).toBe(0);
  });
});

it("keys a home's queued items by sender, keeping them", async () => {
  const stub = env.HOMES.get(env.HOMES.idFromName(`migration-queue-${Date.now()}`));
  await runInDurableObject(stub, (_, state) => {
    const sql = state.storage.sql;
    // The home as every migration before the (sender, id) keys made it: the queue keyed by id alone.
    resetSchemaTo(sql, migrationIndex(HOME_MIGRATIONS, "messages_by_sender"));
    sql.exec("INSERT INTO messages (id, kind, body, received_at) VALUES ('a', 'envelope', x'0102', 1)");
    sql.exec("INSERT INTO messages (id, kind, body, received_at) VALUES ('b', 'event', x'030405', 2)");
    migrate(state.storage, HOME_MIGRATIONS);
    expect(sql.exec("SELECT seq, sender, id FROM messages ORDER BY seq").toArray()).toEqual([
      { seq: 1, sender: "", id: "a" },
      { seq: 2, sender: "", id: "b" },
    ]);
    // The same id from another sender is another item.
    sql.exec(
      "INSERT INTO messages (sender, id, kind, body, received_at) VALUES ('x', 'a', 'envelope', x'01', 3)",
    );
    expect(sql.exec("SELECT max(seq) AS seq FROM messages").one().seq).toBe(3);
  });
});

it("keys the queue by (id, sender) with no counter triggers or seq index, and never reuses a seq", async () => {
  const stub = env.HOMES.get(env.HOMES.idFromName(`migration-queue-rows-${Date.now()}`));
  await runInDurableObject(stub, (_, state) => {
    const sql = state.storage.sql;
    resetSchemaTo(sql, migrationIndex(HOME_MIGRATIONS, "messages_keyed_by_id"));
    for (const id of ["a", "b", "c"])
      sql.exec(
        "INSERT INTO messages (sender, id, kind, body, received_at) VALUES ('x', ?, 'envelope', x'01', 1)",
        id,
      );
    // The newest item was acknowledged before the upgrade: its seq (3) may still be a shard's cursor.
    sql.exec("DELETE FROM messages WHERE id = 'c'");
    migrate(state.storage, HOME_MIGRATIONS);
    expect(sql.exec("SELECT seq, id FROM messages ORDER BY seq").toArray()).toEqual([
      { seq: 1, id: "a" },
      { seq: 2, id: "b" },
    ]);
    const schema = sql
      .exec<{ type: string; name: string }>(
        "SELECT type, name FROM sqlite_master WHERE type IN ('trigger', 'index', 'table') AND name NOT LIKE '_cf_%' ORDER BY name",
      )
      .toArray()
      .map(({ type, name }) => `${type} ${name}`);
    expect(schema).not.toContain("trigger messages_counted");
    expect(schema).not.toContain("table queue_totals");
    expect(schema).not.toContain("index deliveries_by_seq");
    expect(schema).not.toContain("index messages_by_id");
    sql.exec(
      "INSERT INTO messages (sender, id, kind, body, received_at) VALUES ('x', 'd', 'envelope', x'01', 2)",
    );
    expect(sql.exec("SELECT seq FROM messages WHERE id = 'd'").one().seq).toBe(4);
    expect(() =>
      sql.exec(
        "INSERT INTO messages (sender, id, kind, body, received_at) VALUES ('x', 'a', 'envelope', x'01', 2)",
      ),
    ).toThrow(/UNIQUE/);
  });
});

it("gives a room's past epochs no invitations, and a home no correspondents or invitations, keeping the rest", async () => {
  const room = env.GROUPS.get(env.GROUPS.idFromName(`migration-invitations-${Date.now()}`));
  await runInDurableObject(room, (_, state) => {
    const sql = state.storage.sql;
    resetSchemaTo(sql, migrationIndex(GROUP_MIGRATIONS, "CREATE TABLE invitations"), GROUP_MIGRATIONS);
    sql.exec("INSERT INTO epochs (epoch, members) VALUES (1, ?)", JSON.stringify(["alice", "bob"]));
    migrate(state.storage, GROUP_MIGRATIONS);
    expect(new Membership(sql).epochRecord(1)).toMatchObject({ members: ["alice", "bob"], invited: [] });
    expect(sql.exec("SELECT count(*) AS n FROM invitations").one().n).toBe(0);
  });
  const home = env.HOMES.get(env.HOMES.idFromName(`migration-consent-${Date.now()}`));
  await runInDurableObject(home, (_, state) => {
    const sql = state.storage.sql;
    resetSchemaTo(sql, migrationIndex(HOME_MIGRATIONS, "CREATE TABLE correspondents"));
    sql.exec("INSERT INTO groups (name, joined_at) VALUES ('kept', 1)");
    migrate(state.storage, HOME_MIGRATIONS);
    expect(sql.exec("SELECT name FROM groups").toArray()).toEqual([{ name: "kept" }]);
    expect(sql.exec("SELECT count(*) AS n FROM correspondents").one().n).toBe(0);
    expect(sql.exec("SELECT count(*) AS n FROM invitations").one().n).toBe(0);
  });
});

it("keeps a blob uploaded before per-session holders for each recipient that has not confirmed it", async () => {
  const stub = env.HOMES.get(env.HOMES.idFromName(`migration-blobs-${Date.now()}`));
  await runInDurableObject(stub, (_, state) => {
    const sql = state.storage.sql;
    resetSchemaTo(sql, migrationIndex(HOME_MIGRATIONS, "CREATE TABLE blob_holders"));
    sql.exec(
      "INSERT INTO blobs (id, upload_id, size, state, expires_at) VALUES ('old', 'u', 10, 'ready', 99)",
    );
    sql.exec(
      "INSERT INTO blob_recipients (blob_id, username, fetched) VALUES ('old', 'bob', 1), ('old', 'carol', 0)",
    );
    migrate(state.storage, HOME_MIGRATIONS);
    expect(sql.exec("SELECT blob_id, username, session_id, expires_at FROM blob_holders").toArray()).toEqual([
      { blob_id: "old", username: "carol", session_id: "*", expires_at: 99 },
    ]);
  });
});

it("keeps a home's presence as receiving sockets, with no send-only ones, when it learns to count those", async () => {
  const stub = env.HOMES.get(env.HOMES.idFromName(`migration-senders-${Date.now()}`));
  await runInDurableObject(stub, (_, state) => {
    const sql = state.storage.sql;
    resetSchemaTo(sql, migrationIndex(HOME_MIGRATIONS, "ADD COLUMN senders"));
    sql.exec("INSERT INTO presence (shard, session_id, sockets) VALUES ('shard-1', 's1', 2)");
    migrate(state.storage, HOME_MIGRATIONS);
    const presence = new Presence(sql);
    expect(presence.shards()).toEqual(["shard-1"]);
    presence.attach("shard-2", "s1", "sending");
    // Send-only sockets get no pushes, and a session's end finds both shards.
    expect(presence.shards()).toEqual(["shard-1"]);
    expect(presence.forgetSession("s1").sort()).toEqual(["shard-1", "shard-2"]);
  });
});

it("gives a room that had members an audience to learn, and a room without members a complete one", async () => {
  for (const withMembers of [true, false]) {
    const stub = env.GROUPS.get(env.GROUPS.idFromName(`migration-audience-${withMembers}-${Date.now()}`));
    await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      resetSchemaTo(sql, migrationIndex(GROUP_MIGRATIONS, "CREATE TABLE audience"), GROUP_MIGRATIONS);
      if (withMembers)
        sql.exec("INSERT INTO members (username, joined_at, joined_order) VALUES ('ann', 1, 1)");
      migrate(state.storage, GROUP_MIGRATIONS);
      expect(new Audience(sql).filled()).toBe(!withMembers);
      expect(new Audience(sql).snapshot().targets).toEqual([]);
    });
  }
});

it("keys a room's owed slots by message, keeping them and the counts their triggers keep", async () => {
  const stub = env.GROUPS.get(env.GROUPS.idFromName(`migration-owed-${Date.now()}`));
  await runInDurableObject(stub, (_, state) => {
    const sql = state.storage.sql;
    resetSchemaTo(sql, migrationIndex(GROUP_MIGRATIONS, "CREATE TABLE owed_by_message"), GROUP_MIGRATIONS);
    sql.exec("INSERT INTO posts (sender, id, signed, posted_at) VALUES ('ann', 'm1', x'01', 1)");
    sql.exec("INSERT INTO owed (member, seq, slot, bytes) VALUES ('bob', 1, x'02', 2), ('cat', 1, x'03', 2)");
    migrate(state.storage, GROUP_MIGRATIONS);
    const owed = () =>
      sql
        .exec<{ seq: number; member: string; bytes: number }>("SELECT seq, member, bytes FROM owed")
        .toArray();
    expect(owed()).toEqual([
      { seq: 1, member: "bob", bytes: 2 },
      { seq: 1, member: "cat", bytes: 2 },
    ]);
    const counts = () =>
      sql.exec("SELECT member, items, bytes FROM owed_by_member ORDER BY member").toArray();
    expect(counts()).toEqual([
      { member: "bob", items: 1, bytes: 2 },
      { member: "cat", items: 1, bytes: 2 },
    ]);
    // The triggers came back with the table: a row in or out still moves the member's count.
    sql.exec("INSERT INTO owed (seq, member, slot, bytes) VALUES (2, 'bob', x'04', 5)");
    sql.exec("DELETE FROM owed WHERE seq = 1 AND member = 'cat'");
    expect(counts()).toEqual([{ member: "bob", items: 2, bytes: 7 }]);
  });
});
