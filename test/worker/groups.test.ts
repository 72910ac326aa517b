// Groups, enforced by the server: who may create, change, read and post to a group; membership events;
// fan-out to exactly the members of the epoch; admin hand-over; closing and re-creating.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Membership } from "../../durable-objects/group/membership.js";
import { MAX_RECIPIENTS } from "../../protocol/limits.js";
import { decodeDelivery, membersDigest } from "../../protocol/envelope.js";
import {
  GENESIS_PREV,
  type GroupStatement,
  decodeStatement,
  encodeStatement,
  statementHash,
} from "../../protocol/group-statement.js";
import type { GroupInfo } from "../../protocol/http.js";
import {
  api,
  deliveredIds,
  online,
  postGroup,
  signup,
  uniqueName,
  users,
  type TestSocket,
} from "./helpers.js";
import { addMember, createGroup, leaveGroup, removeMember, signedBody, writeTo } from "./group-changes.js";
import type { SessionResponse as Session } from "../../protocol/http.js";

function groupName(): string {
  return uniqueName("g");
}

async function info(session: Session, name: string): Promise<GroupInfo> {
  const response = await api(`/v1/groups/${name}`, { token: session.token });
  expect(response.status).toBe(200);
  return response.json();
}

function events(socket: TestSocket) {
  return socket.jsonFrames("event");
}

