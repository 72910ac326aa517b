// Group consent in the CLI against the stub server, with real keys: invitations start an invitee's chain
// (an invite signed by the admin it names, or a create that lists them as invited) and their own join
// follows it; a forged join, lists that do not match the signed digests, or a member list with an invitee
// in it are refused; the commands turn consent_required into invitations, sign joins and declines only on
// a verified head, and show invitations in list, info, inbox and chat; invitees get no key slot.

import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { toHex } from "../../../protocol/bytes.js";
import { membersDigest } from "../../../protocol/envelope.js";
import type { EventFrame } from "../../../protocol/frames.js";
import { GENESIS_PREV, NO_INVITATIONS_DIGEST, decodeStatement } from "../../../protocol/group-statement.js";
import { Contacts } from "../../../cli-client/contacts.js";
import { GroupDirectory } from "../../../cli-client/groups.js";
import { Home } from "../../../cli-client/home.js";
import { localTime } from "../../../cli-client/output.js";
import { SignedChain, groupsFileOf } from "./group-chain.js";
import { type TestUser, answerUploads, loggedInAs, loggedInHome, makeUser, serveKeys } from "./fixtures.js";
import { type StubServer, fakeIo, runCaptured, sendWelcome, startStubServer, tempDir } from "./helpers.js";

let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let eve: TestUser;
let everyone: TestUser[];
vi.setConfig({ testTimeout: 30_000, hookTimeout: 60_000 });

let server: StubServer;
let dir: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  [alice, bob, carol, eve] = await Promise.all([
    makeUser("alice"),
    makeUser("bob"),
    makeUser("carol"),
    makeUser("eve"),
  ]);
  everyone = [alice, bob, carol, eve];
});

beforeEach(async () => {
  server = await startStubServer();
  serveKeys(server, everyone);
  dir = await tempDir();
});

afterEach(async () => {
  await server.close();
  await dir.remove();
});

const cli = runCaptured;

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** devs: alice creates it with carol (epoch 1), then invites bob (epoch 2). */
function devsInvitingBob(): SignedChain {
  const chain = new SignedChain("devs", everyone);
  chain.create(alice, ["carol"]);
  chain.invite(alice, "bob");
  return chain;
}

/** A directory for `user` in its own folder under the test's. */
async function directoryOf(user: TestUser, folder = user.name): Promise<GroupDirectory> {
  const home = new Home(join(dir.path, folder));
  const me = loggedInAs(server.url, user);
  return GroupDirectory.load(home, me, new Contacts(home, me));
}

/** A receiving socket that pushes `frames` then synced; records acks. */
function serveFrames(frames: Array<Uint8Array | object>): string[] {
  const acked: string[] = [];
  server.onSocket = (socket) => {
    sendWelcome(socket.ws);
    for (const frame of frames) socket.ws.send(frame instanceof Uint8Array ? frame : JSON.stringify(frame));
    socket.ws.send(JSON.stringify({ type: "synced" }));
    socket.ws.on("message", (data: Buffer, isBinary) => {
      if (!isBinary) acked.push(...((JSON.parse(data.toString()) as { ids?: string[] }).ids ?? []));
    });
  };
  return acked;
}

const consentRequired = (users: string[]) => ({
  status: 403,
  body: {
    error: { code: "consent_required", message: `${users.join(", ")} must be invited`, users },
  },
});

