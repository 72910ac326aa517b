// Group consent (protocol 3), enforced by the server: only users who have written to an admin may be
// added by them; everyone else is invited, is no member until they sign a join, and may decline. The
// caps and rate limits that keep invitations from being a way to flood someone: pending invitations and
// groups per user, groups created and users added per hour.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { homeStub } from "../../durable-objects/names.js";
import type {
  ErrorResponse,
  GroupInfo,
  GroupListResponse,
  SessionResponse as Session,
} from "../../protocol/http.js";
import worker from "../../worker/index.js";
import {
  answerInvitation,
  addMember,
  createGroup,
  inviteUser,
  leaveGroup,
  removeMember,
  signedBody,
  writeTo,
} from "./group-changes.js";
import { BASE, api, deliveredIds, online, postGroup, uniqueName, users, type TestSocket } from "./helpers.js";

const groupName = () => uniqueName("g");

const sockets: TestSocket[] = [];
async function connect(user: Session): Promise<TestSocket> {
  const socket = await online(user.token);
  sockets.push(socket);
  return socket;
}
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

async function info(user: Session, group: string): Promise<GroupInfo> {
  const response = await api(`/v1/groups/${group}`, { token: user.token });
  expect(response.status).toBe(200);
  return response.json();
}

async function groupList(user: Session): Promise<GroupListResponse> {
  const response = await api("/v1/groups", { token: user.token });
  expect(response.status).toBe(200);
  return response.json();
}

const names = (group: GroupInfo) => group.members.map((member) => member.username);

/** Waits for the event of `kind` about `group` on a socket. */
async function eventOn(socket: TestSocket, group: string, kind: string): Promise<Record<string, unknown>> {
  const found = await socket.waitFor(
    (r) => r.kind === "json" && r.frame.type === "event" && r.frame.group === group && r.frame.event === kind,
  );
  return (found as { frame: Record<string, unknown> }).frame;
}