describe("group membership", () => {
  it("makes the creator admin, tells every member, and lists the group in each member's home", async () => {
    const [alice, bob, carol] = await users("alice", "bob", "carol");
    await writeTo(alice!, [bob!, carol!]);
    const bobSocket = await online(bob!.token);
    const name = groupName();
    const created = await createGroup(alice!, name, [bob!, carol!]);
    expect(created.status).toBe(201);
    const body: GroupInfo = await created.json();
    expect(body).toMatchObject({ name, admin: alice!.username, epoch: 1 });
    expect(body.members.map((m) => m.username)).toEqual([alice!.username, bob!.username, carol!.username]);

    const event = await bobSocket.waitForJson("event");
    expect(event).toMatchObject({
      event: "created",
      group: name,
      by: alice!.username,
      epoch: 1,
      admin: alice!.username,
      members: [alice!.username, bob!.username, carol!.username].sort(),
    });
    for (const member of [alice!, bob!, carol!]) {
      const list = await (await api("/v1/groups", { token: member.token })).json();
      expect(list).toEqual({ groups: [name], invitations: [] });
    }
    bobSocket.close();
  });

  it("refuses a taken name, an unknown member, and bad names", async () => {
    const [alice, bob] = await users("alice", "bob");
    const name = groupName();
    expect((await createGroup(alice!, name, [])).status).toBe(201);
    expect((await createGroup(bob!, name, [])).status).toBe(409);
    const ghost = { username: uniqueName("ghost") } as Session;
    const missing = await createGroup(alice!, groupName(), [ghost]);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain(ghost.username);
    expect((await createGroup(alice!, "no", [])).status).toBe(400);
    expect(
      (await api("/v1/groups", { method: "POST", body: JSON.stringify({ name: groupName() }) })).status,
    ).toBe(401);
  });

  it("shows a group only to its members (the seed's groupExist)", async () => {
    const [alice, bob, eve] = await users("alice", "bob", "eve");
    await writeTo(alice!, [bob!]);
    const name = groupName();
    await createGroup(alice!, name, [bob!]);
    expect((await info(bob!, name)).admin).toBe(alice!.username);
    expect((await api(`/v1/groups/${name}`, { token: eve!.token })).status).toBe(403);
    expect((await api(`/v1/groups/${groupName()}`, { token: eve!.token })).status).toBe(404);
  });

  it("lets only the admin add and remove, with a clear error for everything else", async () => {
    const [alice, bob, carol, dave] = await users("alice", "bob", "carol", "dave");
    await writeTo(alice!, [bob!, carol!]);
    const name = groupName();
    await createGroup(alice!, name, [bob!]);
    const asBob = await addMember(bob!, name, carol!.username);
    expect(asBob.status).toBe(403);
    expect(await asBob.text()).toContain("only the admin");
    // Rights are checked first: a non-admin cannot probe which names have accounts.
    const probe = await addMember(bob!, name, uniqueName("ghost"));
    expect(probe.status).toBe(403);
    const asOutsider = await addMember(dave!, name, dave!.username);
    expect(asOutsider.status).toBe(403);
    const ghost = await addMember(alice!, name, uniqueName("ghost"));
    expect(ghost.status).toBe(404);
    const twice = await addMember(alice!, name, bob!.username);
    expect(twice.status).toBe(409);
    const removeNonMember = await removeMember(alice!, name, carol!.username);
    expect(removeNonMember.status).toBe(404);
    const bobRemoves = await removeMember(bob!, name, alice!.username);
    expect(bobRemoves.status).toBe(403);

    const added = await addMember(alice!, name, carol!.username);
    expect(added.status).toBe(200);
    expect(((await added.json()) as GroupInfo).epoch).toBe(2);
    const removed = await removeMember(alice!, name, bob!.username);
    expect(removed.status).toBe(200);
    const after: GroupInfo = await removed.json();
    expect(after.epoch).toBe(3);
    expect(after.members.map((m) => m.username)).toEqual([alice!.username, carol!.username]);
    expect(await (await api("/v1/groups", { token: bob!.token })).json()).toEqual({
      groups: [],
      invitations: [],
    });
  });

  it("hands admin rights to the longest-standing member when the admin leaves, and closes when empty", async () => {
    const [alice, bob, carol] = await users("alice", "bob", "carol");
    await writeTo(alice!, [bob!, carol!]);
    const name = groupName();
    await createGroup(alice!, name, [bob!]);
    await addMember(alice!, name, carol!.username);
    const carolSocket = await online(carol!.token);
    expect((await leaveGroup(alice!, name)).status).toBe(204);
    const handover = await carolSocket.waitFor(
      (r) => r.kind === "json" && r.frame.type === "event" && r.frame.event === "left",
    );
    expect(handover).toMatchObject({ frame: { by: alice!.username, admin: bob!.username, epoch: 3 } });
    expect((await info(bob!, name)).admin).toBe(bob!.username);
    // Alice is out: she can neither read nor change the group.
    expect((await api(`/v1/groups/${name}`, { token: alice!.token })).status).toBe(403);
    expect((await leaveGroup(alice!, name)).status).toBe(403);

    await leaveGroup(bob!, name);
    expect((await info(carol!, name)).admin).toBe(carol!.username);
    await leaveGroup(carol!, name);
    expect((await api(`/v1/groups/${name}`, { token: carol!.token })).status).toBe(404);

    // The name is free again, and epochs keep counting so nothing sealed for the old group fits the new.
    const again = await createGroup(bob!, name, []);
    expect(again.status).toBe(201);
    expect(((await again.json()) as GroupInfo).epoch).toBe(6);
    carolSocket.close();
  });

  it("answers the member list of a past epoch only to who was a member then", async () => {
    const [alice, bob, carol] = await users("alice", "bob", "carol");
    await writeTo(alice!, [bob!, carol!]);
    const name = groupName();
    await createGroup(alice!, name, [bob!]);
    await addMember(alice!, name, carol!.username);
    const epoch1 = await api(`/v1/groups/${name}/epochs/1`, { token: bob!.token });
    expect(await epoch1.json()).toMatchObject({
      name,
      epoch: 1,
      members: [alice!.username, bob!.username].sort(),
    });
    expect((await api(`/v1/groups/${name}/epochs/1`, { token: carol!.token })).status).toBe(403);
    expect((await api(`/v1/groups/${name}/epochs/2`, { token: carol!.token })).status).toBe(200);
    expect((await api(`/v1/groups/${name}/epochs/9`, { token: carol!.token })).status).toBe(404);
  });
});