describe("an invitee's chain", () => {
  it("starts at an invitation signed by the admin it names, makes no member of them, and their join follows", async () => {
    const chain = devsInvitingBob();
    chain.serve(server);
    const directory = await directoryOf(bob);
    const invited = await directory.learn("devs", chain.event(chain.entry(2)));
    expect(invited.kind === "adopted" && invited.epochs.map((epoch) => [epoch.epoch, epoch.event])).toEqual([
      [2, "invited"],
    ]);
    expect(directory.latest("devs")).toEqual({ epoch: 2, members: ["alice", "carol"] });
    expect(directory.isInvited("devs")).toBe(true);
    expect(directory.headOf("devs")?.invited).toEqual(["bob"]);

    const joined = await directory.learn("devs", chain.event(chain.join(bob)));
    expect(joined.kind === "adopted" && joined.epochs.map((epoch) => epoch.event)).toEqual(["joined"]);
    expect(directory.latest("devs")).toEqual({ epoch: 3, members: ["alice", "bob", "carol"] });
    expect(directory.isInvited("devs")).toBe(false);
  });

  it("starts at a create that lists this user as invited", async () => {
    const chain = new SignedChain("devs", everyone);
    chain.create(alice, ["carol"], 1, ["bob"]);
    const directory = await directoryOf(bob);
    expect((await directory.learn("devs", chain.event(chain.entry(1)))).kind).toBe("adopted");
    expect(directory.isInvited("devs")).toBe(true);
    // A create that neither lists nor invites this user starts nothing.
    const other = new SignedChain("club", everyone);
    other.create(alice, ["carol"], 1, ["eve"]);
    expect(await directory.learn("club", other.event(other.entry(1)))).toMatchObject({
      kind: "refused",
      reason: expect.stringMatching(/no create, add or invitation of bob/),
    });
  });

  it("follows a join made on another device back to the invitation, across other changes", async () => {
    const chain = devsInvitingBob();
    chain.invite(alice, "eve"); // 3
    chain.join(bob); // 4
    const requests = chain.serve(server);
    const directory = await directoryOf(bob);
    const outcome = await directory.learn("devs", chain.epochAnswer(chain.entry(4)));
    expect(outcome.kind === "adopted" && outcome.epochs.map((epoch) => [epoch.epoch, epoch.event])).toEqual([
      [2, "invited"],
      [3, "invited"],
      [4, "joined"],
    ]);
    expect(requests).toEqual(["GET /v1/groups/devs/epochs/3", "GET /v1/groups/devs/epochs/2"]);
    expect(directory.headOf("devs")).toMatchObject({ members: ["alice", "bob", "carol"], invited: ["eve"] });
  });

  it("refuses a join by someone who was not invited, and one signed for another user, adopting nothing", async () => {
    const chain = new SignedChain("devs", everyone);
    chain.create(alice, ["bob"]);
    const directory = await directoryOf(alice);
    expect((await directory.learn("devs", chain.event(chain.entry(1)))).kind).toBe("adopted");
    // eve signs her own join, but nobody invited her.
    const forged = new SignedChain("devs", everyone);
    forged.entries.push(chain.entry(1));
    expect(await directory.learn("devs", forged.event(forged.join(eve)))).toMatchObject({
      kind: "refused",
      reason: expect.stringMatching(/epoch 2: eve is not invited/),
    });
    // eve signs a join in carol's name, carol being invited.
    chain.invite(alice, "carol");
    expect((await directory.learn("devs", chain.event(chain.head))).kind).toBe("adopted");
    const inCarolsName = chain.push(
      eve,
      { action: "join", by: "eve", user: "carol", admin: "alice" },
      [...chain.head.joinOrder, "carol"],
      [],
    );
    expect(await directory.learn("devs", chain.event(inCarolsName))).toMatchObject({
      kind: "refused",
      reason: expect.stringMatching(/only carol may sign their own join/),
    });
    expect(directory.latest("devs")).toEqual({ epoch: 2, members: ["alice", "bob"] });
  });

  it("refuses invitation lists that do not match the signed digest, beside a known statement or a new one", async () => {
    const chain = devsInvitingBob();
    const directory = await directoryOf(carol);
    expect((await directory.learn("devs", chain.event(chain.entry(1)))).kind).toBe("adopted");
    const invite = chain.event(chain.entry(2));
    // The server hides bob's invitation, or adds eve to it.
    for (const invited of [[], ["bob", "eve"]]) {
      expect(await directory.learn("devs", { ...invite, invited })).toMatchObject({
        kind: "refused",
        reason: expect.stringMatching(/invitation list given does not match/),
      });
    }
    expect(directory.headOf("devs")?.epoch).toBe(1);
    expect((await directory.learn("devs", invite)).kind).toBe("adopted");
    // Known now: the same statement with another list beside it is still refused.
    expect(await directory.learn("devs", { ...invite, invited: ["bob", "eve"] })).toMatchObject({
      kind: "refused",
      reason: "the invitation list given does not match the signed invitations digest",
    });

    // An admin's statement whose signed digest is not the invitations it makes.
    const lying = new SignedChain("team", everyone);
    lying.create(alice, ["carol"]);
    const lie = lying.push(
      alice,
      { action: "invite", user: "bob", admin: "alice", invitedDigest: membersDigest([]) },
      ["alice", "carol"],
      ["bob"],
    );
    expect((await directory.learn("team", lying.event(lying.entry(1)))).kind).toBe("adopted");
    expect(await directory.learn("team", lying.event(lie))).toMatchObject({
      kind: "refused",
      reason: expect.stringMatching(/signed invitations digest does not match/),
    });
    // As the statement that would start bob's chain, too.
    const bobs = await directoryOf(bob);
    expect(await bobs.learn("team", lying.event(lie))).toMatchObject({
      kind: "refused",
      reason: expect.stringMatching(/invitations digest does not match/),
    });
  });

  it("refuses an invitation of this user signed by someone who is not the admin it names", async () => {
    const chain = new SignedChain("devs", everyone);
    chain.create(alice, ["carol"]);
    const forged = chain.invite(carol, "bob");
    const directory = await directoryOf(bob);
    expect(await directory.learn("devs", chain.event(forged))).toMatchObject({
      kind: "refused",
      reason: expect.stringMatching(/not signed by the admin it names/),
    });
  });
});

