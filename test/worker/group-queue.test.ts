// Group messages are queued once, in their group's room (durable-objects/group/queue.ts): per member and
// session like a home's queue, acknowledged to the room by naming the group, handed to a departing
// member's home, and drained after the home's backlog before "synced".

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { GROUP_MIGRATIONS } from "../../durable-objects/group/schema.js";
import { migrate } from "../../durable-objects/migrations.js";
import { migrationIndex, resetSchemaTo } from "./schema-reset.js";
import { groupStub, homeStub } from "../../durable-objects/names.js";
import { BACKLOG_BATCH_MESSAGES } from "../../durable-objects/home/queue.js";
import { decodeDelivery } from "../../protocol/envelope.js";
import {
  api,
  connectSocket,
  deliveredIds,
  login,
  online,
  postGroup,
  uniqueName,
  users,
  type TestSocket,
} from "./helpers.js";
import { createGroup as createSignedGroup, removeMember, writeTo } from "./group-changes.js";
import type { SessionResponse as Session } from "../../protocol/http.js";

async function createGroup(owner: Session, members: Session[]): Promise<string> {
  const name = uniqueName("g");
  await writeTo(owner, members);
  const response = await createSignedGroup(owner, name, members);
  expect(response.status).toBe(201);
  return name;
}

/** Posts one group message for `members` and checks that the server took it. */
async function post(socket: TestSocket, sender: Session, group: string, members: Session[], epoch = 1) {
  const { id, reply } = await postGroup(
    socket,
    sender,
    group,
    epoch,
    members.map((m) => m.username),
  );
  expect(reply).toMatchObject({ type: "sent" });
  return id;
}