describe("group messages", () => {
  it("reach every member online or offline, and only them", async () => {
    const [alice, bob, carol, eve] = await users("alice", "bob", "carol", "eve");
    await writeTo(alice!, [bob!, carol!]);
    const name = groupName();
    await createGroup(alice!, name, [bob!, carol!]);
    const members = [alice!.username, bob!.username, carol!.username];
    const a = await online(alice!.token);
    const b = await online(bob!.token);
    const e = await online(eve!.token);
    const { id, reply } = await postGroup(a, alice!, name, 1, members);
    expect(reply).toMatchObject({ type: "sent", status: "delivered" });
    await b.waitFor((r) => r.kind === "binary");
    const delivery = decodeDelivery(b.binaries()[0]!);
    expect(delivery).toMatchObject({ messageIdHex: id, header: { kind: "group", target: name, epoch: 1 } });
    expect(delivery.slots.map((slot) => slot.recipient)).toEqual([bob!.username]);
    // Carol was offline: she gets it when she connects. Eve, not a member, never does.
    const c = await online(carol!.token);
    expect(deliveredIds(c)).toEqual([id]);
    expect(deliveredIds(e)).toEqual([]);
    for (const s of [a, b, c, e]) s.close();
  });

  it("refuse a non-member, a stale epoch, and slots that do not match the members", async () => {
    const [alice, bob, eve] = await users("alice", "bob", "eve");
    await writeTo(alice!, [bob!]);
    const name = groupName();
    await createGroup(alice!, name, [bob!]);
    const members = [alice!.username, bob!.username];
    const e = await online(eve!.token);
    expect((await postGroup(e, eve!, name, 1, [...members, eve!.username])).reply).toMatchObject({
      code: "forbidden",
    });
    expect((await postGroup(e, eve!, groupName(), 1, [eve!.username])).reply).toMatchObject({
      code: "unknown_group",
    });
    const a = await online(alice!.token);
    expect((await postGroup(a, alice!, name, 2, members)).reply).toMatchObject({ code: "stale_epoch" });
    expect((await postGroup(a, alice!, name, 1, [alice!.username])).reply).toMatchObject({
      code: "bad_frame",
    });
    expect((await postGroup(a, alice!, name, 1, [...members, eve!.username])).reply).toMatchObject({
      code: "bad_frame",
    });
    const b = await online(bob!.token);
    expect(deliveredIds(b)).toEqual([]);
    for (const s of [a, b, e]) s.close();
  });

  it("never reach a removed member, nor reach a new member with what was sent before they joined", async () => {
    const [alice, bob, carol] = await users("alice", "bob", "carol");
    await writeTo(alice!, [bob!, carol!]);
    const name = groupName();
    await createGroup(alice!, name, [bob!]);
    const a = await online(alice!.token);
    const before = await postGroup(a, alice!, name, 1, [alice!.username, bob!.username]);
    await addMember(alice!, name, carol!.username);
    await removeMember(alice!, name, bob!.username);
    const after = await postGroup(a, alice!, name, 3, [alice!.username, carol!.username]);
    expect(after.reply).toMatchObject({ type: "sent" });

    const b = await online(bob!.token);
    expect(deliveredIds(b)).toEqual([before.id]);
    expect(events(b).map((event) => event.event)).toEqual(["created", "added", "removed"]);
    const c = await online(carol!.token);
    expect(deliveredIds(c)).toEqual([after.id]);
    // Carol learns she was added, then that Bob was removed, before the first message of that epoch.
    const order = c.received
      .map((r) => (r.kind === "json" ? r.frame.type : "message"))
      .filter((t) => t === "event" || t === "message");
    expect(order).toEqual(["event", "event", "message"]);
    expect(events(c).map((event) => [event.event, event.epoch])).toEqual([
      ["added", 2],
      ["removed", 3],
    ]);
    expect(events(c)[0]).toMatchObject({
      event: "added",
      user: carol!.username,
      by: alice!.username,
      epoch: 2,
    });
    for (const s of [a, b, c]) s.close();
  });

  it("fan out to a large group", async () => {
    const members = await Promise.all(Array.from({ length: 60 }, (_, i) => signup(uniqueName(`m${i}`))));
    const [owner, ...rest] = members;
    const name = groupName();
    await writeTo(owner!, rest);
    expect((await createGroup(owner!, name, rest)).status).toBe(201);
    const socket = await online(owner!.token);
    const { reply } = await postGroup(
      socket,
      owner!,
      name,
      1,
      members.map((m) => m.username),
    );
    expect(reply).toMatchObject({ type: "sent", status: "stored" });
    const last = await online(rest[rest.length - 1]!.token);
    expect(deliveredIds(last)).toHaveLength(1);
    socket.close();
    last.close();
  });
});