describe("groups.json from before invitations (version 2)", () => {
  it("is read as the same chains with nobody invited, goes on verifying, and is written as version 3", async () => {
    const chain = new SignedChain("devs", everyone);
    // A version 1 create, as protocol 2 signed them.
    chain.push(
      alice,
      { version: 1, action: "create", epoch: 1, prev: GENESIS_PREV, user: "alice", admin: "alice" },
      ["alice", "bob"],
      [],
    );
    expect(decodeStatement(new Uint8Array(Buffer.from(chain.entry(1).bytes, "base64"))).version).toBe(1);
    const {
      invitedDigest: _digest,
      event: _event,
      invited: _invited,
      ...legacy
    } = chain.fileRecord(chain.entry(1));
    const home = new Home(dir.path);
    await home.ensure();
    const file = join(dir.path, "groups.json");
    const legacyFile = {
      version: 2,
      owner: "alice",
      groups: [{ name: "devs", anchor: 1, epochs: [legacy], forks: [] }],
    };
    await writeFile(file, JSON.stringify(legacyFile));
    expect(await home.read("groups.json")).toEqual({
      version: 3,
      owner: "alice",
      groups: [
        {
          name: "devs",
          anchor: 1,
          epochs: [{ ...legacy, invitedDigest: toHex(NO_INVITATIONS_DIGEST), event: "created", invited: [] }],
          forks: [],
        },
      ],
    });
    const me = loggedInAs(server.url, alice);
    const directory = await GroupDirectory.load(home, me, new Contacts(home, me));
    expect(directory.latest("devs")).toEqual({ epoch: 1, members: ["alice", "bob"] });
    // The next statement (version 2) follows the migrated head.
    const invite = chain.invite(alice, "carol");
    expect((await directory.learn("devs", chain.event(invite))).kind).toBe("adopted");
    await directory.save();
    const written = JSON.parse(readFileSync(file, "utf8"));
    expect(written.version).toBe(3);
    expect(written.groups[0].epochs.map((epoch: { event: string }) => epoch.event)).toEqual([
      "created",
      "invited",
    ]);
    expect(written.groups[0].epochs[1].invited).toEqual(["carol"]);
  });
});

