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
import { GroupQueue } from "../../durable-objects/group/queue.js";
import { Presence } from "../../durable-objects/home/presence.js";
import { migrationIndex, resetSchemaTo as resetTo } from "./schema-reset.js";

/** Home migrations unless told otherwise: most of these tests are a home's. */
function resetSchemaTo(sql: SqlStorage, version: number, migrations = HOME_MIGRATIONS): void {
  resetTo(sql, version, migrations);
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
    const version = migrationIndex(GROUP_MIGRATIONS, "CREATE TABLE owed_by_message");
    resetSchemaTo(sql, version, GROUP_MIGRATIONS);
    sql.exec("INSERT INTO posts (sender, id, signed, posted_at) VALUES ('ann', 'm1', x'01', 1)");
    sql.exec("INSERT INTO owed (member, seq, slot, bytes) VALUES ('bob', 1, x'02', 2), ('cat', 1, x'03', 2)");
    // Up to this migration only: the next one replaces these rows with cursors.
    migrate(state.storage, GROUP_MIGRATIONS.slice(0, version + 1));
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

it("turns a room's owed and pending rows into cursors, each session waiting for exactly what it did", async () => {
  const stub = env.GROUPS.get(env.GROUPS.idFromName(`migration-cursors-${Date.now()}`));
  await runInDurableObject(stub, (_, state) => {
    const sql = state.storage.sql;
    resetSchemaTo(sql, migrationIndex(GROUP_MIGRATIONS, "CREATE TABLE slots"), GROUP_MIGRATIONS);
    for (const id of ["m1", "m2", "m3"])
      sql.exec("INSERT INTO posts (sender, id, signed, posted_at) VALUES ('ann', ?, x'0101', 1)", id);
    sql.exec(`INSERT INTO member_sessions (member, session_id, expires_at) VALUES
      ('bob', 'b1', 9e12), ('bob', 'b2', 9e12), ('cat', 'c1', 9e12)`);
    // Cat is done with 1; dan has no session here.
    for (const [member, seq] of [
      ["bob", 1],
      ["bob", 2],
      ["bob", 3],
      ["cat", 2],
      ["cat", 3],
      ["dan", 2],
      ["dan", 3],
    ])
      sql.exec("INSERT INTO owed (member, seq, slot, bytes) VALUES (?, ?, x'02', 3)", member, seq);
    // b1 acknowledged 1, b2 acknowledged 2 (out of order), c1 acknowledged 2.
    for (const [session, member, seq] of [
      ["b1", "bob", 2],
      ["b1", "bob", 3],
      ["b2", "bob", 1],
      ["b2", "bob", 3],
      ["c1", "cat", 3],
    ])
      sql.exec("INSERT INTO pending (session_id, seq, member) VALUES (?, ?, ?)", session, seq, member);
    migrate(state.storage, GROUP_MIGRATIONS);

    const pending = () =>
      sql
        .exec<{ session_id: string; seq: number }>(
          "SELECT session_id, seq FROM pending ORDER BY session_id, seq",
        )
        .toArray()
        .map((row) => `${row.session_id}:${row.seq}`);
    const owed = () =>
      sql
        .exec<{ member: string; seq: number }>("SELECT member, seq FROM owed ORDER BY member, seq")
        .toArray()
        .map((row) => `${row.member}:${row.seq}`);
    expect(pending()).toEqual(["b1:2", "b1:3", "b2:1", "b2:3", "c1:3"]);
    expect(owed()).toEqual(["bob:1", "bob:2", "bob:3", "cat:3", "dan:2", "dan:3"]);
    expect(sql.exec("SELECT name FROM sqlite_master WHERE name = 'owed_by_member'").toArray()).toEqual([]);

    const queue = new GroupQueue(sql);
    // b2's acknowledgement of 1 meets the one of 2 it made before: it now waits for 3 alone.
    queue.acknowledge([{ member: "bob", session: "b2", ids: ["m1"] }]);
    expect(pending()).toEqual(["b1:2", "b1:3", "b2:3", "c1:3"]);
    // Message 1 is nobody's now, so it left; a new session of cat's gets what cat is owed.
    expect(
      sql
        .exec<{ seq: number }>("SELECT seq FROM posts")
        .toArray()
        .map((row) => row.seq),
    ).toEqual([2, 3]);
    queue.addSession("cat", { id: "c2", expiresAt: 9e12 });
    expect(queue.backlog("c2", 0).items).toHaveLength(1);
    // Everyone with a session acknowledges everything: dan, with none, is still owed 2 and 3.
    queue.acknowledge(
      ["b1", "b2", "c1", "c2"].map((session) => ({
        member: session.startsWith("b") ? "bob" : "cat",
        session,
        ids: ["m2", "m3"],
      })),
    );
    expect(pending()).toEqual([]);
    expect(owed()).toEqual(["dan:2", "dan:3"]);
    expect(
      sql
        .exec<{ seq: number }>("SELECT seq FROM posts")
        .toArray()
        .map((row) => row.seq),
    ).toEqual([2, 3]);
  });
});