describe("group limits", () => {
  it("refuses a create whose member list repeats a name or is not sorted", async () => {
    const [alice, bob] = await users("alice", "bob");
    await writeTo(alice!, [bob!]);
    const name = groupName();
    const body = await signedBody(
      alice!.username,
      name,
      "create",
      alice!.username,
      {},
      {
        members: [bob!.username],
      },
    );
    for (const members of [[...body.members!, bob!.username], [...body.members!].reverse()]) {
      const response = await api("/v1/groups", {
        method: "POST",
        token: alice!.token,
        body: JSON.stringify({ ...body, members }),
      });
      expect(response.status).toBe(400);
    }
    const response = await api("/v1/groups", {
      method: "POST",
      token: alice!.token,
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(201);
    const created: GroupInfo = await response.json();
    expect(created.members.map((m) => m.username)).toEqual([alice!.username, bob!.username]);
  });

  it(`refuses to grow past ${MAX_RECIPIENTS} members, the most one envelope can carry`, async () => {
    const stub = env.GROUPS.get(env.GROUPS.idFromName(`group:cap-${Date.now()}`));
    await runInDurableObject(stub, (_, state) => {
      const membership = new Membership(state.storage.sql);
      const members = [
        "owner",
        ...Array.from({ length: MAX_RECIPIENTS - 1 }, (_, i) => `member-${i}`),
      ].sort();
      // The room takes statements whose signature its caller checked: stand-in signatures do here.
      const signed = (statement: GroupStatement) => ({
        bytes: encodeStatement(statement),
        signature: new Uint8Array(64).fill(9),
        statement,
      });
      const create = signed({
        action: "create",
        group: "cap",
        epoch: 1,
        prev: GENESIS_PREV,
        at: Date.now(),
        by: "owner",
        user: "owner",
        admin: "owner",
        membersDigest: membersDigest(members),
        invitedDigest: membersDigest([]),
      });
      membership.apply("owner", create, { members }, Date.now());
      expect(membership.memberNames()).toHaveLength(MAX_RECIPIENTS);
      const add = signed({
        ...create.statement,
        action: "add",
        epoch: 2,
        prev: statementHash(create.bytes, create.signature),
        user: "one-more",
        membersDigest: membersDigest([...members, "one-more"]),
      });
      expect(() => membership.apply("owner", add, {}, Date.now())).toThrow(/limited to 1024/);
      const invite = signed({
        ...add.statement,
        action: "invite",
        membersDigest: membersDigest(members),
        invitedDigest: membersDigest(["one-more"]),
      });
      expect(() => membership.apply("owner", invite, {}, Date.now())).toThrow(/limited to 1024/);
    });
  });
});

describe("a closed group", () => {
  it("still answers its past epochs to who was a member then", async () => {
    const [alice, bob] = await users("alice", "bob");
    await writeTo(alice!, [bob!]);
    const name = groupName();
    await createGroup(alice!, name, [bob!]);
    await leaveGroup(alice!, name);
    await leaveGroup(bob!, name);
    expect((await api(`/v1/groups/${name}`, { token: bob!.token })).status).toBe(404);
    const past = await api(`/v1/groups/${name}/epochs/1`, { token: bob!.token });
    expect(await past.json()).toMatchObject({
      name,
      epoch: 1,
      members: [alice!.username, bob!.username].sort(),
    });
    const outsider = (await users("eve"))[0]!;
    expect((await api(`/v1/groups/${name}/epochs/1`, { token: outsider.token })).status).toBe(403);
  });
});

describe("signed membership", () => {
  it("refuses an unsigned change, a bad signature, a wrong epoch or prev, a non-admin and a wrong digest", async () => {
    const [alice, bob, carol] = await users("alice", "bob", "carol");
    await writeTo(alice!, [bob!, carol!]);
    const name = groupName();
    expect((await createGroup(alice!, name, [bob!], { signature: "random" })).status).toBe(400);
    expect((await createGroup(alice!, name, [bob!], { epoch: 2 })).status).toBe(409);
    expect((await createGroup(alice!, name, [bob!], { digestFor: [alice!.username] })).status).toBe(400);
    expect((await createGroup(alice!, name, [bob!])).status).toBe(201);

    const unsigned = await api(`/v1/groups/${name}/members`, {
      method: "POST",
      token: alice!.token,
      body: JSON.stringify({
        statement: (await signedBody(alice!.username, name, "add", carol!.username)).statement,
      }),
    });
    expect(unsigned.status).toBe(400);
    expect((await addMember(alice!, name, carol!.username, { signature: "empty" })).status).toBe(400);
    const forged = await addMember(alice!, name, carol!.username, { signature: "random" });
    expect(forged.status).toBe(400);
    expect(await forged.text()).toContain("signature");
    const stale = await addMember(alice!, name, carol!.username, { epoch: 1 });
    expect(stale.status).toBe(409);
    expect(await stale.text()).toContain("stale statement");
    expect((await addMember(alice!, name, carol!.username, { epoch: 3 })).status).toBe(409);
    expect(
      (await addMember(alice!, name, carol!.username, { prev: new Uint8Array(32).fill(1) })).status,
    ).toBe(409);
    expect((await addMember(alice!, name, carol!.username, { digestFor: [alice!.username] })).status).toBe(
      400,
    );
    // Bob signs as himself: not the admin. Signing as alice is refused before anything else.
    expect((await addMember(bob!, name, carol!.username)).status).toBe(403);
    expect((await addMember(bob!, name, carol!.username, { by: alice!.username })).status).toBe(403);
    // A leaving member cannot hand the group over, nor name themselves anything but themselves.
    expect((await leaveGroup(bob!, name, { admin: bob!.username })).status).toBe(400);
    expect((await info(alice!, name)).epoch).toBe(1);

    const added = await addMember(alice!, name, carol!.username);
    expect(added.status).toBe(200);
    const head: GroupInfo = await added.json();
    expect(decodeStatement(Uint8Array.from(atob(head.statement), (c) => c.charCodeAt(0)))).toMatchObject({
      action: "add",
      epoch: 2,
      by: alice!.username,
      user: carol!.username,
    });
  });

  it("insists that a leaving admin names the longest-standing member as successor", async () => {
    const [alice, bob, carol] = await users("alice", "bob", "carol");
    await writeTo(alice!, [bob!, carol!]);
    const name = groupName();
    await createGroup(alice!, name, [bob!]);
    await addMember(alice!, name, carol!.username);
    expect((await leaveGroup(alice!, name, { admin: carol!.username })).status).toBe(400);
    expect((await leaveGroup(alice!, name)).status).toBe(204);
    expect((await info(carol!, name)).admin).toBe(bob!.username);
  });

  it("tells a creator the epoch to sign for, and lets a removed member fetch the statement that removed them", async () => {
    const [alice, bob] = await users("alice", "bob");
    await writeTo(alice!, [bob!]);
    const name = groupName();
    expect(await (await api(`/v1/groups/${name}/next-epoch`, { token: alice!.token })).json()).toEqual({
      name,
      epoch: 1,
    });
    await createGroup(alice!, name, [bob!]);
    await removeMember(alice!, name, bob!.username);
    expect(await (await api(`/v1/groups/${name}/next-epoch`, { token: bob!.token })).json()).toEqual({
      name,
      epoch: 3,
    });
    const removal = await api(`/v1/groups/${name}/epochs/2`, { token: bob!.token });
    expect(removal.status).toBe(200);
    expect(await removal.json()).toMatchObject({ epoch: 2, members: [alice!.username] });
    expect((await api(`/v1/groups/${name}/epochs/3`, { token: bob!.token })).status).toBe(404);
  });
});