describe("group create and add, when members must consent", () => {
  it("create invites those the server names, signing the create again, and reports who was added and who invited", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob, carol]);
    const bodies: Array<{ statement: string; members: string[]; invited?: string[] }> = [];
    const serveCreate = (chain: SignedChain) => {
      chain.serve(server);
      const accept = server.http.get("POST /v1/groups")!;
      server.http.set("POST /v1/groups", (request, body, bytes) => {
        bodies.push(JSON.parse(body));
        return bodies.length % 2 === 1 ? consentRequired(["carol"]) : accept(request, body, bytes);
      });
    };
    const devs = new SignedChain("devs", everyone);
    serveCreate(devs);
    const human = await cli(["--home", home.dir, "group", "create", "devs", "bob", "carol"]);
    expect(human.stderr).toBe("");
    expect(human.code).toBe(0);
    expect(human.stdout).toBe(
      "created group devs: admin alice, epoch 1\n" +
        "members, oldest first: alice (admin), bob\n" +
        "invited, not yet members: carol\n" +
        "carol must accept with `telepound group join devs` (only users who have written to you are added at once)\n",
    );
    const [first, second] = bodies.map((body) => ({
      ...body,
      signed: decodeStatement(new Uint8Array(Buffer.from(body.statement, "base64"))),
    }));
    expect(first).toMatchObject({ members: ["alice", "bob", "carol"] });
    expect(first!.invited).toBeUndefined();
    expect(second).toMatchObject({ members: ["alice", "bob"], invited: ["carol"] });
    expect(second!.signed).toMatchObject({ version: 2, action: "create", epoch: first!.signed.epoch });
    expect(second!.signed.membersDigest).toEqual(membersDigest(["alice", "bob"]));
    expect(second!.signed.invitedDigest).toEqual(membersDigest(["carol"]));
    expect(devs.head.invited).toEqual(["carol"]);

    serveCreate(new SignedChain("team", everyone));
    const json = await cli(["--home", home.dir, "group", "create", "team", "bob", "carol", "--json"]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      name: "team",
      admin: "alice",
      epoch: 1,
      members: ["alice", "bob"],
      invited: ["carol"],
      createdAt: expect.any(String),
      added: ["bob"],
    });
  });

  it("create refuses a consent_required naming someone it did not ask to add, signing nothing more (exit 5)", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    new SignedChain("devs", everyone).serve(server);
    let posts = 0;
    server.http.set("POST /v1/groups", () => (posts++, consentRequired(["eve"])));
    const result = await cli(["--home", home.dir, "group", "create", "devs", "bob"]);
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(
      /protocol failure: the server asks for consent to the create of devs from eve/,
    );
    expect(posts).toBe(1);
  });

  it("add invites someone who has not written to the admin, info shows them, and remove withdraws the invitation", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob, carol]);
    const chain = new SignedChain("devs", everyone);
    chain.create(alice, ["carol"]);
    await home.write("groups.json", groupsFileOf("alice", chain));
    const requests = chain.serve(server);
    const acceptAdd = server.http.get("POST /v1/groups/devs/members")!;
    server.http.set("POST /v1/groups/devs/members", (request, body, bytes) => {
      requests.push("POST /v1/groups/devs/members");
      const { statement } = JSON.parse(body) as { statement: string };
      const user = decodeStatement(new Uint8Array(Buffer.from(statement, "base64"))).user;
      return user === "bob" ? consentRequired(["bob"]) : acceptAdd(request, body, bytes);
    });
    const add = await cli(["--home", home.dir, "group", "add", "devs", "bob"]);
    expect(add.stderr).toBe("");
    expect(add.code).toBe(0);
    expect(add.stdout).toBe(
      "invited bob to devs: they must accept with `telepound group join devs`\n" +
        "group devs: admin alice, epoch 2\n" +
        "members, oldest first: alice (admin), carol\n" +
        "invited, not yet members: bob\n",
    );
    expect(requests).toEqual([
      "GET /v1/groups/devs",
      "POST /v1/groups/devs/members",
      "POST /v1/groups/devs/invitations",
    ]);
    expect(chain.head.statement).toMatchObject({ action: "invite", by: "alice", user: "bob", epoch: 2 });
    const info = await cli(["--home", home.dir, "group", "info", "devs", "--json"]);
    expect(JSON.parse(info.stdout)).toMatchObject({ members: ["alice", "carol"], invited: ["bob"] });

    // Asked again: the invitation stands, nothing else is signed.
    const again = await cli(["--home", home.dir, "group", "add", "devs", "bob"]);
    expect(again).toMatchObject({
      code: 7,
      stderr:
        "telepound: bob is already invited to devs: they must accept with `telepound group join devs`\n",
    });
    expect(chain.head.epoch).toBe(2);

    const remove = await cli(["--home", home.dir, "group", "remove", "devs", "bob", "--json"]);
    expect(remove.code).toBe(0);
    expect(JSON.parse(remove.stdout)).toMatchObject({
      user: "bob",
      change: "uninvited",
      members: ["alice", "carol"],
      invited: [],
      epoch: 3,
    });
    expect(chain.head.statement).toMatchObject({ action: "remove", user: "bob" });
    const human = await cli(["--home", home.dir, "group", "info", "devs"]);
    expect(human.stdout).toBe(
      "group devs: admin alice, epoch 3\nmembers, oldest first: alice (admin), carol\n",
    );
  });
});