/** Row counts of the room's queue tables. */
function roomRows(group: string): Promise<{ posts: number; owed: number; pending: number }> {
  return runInDurableObject(groupStub(env, group), (_, state) => {
    const count = (table: string) =>
      state.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM ${table}`).one().n;
    return { posts: count("posts"), owed: count("owed"), pending: count("pending") };
  });
}

function homeMessages(user: Session): Promise<number> {
  return runInDurableObject(
    homeStub(env, user.username),
    (_, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM messages").one().n,
  );
}

/** Waits until the room has processed what was sent to it (acks travel through the shard). */
async function eventually<T>(read: () => Promise<T>, expected: T): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const value = await read();
    try {
      expect(value).toEqual(expected);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

describe("the group queue", () => {
  it("stores a message once in the room, with a slot per member, and nothing in the members' homes", async () => {
    const [alice, bob, carol] = await users("alice", "bob", "carol");
    const group = await createGroup(alice!, [bob!, carol!]);
    const a = await online(alice!.token);
    await post(a, alice!, group, [alice!, bob!, carol!]);
    expect(await roomRows(group)).toEqual({ posts: 1, owed: 3, pending: 3 });
    // The homes hold the membership events only.
    const eventsOnly = await Promise.all([bob!, carol!].map(homeMessages));
    expect(eventsOnly).toEqual([1, 1]);
    a.close();
  });

  it("lets a message go once every member's sessions acknowledged it to the room, by naming the group", async () => {
    const [alice, bob] = await users("alice", "bob");
    const group = await createGroup(alice!, [bob!]);
    const a = await online(alice!.token);
    const id = await post(a, alice!, group, [alice!, bob!]);
    await a.waitFor((r) => r.kind === "binary");

    const b = await online(bob!.token);
    expect(deliveredIds(b)).toEqual([id]);
    // An ack without the group goes to bob's home, which never had it: the room keeps it.
    b.sendJson({ type: "ack", ids: [id] });
    b.sendJson({ type: "ping" });
    await b.waitForJson("pong");
    expect(await roomRows(group)).toMatchObject({ owed: 2 });

    b.sendJson({ type: "ack", ids: [id], group });
    a.sendJson({ type: "ack", ids: [id], group });
    await eventually(() => roomRows(group), { posts: 0, owed: 0, pending: 0 });
    b.close();
    const again = await online(bob!.token);
    expect(deliveredIds(again)).toEqual([]);
    a.close();
    again.close();
  });

  it("ignores acknowledgements from someone the message was not for", async () => {
    const [alice, bob, eve] = await users("alice", "bob", "eve");
    const group = await createGroup(alice!, [bob!]);
    const a = await online(alice!.token);
    const id = await post(a, alice!, group, [alice!, bob!]);
    const e = await online(eve!.token);
    e.sendJson({ type: "ack", ids: [id], group });
    e.sendJson({ type: "ping" });
    await e.waitForJson("pong");
    expect(await roomRows(group)).toEqual({ posts: 1, owed: 2, pending: 2 });
    const b = await online(bob!.token);
    expect(deliveredIds(b)).toEqual([id]);
    for (const s of [a, b, e]) s.close();
  });

  it("takes a batch of acknowledgements from many sessions at once, each only for its own rows", async () => {
    const [alice, bob, carol, eve] = await users("alice", "bob", "carol", "eve");
    const group = await createGroup(alice!, [bob!, carol!]);
    const a = await online(alice!.token);
    const id = await post(a, alice!, group, [alice!, bob!, carol!]);
    const next = await runInDurableObject(groupStub(env, group), (room) =>
      room.acknowledge([
        { member: bob!.username, session: bob!.sessionId, ids: [id], cursor: null },
        // Not a member: no rows of eve's session, nothing changes for anyone.
        { member: eve!.username, session: eve!.sessionId, ids: [id], cursor: null },
        { member: alice!.username, session: alice!.sessionId, ids: [id], cursor: null },
      ]),
    );
    expect(next).toEqual([null, null, null]);
    const left = await runInDurableObject(groupStub(env, group), (_, state) =>
      state.storage.sql
        .exec<{ member: string }>("SELECT member FROM owed")
        .toArray()
        .map((row) => row.member),
    );
    expect(left).toEqual([carol!.username]);
    a.close();
  });

  it("reaches a machine that logs in later, and forgets a session that logs out", async () => {
    const [alice, bob] = await users("alice", "bob");
    const group = await createGroup(alice!, [bob!]);
    const a = await online(alice!.token);
    const first = await post(a, alice!, group, [alice!, bob!]);

    // Bob's first machine takes it; a second machine logging in afterwards still gets it, as it is
    // still owed to bob until every session of his has it.
    const b1 = await online(bob!.token);
    expect(deliveredIds(b1)).toEqual([first]);
    const laptop = await login(bob!.username);
    const b2 = await online(laptop.token);
    expect(deliveredIds(b2)).toEqual([first]);
    b1.sendJson({ type: "ack", ids: [first], group });
    b2.sendJson({ type: "ack", ids: [first], group });
    a.sendJson({ type: "ack", ids: [first], group });
    await eventually(() => roomRows(group), { posts: 0, owed: 0, pending: 0 });

    // Logging out the laptop drops what it alone waited for; bob's first machine still gets it.
    b2.close();
    expect((await api("/v1/logout", { method: "POST", token: laptop.token })).status).toBeLessThan(300);
    const second = await post(a, alice!, group, [alice!, bob!]);
    await b1.waitFor((r) => r.kind === "binary" && decodeDelivery(r.bytes).messageIdHex === second);
    const laptopRows = await runInDurableObject(
      groupStub(env, group),
      (_, state) =>
        state.storage.sql
          .exec<{ n: number }>("SELECT count(*) AS n FROM pending WHERE session_id = ?", laptop.sessionId)
          .one().n,
    );
    expect(laptopRows).toBe(0);
    for (const s of [a, b1]) s.close();
  });

  it("learns the members' sessions from their homes once, in a room older than its queue", async () => {
    const [alice, bob] = await users("alice", "bob");
    const laptop = await login(bob!.username);
    const group = await createGroup(alice!, [bob!]);
    // The room as the queue's migration leaves a group that already had members: no sessions known.
    // Its membership is kept as the first migration stored it; everything after that is made again.
    await runInDurableObject(groupStub(env, group), (_, state) => {
      const sql = state.storage.sql;
      const info = sql.exec("SELECT id, name, admin, epoch, created_at FROM group_info").toArray();
      const members = sql.exec("SELECT username, joined_at, joined_order FROM members").toArray();
      const epochs = sql.exec("SELECT epoch, members FROM epochs").toArray();
      resetSchemaTo(sql, migrationIndex(GROUP_MIGRATIONS, "CREATE TABLE queue_state"), GROUP_MIGRATIONS);
      for (const row of info)
        sql.exec(
          "INSERT INTO group_info VALUES (?, ?, ?, ?, ?)",
          row.id,
          row.name,
          row.admin,
          row.epoch,
          row.created_at,
        );
      for (const row of members)
        sql.exec("INSERT INTO members VALUES (?, ?, ?)", row.username, row.joined_at, row.joined_order);
      for (const row of epochs)
        sql.exec("INSERT INTO epochs (epoch, members) VALUES (?, ?)", row.epoch, row.members);
      migrate(state.storage, GROUP_MIGRATIONS);
      expect(sql.exec("SELECT sessions_loaded FROM queue_state").one().sessions_loaded).toBe(0);
    });
    const a = await online(alice!.token);
    const id = await post(a, alice!, group, [alice!, bob!]);
    const waiting = await runInDurableObject(groupStub(env, group), (_, state) =>
      state.storage.sql
        .exec<{ session_id: string }>("SELECT session_id FROM pending WHERE member = ?", bob!.username)
        .toArray()
        .map((row) => row.session_id)
        .sort(),
    );
    expect(waiting).toEqual([bob!.sessionId, laptop.sessionId].sort());
    // Bob's first machine acknowledging does not retire it: his laptop still gets it.
    const b1 = await online(bob!.token);
    b1.sendJson({ type: "ack", ids: [id], group });
    await eventually(async () => (await roomRows(group)).pending, 2);
    const b2 = await online(laptop.token);
    expect(deliveredIds(b2)).toEqual([id]);
    for (const s of [a, b1, b2]) s.close();
  });

  it("hands what a removed member is still owed to their home, before the removal event", async () => {
    const [alice, bob] = await users("alice", "bob");
    const group = await createGroup(alice!, [bob!]);
    const a = await online(alice!.token);
    const before = await post(a, alice!, group, [alice!, bob!]);
    const removed = await removeMember(alice!, group, bob!.username);
    expect(removed.status).toBe(200);
    const owedToBob = await runInDurableObject(
      groupStub(env, group),
      (_, state) =>
        state.storage.sql
          .exec<{ n: number }>("SELECT count(*) AS n FROM owed WHERE member = ?", bob!.username)
          .one().n,
    );
    expect(owedToBob).toBe(0);

    const b = await online(bob!.token);
    const order = b.received.flatMap((r) =>
      r.kind === "binary"
        ? [decodeDelivery(r.bytes).messageIdHex]
        : r.frame.type === "event"
          ? [r.frame.event]
          : [],
    );
    expect(order).toEqual(["created", before, "removed"]);
    a.close();
    b.close();
  });

  it("drains a large group backlog in acknowledged batches, after the home's, then says synced", async () => {
    const [alice, bob] = await users("alice", "bob");
    const group = await createGroup(alice!, [bob!]);
    const a = await online(alice!.token);
    const total = BACKLOG_BATCH_MESSAGES + 20;
    const ids: string[] = [];
    for (let i = 0; i < total; i++) ids.push(await post(a, alice!, group, [alice!, bob!]));

    const { socket } = await connectSocket(bob!.token);
    const b = socket!;
    await b.waitFor(() => b.binaries().length >= BACKLOG_BATCH_MESSAGES);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The home's backlog (the "created" event) came first; one group batch is in flight, no "synced".
    expect(b.jsonFrames("event").map((event) => event.event)).toEqual(["created"]);
    expect(b.binaries()).toHaveLength(BACKLOG_BATCH_MESSAGES);
    expect(b.jsonFrames("synced")).toHaveLength(0);
    // Acknowledging the home's event alone does not move the group's backlog.
    b.sendJson({ type: "ack", ids: [b.jsonFrames("event")[0]!.id] });
    b.sendJson({ type: "ping" });
    await b.waitForJson("pong");
    expect(b.binaries()).toHaveLength(BACKLOG_BATCH_MESSAGES);
    b.sendJson({ type: "ack", ids: deliveredIds(b), group });
    await b.waitForJson("synced");
    expect(deliveredIds(b)).toEqual(ids);
    a.close();
    b.close();
  }, 30_000);
});