/** A request through the Worker with some [vars] changed for it: how the rate limits are lowered here. */
function callWith(
  vars: Record<string, string>,
  user: Session,
  path: string,
  body: unknown,
): Promise<Response> {
  const request = new Request(`${BASE}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${user.token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const context = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
  return Promise.resolve(worker.fetch(request, { ...env, ...vars } as Env, context));
}

function createWith(
  vars: Record<string, string>,
  owner: Session,
  group: string,
  lists: { members?: string[]; invited?: string[] } = {},
): Promise<Response> {
  return signedBody(owner.username, group, "create", owner.username, {}, lists).then((body) =>
    callWith(vars, owner, "/v1/groups", body),
  );
}

function inviteWith(vars: Record<string, string>, admin: Session, group: string, user: string) {
  return signedBody(admin.username, group, "invite", user).then((body) =>
    callWith(vars, admin, `/v1/groups/${group}/invitations`, body),
  );
}

/** Gives one user's home its own [vars]: homes read the caps from their env on every check. */
async function withHomeVars(user: Session, vars: Record<string, string>): Promise<void> {
  await runInDurableObject(homeStub(env, user.username) as unknown as DurableObjectStub, (instance) => {
    (instance as unknown as { env: Env }).env = { ...env, ...vars } as Env;
  });
}

describe("adding a user", () => {
  it("needs them to have written to the admin: a stranger is refused with consent_required and nothing changes", async () => {
    const [alice, bob, carol] = await users("alice", "bob", "carol");
    const group = groupName();
    expect((await createGroup(alice!, group, [])).status).toBe(201);

    const refused = await addMember(alice!, group, bob!.username);
    expect(refused.status).toBe(403);
    const body: ErrorResponse = await refused.json();
    expect(body.error).toMatchObject({ code: "consent_required", users: [bob!.username] });
    expect(body.error.message).toContain("invite");
    expect(await info(alice!, group)).toMatchObject({ epoch: 1, invited: [] });
    expect(names(await info(alice!, group))).toEqual([alice!.username]);
    expect(await groupList(bob!)).toEqual({ groups: [], invitations: [] });

    // A create naming strangers is refused the same way, naming only those who have not written.
    await writeTo(alice!, [carol!]);
    const other = groupName();
    const create = await createGroup(alice!, other, [bob!, carol!]);
    expect(create.status).toBe(403);
    expect(((await create.json()) as ErrorResponse).error).toMatchObject({
      code: "consent_required",
      users: [bob!.username],
    });
    expect((await api(`/v1/groups/${other}`, { token: alice!.token })).status).toBe(404);

    // Once bob has sent alice a direct message, she adds him at once.
    await writeTo(alice!, [bob!]);
    const added = await addMember(alice!, group, bob!.username);
    expect(added.status).toBe(200);
    expect(names(await added.json())).toEqual([alice!.username, bob!.username]);
    expect((await createGroup(alice!, other, [bob!, carol!])).status).toBe(201);
  });

  it("is granted by the direction of the message: the one written to may add the writer, not the reverse", async () => {
    const [alice, bob] = await users("alice", "bob");
    await writeTo(alice!, [bob!]);
    expect((await createGroup(alice!, groupName(), [bob!])).status).toBe(201);
    const reverse = await createGroup(bob!, groupName(), [alice!]);
    expect(reverse.status).toBe(403);
    expect(((await reverse.json()) as ErrorResponse).error.users).toEqual([alice!.username]);
  });
  it("is not granted by a group message, even one handed over when its recipient is removed", async () => {
    const [alice, carol] = await users("alice", "carol");
    const group = groupName();
    expect((await createGroup(carol!, group, [], {}, [alice!])).status).toBe(201);
    expect((await answerInvitation(alice!, group, "join")).status).toBe(200);
    // Alice is offline: carol's message waits in the room, and goes to alice's home when she is removed.
    const c = await connect(carol!);
    const posted = await postGroup(c, carol!, group, 2, [alice!.username, carol!.username]);
    expect(posted.reply).toMatchObject({ type: "sent" });
    expect((await removeMember(carol!, group, alice!.username)).status).toBe(200);
    const a = await connect(alice!);
    await a.waitFor(() => deliveredIds(a).includes(posted.id));

    const refused = await createGroup(alice!, groupName(), [carol!]);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as ErrorResponse).error.users).toEqual([carol!.username]);
    // Alice's join, though, was consent to carol.
    expect((await createGroup(carol!, groupName(), [alice!])).status).toBe(201);
  });
});

describe("an invitation", () => {
  it("makes the invitee pending, not a member: told of it, able to read the group, sent no message", async () => {
    const [alice, bob, carol, eve] = await users("alice", "bob", "carol", "eve");
    await writeTo(alice!, [bob!]);
    const group = groupName();
    expect((await createGroup(alice!, group, [bob!])).status).toBe(201);
    const [a, b, c] = [await connect(alice!), await connect(bob!), await connect(carol!)];

    const invited = await inviteUser(alice!, group, carol!.username);
    expect(invited.status).toBe(200);
    const after: GroupInfo = await invited.json();
    expect(after).toMatchObject({ epoch: 2, invited: [carol!.username] });
    expect(names(after)).toEqual([alice!.username, bob!.username]);
    const expected = {
      event: "invited",
      by: alice!.username,
      user: carol!.username,
      epoch: 2,
      members: [alice!.username, bob!.username].sort(),
      invited: [carol!.username],
    };
    expect(await eventOn(c, group, "invited")).toMatchObject(expected);
    expect(await eventOn(b, group, "invited")).toMatchObject(expected);
    expect(await groupList(carol!)).toEqual({
      groups: [],
      invitations: [{ group, by: alice!.username, at: expect.any(Number) }],
    });

    // A message sealed with a key slot for the invitee is refused; one for the members only goes out,
    // and never to the invitee.
    const members = [alice!.username, bob!.username];
    expect((await postGroup(a, alice!, group, 2, [...members, carol!.username])).reply).toMatchObject({
      type: "error",
      code: "bad_frame",
    });
    const sent = await postGroup(a, alice!, group, 2, members);
    expect(sent.reply).toMatchObject({ type: "sent" });
    await b.waitFor((r) => r.kind === "binary");
    expect(deliveredIds(b)).toEqual([sent.id]);
    expect(deliveredIds(c)).toEqual([]);
    // Nor may the invitee post, or send the group a file.
    expect((await postGroup(c, carol!, group, 2, [...members, carol!.username])).reply).toMatchObject({
      code: "forbidden",
    });
    const blob = await api("/v1/blobs", {
      method: "POST",
      token: carol!.token,
      body: JSON.stringify({ group, size: 100 }),
    });
    expect(blob.status).toBe(403);

    // The invitee reads the group and the epoch that invited them, to check what they are asked to
    // join; someone not invited reads neither.
    expect(await info(carol!, group)).toMatchObject({ epoch: 2, invited: [carol!.username] });
    const epoch = await api(`/v1/groups/${group}/epochs/2`, { token: carol!.token });
    expect(await epoch.json()).toMatchObject({
      epoch: 2,
      members: members.sort(),
      invited: [carol!.username],
    });
    expect((await api(`/v1/groups/${group}/epochs/1`, { token: carol!.token })).status).toBe(403);
    expect((await api(`/v1/groups/${group}`, { token: eve!.token })).status).toBe(403);
    expect((await api(`/v1/groups/${group}/epochs/2`, { token: eve!.token })).status).toBe(403);

    // Joined, carol is a member from the next epoch on, and still never gets what was sent before.
    const joined = await answerInvitation(carol!, group, "join");
    expect(joined.status).toBe(200);
    const now: GroupInfo = await joined.json();
    expect(now).toMatchObject({ epoch: 3, invited: [] });
    expect(names(now)).toEqual([alice!.username, bob!.username, carol!.username]);
    expect(await eventOn(b, group, "joined")).toMatchObject({
      by: carol!.username,
      user: carol!.username,
      invited: [],
    });
    expect(await groupList(carol!)).toEqual({ groups: [group], invitations: [] });
    const later = await postGroup(a, alice!, group, 3, [...members, carol!.username]);
    expect(later.reply).toMatchObject({ type: "sent" });
    const fresh = await connect(carol!);
    await fresh.waitFor(() => deliveredIds(fresh).includes(later.id));
    expect(deliveredIds(fresh)).toEqual([later.id]);
  });

  it("ends with a decline, or with a remove (withdrawn); only an invitee may join or decline", async () => {
    const [alice, dave, erin, frank] = await users("alice", "dave", "erin", "frank");
    const group = groupName();
    expect((await createGroup(alice!, group, [])).status).toBe(201);
    const [d, e] = [await connect(dave!), await connect(erin!)];
    expect((await inviteUser(alice!, group, dave!.username)).status).toBe(200);
    expect((await inviteUser(alice!, group, erin!.username)).status).toBe(200);
    expect((await info(alice!, group)).invited).toEqual([dave!.username, erin!.username].sort());

    expect((await answerInvitation(dave!, group, "decline")).status).toBe(204);
    expect(await eventOn(d, group, "declined")).toMatchObject({
      by: dave!.username,
      invited: [erin!.username],
    });
    expect(await groupList(dave!)).toEqual({ groups: [], invitations: [] });
    expect((await api(`/v1/groups/${group}`, { token: dave!.token })).status).toBe(403);
    expect((await answerInvitation(dave!, group, "join")).status).toBe(403);

    const withdrawn = await removeMember(alice!, group, erin!.username);
    expect(withdrawn.status).toBe(200);
    expect(((await withdrawn.json()) as GroupInfo).invited).toEqual([]);
    expect(await eventOn(e, group, "uninvited")).toMatchObject({ by: alice!.username, user: erin!.username });
    expect(await groupList(erin!)).toEqual({ groups: [], invitations: [] });
    expect((await answerInvitation(erin!, group, "join")).status).toBe(403);

    const uninvited = await answerInvitation(frank!, group, "join");
    expect(uninvited.status).toBe(403);
    expect(await uninvited.text()).toContain("not invited");
    expect((await answerInvitation(frank!, group, "decline")).status).toBe(403);
    // Only the admin invites; an invitation is made once; a member is not invited.
    expect((await inviteUser(frank!, group, dave!.username)).status).toBe(403);
    expect((await inviteUser(alice!, group, frank!.username)).status).toBe(200);
    expect((await inviteUser(alice!, group, frank!.username)).status).toBe(409);
    expect((await inviteUser(alice!, group, alice!.username)).status).toBe(409);
    expect((await info(alice!, group)).members.map((m) => m.username)).toEqual([alice!.username]);
  });

  it("that is accepted lets the inviter add the joiner to other groups at once", async () => {
    const [alice, bob] = await users("alice", "bob");
    const first = groupName();
    expect((await createGroup(alice!, first, [])).status).toBe(201);
    expect((await inviteUser(alice!, first, bob!.username)).status).toBe(200);
    expect((await createGroup(alice!, groupName(), [bob!])).status).toBe(403);
    expect((await answerInvitation(bob!, first, "join")).status).toBe(200);
    expect((await createGroup(alice!, groupName(), [bob!])).status).toBe(201);
    const third = groupName();
    expect((await createGroup(alice!, third, [])).status).toBe(201);
    expect((await addMember(alice!, third, bob!.username)).status).toBe(200);
    // Bob's joining says nothing about alice's consent: he still invites her.
    expect((await createGroup(bob!, groupName(), [alice!])).status).toBe(403);
  });

  it("in a create: the invitees are told, and the group's closing drops their invitations", async () => {
    const [alice, bob, carol] = await users("alice", "bob", "carol");
    await writeTo(alice!, [bob!]);
    const c = await connect(carol!);
    const group = groupName();
    const created = await createGroup(alice!, group, [bob!], {}, [carol!]);
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ epoch: 1, invited: [carol!.username] });
    expect(await eventOn(c, group, "created")).toMatchObject({
      members: [alice!.username, bob!.username].sort(),
      invited: [carol!.username],
    });
    expect((await groupList(carol!)).invitations).toEqual([
      { group, by: alice!.username, at: expect.any(Number) },
    ]);

    expect((await leaveGroup(alice!, group)).status).toBe(204);
    expect((await info(bob!, group)).invited).toEqual([carol!.username]);
    expect((await leaveGroup(bob!, group)).status).toBe(204);
    expect(await groupList(carol!)).toEqual({ groups: [], invitations: [] });
    expect((await answerInvitation(carol!, group, "join")).status).toBe(404);
  });

  it("refused takes no place, and leaves a real invitation to the same group as it was", async () => {
    const [alice, bob, mallory] = await users("alice", "bob", "mallory");
    const group = groupName();
    expect((await createGroup(alice!, group, [])).status).toBe(201);
    expect((await inviteUser(alice!, group, bob!.username)).status).toBe(200);
    // The same invitation again, and a create of the same name naming bob: both refused, bob's stays.
    expect((await inviteUser(alice!, group, bob!.username)).status).toBe(409);
    expect((await createGroup(mallory!, group, [], {}, [bob!])).status).toBe(409);
    expect((await groupList(bob!)).invitations).toEqual([
      { group, by: alice!.username, at: expect.any(Number) },
    ]);
    // A create refused for its stale epoch leaves no invitation behind.
    const stale = groupName();
    expect((await createGroup(mallory!, stale, [], { epoch: 5 }, [bob!])).status).toBe(409);
    expect((await groupList(bob!)).invitations.map((invitation) => invitation.group)).toEqual([group]);
  });
});

describe("the caps", () => {
  it(`refuse a 21st pending invitation (MAX_PENDING_INVITATIONS_PER_USER is 20) until one is answered`, async () => {
    const [bob] = await users("bob");
    const admins = await users(...Array.from({ length: 21 }, (_, i) => `admin${i}`));
    const groups = admins.map(() => groupName());
    for (const [i, admin] of admins.entries())
      expect((await createGroup(admin, groups[i]!, [])).status).toBe(201);
    for (let i = 0; i < 20; i++)
      expect((await inviteUser(admins[i]!, groups[i]!, bob!.username)).status).toBe(200);
    const over = await inviteUser(admins[20]!, groups[20]!, bob!.username);
    expect(over.status).toBe(409);
    expect(await over.text()).toContain(`${bob!.username} has 20 pending invitations`);
    expect((await info(admins[20]!, groups[20]!)).invited).toEqual([]);
    const list = await groupList(bob!);
    expect(list.groups).toEqual([]);
    expect(list.invitations.map((invitation) => invitation.group)).toEqual(groups.slice(0, 20));
    expect(list.invitations.map((invitation) => invitation.by)).toEqual(
      admins.slice(0, 20).map((a) => a.username),
    );

    // A create inviting bob and carol is refused whole: carol keeps no invitation to a group not made.
    const [carol] = await users("carol");
    const both = await createGroup(admins[20]!, groupName(), [], {}, [bob!, carol!]);
    expect(both.status).toBe(409);
    expect(await groupList(carol!)).toEqual({ groups: [], invitations: [] });

    expect((await answerInvitation(bob!, groups[0]!, "decline")).status).toBe(204);
    expect((await inviteUser(admins[20]!, groups[20]!, bob!.username)).status).toBe(200);
  });

  it("let one attacker hold at most 20 of a victim's invitations over 25 groups, and make them a member of none", async () => {
    const [attacker, victim] = await users("attacker", "victim");
    // Past the create rate limit too, to show the invitation cap on its own.
    const vars = { GROUP_CREATES_PER_USER_PER_HOUR: "100" };
    const groups = Array.from({ length: 25 }, () => groupName());
    const statuses: number[] = [];
    for (const [i, group] of groups.entries()) {
      if (i % 2 === 0) {
        // Invited by the create itself.
        statuses.push((await createWith(vars, attacker!, group, { invited: [victim!.username] })).status);
      } else {
        expect((await createWith(vars, attacker!, group)).status).toBe(201);
        statuses.push((await inviteWith(vars, attacker!, group, victim!.username)).status);
      }
    }
    expect(statuses.filter((status) => status === 201 || status === 200)).toHaveLength(20);
    expect(statuses.slice(20)).toEqual([409, 409, 409, 409, 409]);
    // Adding the victim outright is no way round: they never wrote to the attacker.
    const add = await addMember(attacker!, groups[1]!, victim!.username);
    expect(add.status).toBe(403);
    expect(((await add.json()) as ErrorResponse).error.code).toBe("consent_required");

    const list = await groupList(victim!);
    expect(list.groups).toEqual([]);
    expect(list.invitations).toHaveLength(20);
    for (const group of groups) {
      const room = await api(`/v1/groups/${group}`, { token: attacker!.token });
      if (room.status === 200) expect(names(await room.json())).toEqual([attacker!.username]);
    }
  });

  it("refuse a membership past MAX_GROUPS_PER_USER: an add, a create and a join, not an invitation", async () => {
    const [alice, bob] = await users("alice", "bob");
    await writeTo(alice!, [bob!]);
    await withHomeVars(bob!, { MAX_GROUPS_PER_USER: "2" });
    const [one, two, three, four, five] = Array.from({ length: 5 }, () => groupName());
    expect((await createGroup(alice!, one!, [bob!])).status).toBe(201);
    expect((await createGroup(alice!, two!, [bob!])).status).toBe(201);
    const full = await createGroup(alice!, three!, [bob!]);
    expect(full.status).toBe(409);
    expect(await full.text()).toContain(`${bob!.username} is in 2 groups already`);
    expect((await createGroup(alice!, four!, [])).status).toBe(201);
    expect((await addMember(alice!, four!, bob!.username)).status).toBe(409);
    expect((await createGroup(bob!, five!, [])).status).toBe(409);
    expect((await inviteUser(alice!, four!, bob!.username)).status).toBe(200);
    expect((await answerInvitation(bob!, four!, "join")).status).toBe(409);
    expect((await groupList(bob!)).groups.sort()).toEqual([one!, two!].sort());

    expect((await leaveGroup(bob!, one!)).status).toBe(204);
    expect((await answerInvitation(bob!, four!, "join")).status).toBe(200);
  });
});

describe("the rate limits", () => {
  it("count groups created per user and hour; a create refused for consent is not counted", async () => {
    const [alice, bob, stranger] = await users("alice", "bob", "stranger");
    const vars = { GROUP_CREATES_PER_USER_PER_HOUR: "2" };
    expect((await createWith(vars, alice!, groupName(), { members: [stranger!.username] })).status).toBe(403);
    expect((await createWith(vars, alice!, groupName())).status).toBe(201);
    expect((await createWith(vars, alice!, groupName())).status).toBe(201);
    const limited = await createWith(vars, alice!, groupName());
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(((await limited.json()) as ErrorResponse).error).toMatchObject({ code: "rate_limited" });
    expect((await createWith(vars, bob!, groupName())).status).toBe(201);
  });

  it("count users added or invited per user and hour, a create counting everyone it names but its creator", async () => {
    const [alice, bob, carol, dave, erin, frank] = await users(
      "alice",
      "bob",
      "carol",
      "dave",
      "erin",
      "frank",
    );
    await writeTo(alice!, [bob!, carol!, frank!]);
    const vars = { GROUP_ADDS_PER_USER_PER_HOUR: "4" };
    const group = groupName();
    const tooMany = await createWith(vars, alice!, group, {
      members: [bob!.username, carol!.username],
      invited: [dave!.username, erin!.username, frank!.username],
    });
    expect(tooMany.status).toBe(429);
    expect(await tooMany.text()).toContain("at once");
    expect(
      (await createWith(vars, alice!, group, { members: [bob!.username, carol!.username] })).status,
    ).toBe(201);
    // An add refused for consent is not counted: the invitation that follows is.
    const addStranger = await signedBody(alice!.username, group, "add", dave!.username);
    expect((await callWith(vars, alice!, `/v1/groups/${group}/members`, addStranger)).status).toBe(403);
    expect((await inviteWith(vars, alice!, group, dave!.username)).status).toBe(200);
    const add = await signedBody(alice!.username, group, "add", frank!.username);
    expect((await callWith(vars, alice!, `/v1/groups/${group}/members`, add)).status).toBe(200);
    const limited = await inviteWith(vars, alice!, group, erin!.username);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect((await info(alice!, group)).invited).toEqual([dave!.username]);
  });
});

describe("statement versions", () => {
  it("refuse a new version 1 statement: changes are signed as version 2", async () => {
    const [alice, bob] = await users("alice", "bob");
    await writeTo(alice!, [bob!]);
    const old = await createGroup(alice!, groupName(), [bob!], { version: 1 });
    expect(old.status).toBe(400);
    expect(await old.text()).toContain("sign statement version 2");
    const group = groupName();
    expect((await createGroup(alice!, group, [])).status).toBe(201);
    const add = await addMember(alice!, group, bob!.username, { version: 1 });
    expect(add.status).toBe(400);
    expect(await add.text()).toContain("sign statement version 2");
    expect((await info(alice!, group)).epoch).toBe(1);
  });

  it("refuse a statement whose invitations digest is not the invitations", async () => {
    const [alice, bob] = await users("alice", "bob");
    const group = groupName();
    expect((await createGroup(alice!, group, [])).status).toBe(201);
    const wrong = await inviteUser(alice!, group, bob!.username, { invitedDigestFor: [] });
    expect(wrong.status).toBe(400);
    expect(await wrong.text()).toContain("invitations digest");
    expect((await createGroup(alice!, groupName(), [], { invitedDigestFor: [bob!.username] })).status).toBe(
      400,
    );
  });
});