describe("group join and decline", () => {
  it("join verifies the chain to the head, signs the join on it, and bob then seals for the members", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol]);
    const chain = devsInvitingBob();
    chain.add(alice, "eve"); // a change bob is shown on the way
    const requests = chain.serve(server);
    const { code, stdout, stderr } = await cli(["--home", home.dir, "group", "join", "devs"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    // The invitation itself is not shown again; the add after it is.
    expect(stdout).not.toContain("invited you");
    expect(stdout).toMatch(/group devs: alice added eve .*\[signed by alice\]\n/);
    expect(stdout).toMatch(
      /you joined group devs: admin alice, epoch 4\nmembers, oldest first: alice \(admin\), carol, eve, bob\n$/,
    );
    expect(requests).toEqual([
      "GET /v1/groups/devs",
      "GET /v1/groups/devs/epochs/2",
      "POST /v1/groups/devs/join",
    ]);
    const join = chain.head;
    expect(join.statement).toMatchObject({ version: 2, action: "join", by: "bob", user: "bob", epoch: 4 });
    expect(toHex(join.statement.prev)).toBe(
      (await home.read("groups.json"))!.groups[0]!.epochs.find((epoch) => epoch.epoch === 3)!.hash,
    );
    expect(join.statement.invitedDigest).toEqual(membersDigest([]));

    const uploads = answerUploads(server, "delivered");
    const sent = await cli(["--home", home.dir, "send", "--group", "devs", "hi", "--json"]);
    expect(sent.code).toBe(0);
    expect(uploads[0]!.slots.map((slot) => slot.recipient)).toEqual(["alice", "bob", "carol", "eve"]);
  });

  it("join --json reports the group joined; an invitee's leave is refused with how to decline", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol]);
    const requests = devsInvitingBob().serve(server);
    const leave = await cli(["--home", home.dir, "group", "leave", "devs"]);
    expect(leave).toMatchObject({
      code: 7,
      stderr:
        "telepound: you are invited to the group devs, not a member: to say no, `telepound group decline devs`\n",
    });
    expect(requests).not.toContain("POST /v1/groups/devs/leave");
    const { code, stdout } = await cli(["--home", home.dir, "group", "join", "devs", "--json"]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      name: "devs",
      admin: "alice",
      epoch: 3,
      members: ["alice", "carol", "bob"],
      invited: [],
      createdAt: expect.any(String),
      change: "joined",
    });
  });

  it("join refuses a group whose chain does not verify, signing nothing (exit 8)", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol]);
    // The invitation is carol's, but the admin it names is alice.
    const chain = new SignedChain("devs", everyone);
    chain.create(alice, ["carol"]);
    chain.invite(carol, "bob");
    const requests = chain.serve(server);
    const forged = await cli(["--home", home.dir, "group", "join", "devs"]);
    expect(forged.code).toBe(8);
    expect(forged.stderr).toMatch(
      /does not verify: the invite that brought this user in is not signed by the admin/,
    );
    expect(requests).not.toContain("POST /v1/groups/devs/join");

    // A real invitation, but the server's head lists bob as a member already: not the signed list.
    const real = devsInvitingBob();
    real.serve(server);
    const info = real.info();
    server.http.set("GET /v1/groups/devs", () => ({
      status: 200,
      body: { ...info, members: [...info.members, { username: "bob", joinedAt: 9 }], invited: [] },
    }));
    const listed = await cli(["--home", home.dir, "group", "join", "devs"]);
    expect(listed.code).toBe(8);
    expect(listed.stderr).toMatch(/the signed members digest does not match the member list/);
    expect(real.head.statement.action).toBe("invite");
  });

  it("decline signs on the verified head, ends the invitation, and a join after it is refused (exit 7)", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol]);
    const chain = devsInvitingBob();
    const requests = chain.serve(server);
    const declined = await cli(["--home", home.dir, "group", "decline", "devs", "--json"]);
    expect(declined.stderr).toBe("");
    expect(declined.code).toBe(0);
    expect(JSON.parse(declined.stdout)).toEqual({ group: "devs", declined: true });
    expect(chain.head.statement).toMatchObject({ action: "decline", by: "bob", user: "bob", epoch: 3 });
    const head = (await home.read("groups.json"))!.groups[0]!.epochs.at(-1)!;
    expect(head).toMatchObject({ epoch: 3, event: "declined", invited: [], members: ["alice", "carol"] });

    const join = await cli(["--home", home.dir, "group", "join", "devs"]);
    expect(join).toMatchObject({ code: 7, stderr: "telepound: you are not invited to the group devs\n" });
    expect(requests.filter((request) => request.startsWith("POST"))).toEqual([
      "POST /v1/groups/devs/decline",
    ]);
    const human = await cli(["--home", home.dir, "group", "decline", "devs"]);
    expect(human.code).toBe(7);
  });
});

describe("group list", () => {
  it("shows pending invitations (group, who, when) beside the groups, in text and --json", async () => {
    const home = await loggedInHome(dir.path, server.url, bob);
    const at = Date.UTC(2026, 0, 2, 3, 4, 5);
    let answer: object = { groups: ["devs"], invitations: [{ group: "club", by: "alice", at }] };
    server.http.set("GET /v1/groups", () => ({ status: 200, body: answer }));
    const human = await cli(["--home", home.dir, "group", "list"]);
    expect(human.stdout).toBe(
      `devs\ninvitations:\n  club: invited by alice at ${localTime(at)} (\`telepound group join club\` or \`telepound group decline club\`)\n`,
    );
    const json = await cli(["--home", home.dir, "group", "list", "--json"]);
    expect(JSON.parse(json.stdout)).toEqual({
      groups: ["devs"],
      invitations: [{ group: "club", by: "alice", at: "2026-01-02T03:04:05.000Z" }],
    });
    answer = { groups: [], invitations: [] };
    expect((await cli(["--home", home.dir, "group", "list"])).stdout).toBe("you are in no groups\n");
    // An answer without the invitations is not this protocol's.
    answer = { groups: [] };
    expect((await cli(["--home", home.dir, "group", "list"])).code).toBe(5);
  });
});

describe("consent events in inbox", () => {
  it("shows an invitation to the invitee with how to answer it, and to members by name, with signedBy in --json", async () => {
    const chain = devsInvitingBob();
    const bobHome = await loggedInHome(join(dir.path, "bob"), server.url, bob, [alice, carol]);
    const acked = serveFrames([chain.event(chain.entry(2))]);
    const invitee = await cli(["--home", bobHome.dir, "inbox"]);
    expect(invitee.code).toBe(0);
    expect(invitee.stdout).toMatch(
      /\] alice invited you to devs: `telepound group join devs` or `telepound group decline devs` \(members: alice, carol; invited: bob\) \[signed by alice\]\n$/,
    );
    expect(acked).toEqual([chain.event(chain.entry(2)).id]);

    const carolHome = await loggedInHome(join(dir.path, "carol"), server.url, carol, [alice, bob]);
    chain.join(bob);
    serveFrames([chain.event(chain.entry(1)), chain.event(chain.entry(2)), chain.event(chain.entry(3))]);
    const member = await cli(["--home", carolHome.dir, "inbox", "--json"]);
    expect(member.stderr).toBe("");
    expect(jsonLines(member.stdout).slice(1)).toEqual([
      {
        event: "invited",
        group: "devs",
        by: "alice",
        user: "bob",
        epoch: 2,
        members: ["alice", "carol"],
        invited: ["bob"],
        admin: "alice",
        signedBy: "alice",
      },
      {
        event: "joined",
        group: "devs",
        by: "bob",
        user: "bob",
        epoch: 3,
        members: ["alice", "bob", "carol"],
        invited: [],
        admin: "alice",
        signedBy: "bob",
      },
    ]);
  });

  it("shows a decline and a withdrawn invitation, to members and to the one concerned", async () => {
    const chain = devsInvitingBob();
    chain.decline(bob); // 3
    chain.invite(alice, "bob"); // 4
    chain.remove(alice, "bob"); // 5: withdrawn
    const carolHome = await loggedInHome(join(dir.path, "carol"), server.url, carol, [alice, bob]);
    serveFrames(chain.entries.map((entry) => chain.event(entry)));
    const member = await cli(["--home", carolHome.dir, "inbox"]);
    expect(member.stdout).toMatch(
      /group devs: bob declined the invitation \(members: alice, carol\) \[signed by bob\]\n/,
    );
    expect(member.stdout).toMatch(
      /group devs: alice withdrew the invitation of bob \(members: alice, carol\) \[signed by alice\]\n$/,
    );
    const bobHome = await loggedInHome(join(dir.path, "bob"), server.url, bob, [alice, carol]);
    serveFrames([chain.event(chain.entry(4)), chain.event(chain.entry(5))]);
    const invitee = await cli(["--home", bobHome.dir, "inbox", "--json"]);
    expect(jsonLines(invitee.stdout).map((line) => [line.event, line.user, line.signedBy])).toEqual([
      ["invited", "bob", "alice"],
      ["uninvited", "bob", "alice"],
    ]);
  });
});

describe("sending to a group with invitees", () => {
  it("seals only for members: an invitee has no slot, a forged joined event or member list is refused", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob, carol]);
    const chain = devsInvitingBob();
    await home.write("groups.json", groupsFileOf("alice", chain));
    chain.serve(server);
    // A "joined" event for bob carrying alice's invite (bob never signed a join), and one with a join
    // "by bob" signed with eve's key.
    const noJoin: EventFrame = {
      ...chain.event(chain.entry(2)),
      id: "f".repeat(32),
      event: "joined",
      user: "bob",
      by: "bob",
      members: ["alice", "bob", "carol"],
      invited: [],
    };
    const forger = new SignedChain("devs", everyone);
    forger.entries.push(...chain.entries);
    const wrongKey = forger.push(
      eve,
      { action: "join", by: "bob", user: "bob", admin: "alice" },
      ["alice", "carol", "bob"],
      [],
    );
    const acked = serveFrames([noJoin, forger.event(wrongKey, { id: "a".repeat(32) })]);
    const inbox = await cli(["--home", home.dir, "inbox"]);
    expect(inbox.code).toBe(0);
    expect(inbox.stdout).toBe("no new messages\n");
    expect(inbox.stderr).toMatch(
      /ignored a membership event for the group devs: the member list given does not match/,
    );
    expect(inbox.stderr).toMatch(/ignored a membership event for the group devs: the signature is not bob's/);
    expect(acked).toEqual(["f".repeat(32), "a".repeat(32)]);

    const uploads = answerUploads(server, "delivered");
    const sent = await cli(["--home", home.dir, "send", "--group", "devs", "members only", "--json"]);
    expect(sent.code).toBe(0);
    expect(uploads[0]!.header.epoch).toBe(2);
    expect(uploads[0]!.slots.map((slot) => slot.recipient)).toEqual(["alice", "carol"]);

    // The server's head says bob is a member: not what the invite signed.
    const info = chain.info();
    server.http.set("GET /v1/groups/devs", () => ({
      status: 200,
      body: { ...info, members: [...info.members, { username: "bob", joinedAt: 9 }], invited: [] },
    }));
    const lied = await cli(["--home", home.dir, "group", "info", "devs"]);
    expect(lied.code).toBe(8);
    expect(uploads.flatMap((upload) => upload.slots.map((slot) => slot.recipient))).not.toContain("bob");
  });

  it("refuses an invitee's send with how to join, sealing nothing (exit 7)", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol]);
    devsInvitingBob().serve(server);
    const uploads = answerUploads(server, "delivered");
    const result = await cli(["--home", home.dir, "send", "--group", "devs", "hello?"]);
    expect(result).toMatchObject({
      code: 7,
      stderr:
        "telepound: you are invited to the group devs, not a member yet: accept with `telepound group join devs`\n",
    });
    expect(uploads).toHaveLength(0);
  });
});

describe("chat", () => {
  it("joins with /join G and talks to the group, declines with /decline G", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol]);
    const club = new SignedChain("club", everyone);
    club.create(carol, ["alice"]);
    club.invite(carol, "bob");
    const clubRequests = club.serve(server);
    const devs = devsInvitingBob();
    const devsRequests = devs.serve(server);
    const uploads = answerUploads(server, "delivered");
    const io = fakeIo({}, "/join\n/join devs\nhello devs\n/decline club\n");
    const { code, stdout, stderr } = await cli(["--home", home.dir, "chat"], io);
    expect(code).toBe(0);
    expect(stderr).toBe("telepound: usage: /join G\n");
    expect(stdout).toContain("you joined group devs: admin alice, epoch 3\n");
    expect(stdout).toContain("you declined the invitation to club\n");
    expect(devsRequests).toContain("POST /v1/groups/devs/join");
    expect(clubRequests).toContain("POST /v1/groups/club/decline");
    expect(uploads.map((upload) => [upload.header.target, upload.header.epoch])).toEqual([["devs", 3]]);
    expect(uploads[0]!.slots.map((slot) => slot.recipient)).toEqual(["alice", "bob", "carol"]);
    expect(club.head.statement).toMatchObject({ action: "decline", by: "bob" });
  });
});
