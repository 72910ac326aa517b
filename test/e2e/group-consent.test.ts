// End to end: group consent from the real CLI against `wrangler dev`, through the malicious-server proxy
// (honest unless a test plays otherwise). A stranger's create or add is an invitation: the invitee sees it
// (inbox, listen, group list), is no member and gets none of the group's messages until `group join`, and
// `group decline` ends it; after writing to the admin, an add takes effect at once. An attacker cannot
// pile more than 20 invitations on a victim nor put them in a group, and a server that forges a join (an
// event, or a member list) is refused: nothing is ever sealed for someone who did not sign their join.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeUpload, membersDigest } from "../../protocol/envelope.js";
import {
  type GroupStatement,
  STATEMENT_VERSION,
  decodeStatement,
  encodeStatement,
  statementHash,
} from "../../protocol/group-statement.js";
import type { GroupInfo } from "../../protocol/http.js";
import { CliProcess, type CliUser, cliOk, jsonLines, newHome, runCli } from "../support/cli.js";
import { forgedEventFrame } from "../support/forged-event.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import {
  type MaliciousServer,
  type ProxiedSocket,
  jsonResponse,
  startMaliciousServer,
} from "../support/malicious-server.js";

/** The cap on one user's pending invitations (wrangler.toml MAX_PENDING_INVITATIONS_PER_USER). */
const PENDING_CAP = 20;

let server: LocalServer;
let proxy: MaliciousServer;
const users = new Map<string, CliUser>();

function who(name: string): CliUser {
  const found = users.get(name);
  if (!found) throw new Error(`no test user ${name}`);
  return found;
}

const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"));
const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

/** The real server's answer for `path`, asked as `user` (their session token from their home). */
async function upstream<T>(user: CliUser, path: string): Promise<T> {
  const session = JSON.parse(readFileSync(join(user.home, "session.json"), "utf8")) as { token: string };
  const response = await fetch(`${server.url}${path}`, {
    headers: { authorization: `Bearer ${session.token}` },
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** Every upload sent on sockets opened since `since`, decoded. */
function uploadsSince(since: number) {
  return proxy.sockets
    .slice(since)
    .flatMap((socket: ProxiedSocket) => socket.fromClient)
    .filter((frame): frame is Uint8Array => typeof frame !== "string")
    .map((frame) => decodeUpload(frame));
}

function recipientsSince(since: number): string[][] {
  return uploadsSince(since).map((upload) => upload.slots.map((slot) => slot.recipient));
}

/** A forged event frame for `signed`: a "joined" event unless the fields say otherwise. */
function eventFrame(
  signed: { statement: string; signature: string },
  fields: Record<string, unknown>,
): string {
  return forgedEventFrame(signed, { event: "joined", ...fields });
}

function groupsFileOf(user: CliUser): { groups: Array<{ name: string; epochs: Array<{ epoch: number }> }> } {
  return JSON.parse(readFileSync(join(user.home, "groups.json"), "utf8"));
}

function headEpochOf(user: CliUser, group: string): number {
  const entry = groupsFileOf(user).groups.find((candidate) => candidate.name === group);
  return Math.max(...(entry?.epochs.map((epoch) => epoch.epoch) ?? [0]));
}

beforeAll(async () => {
  // The creates are many in the attack below: the invitation cap, not the create rate, is what it meets.
  server = await startLocalServer({ vars: { GROUP_CREATES_PER_USER_PER_HOUR: "100" } });
  proxy = await startMaliciousServer(server.url);
  for (const name of ["alice", "bob", "carol", "dave", "mallory", "victim"]) {
    const user = { home: newHome(name), server: proxy.url, password: `pw-${name}-${Math.random()}` };
    users.set(name, user);
    await cliOk(user, ["signup", name]);
  }
}, 180_000);

afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
});

describe("a stranger's create or add", () => {
  it("is an invitation: bob sees it, is no member and gets nothing until he joins, then gets the next message", async () => {
    proxy.play({});
    const [alice, bob] = [who("alice"), who("bob")];
    const created = JSON.parse(await cliOk(alice, ["--json", "group", "create", "team", "bob"]));
    expect(created).toMatchObject({
      name: "team",
      admin: "alice",
      members: ["alice"],
      invited: ["bob"],
      added: [],
    });

    const inbox = await cliOk(bob, ["inbox"]);
    expect(inbox).toContain(
      "alice invited you to team: `telepound group join team` or `telepound group decline team`",
    );
    const listed = JSON.parse(await cliOk(bob, ["--json", "group", "list"]));
    expect(listed).toEqual({
      groups: [],
      invitations: [{ group: "team", by: "alice", at: expect.any(String) }],
    });
    expect(JSON.parse(await cliOk(bob, ["--json", "group", "info", "team"]))).toMatchObject({
      members: ["alice"],
      invited: ["bob"],
    });
    // Not a member: bob cannot send, and alice's message is sealed for alice alone.
    const bobSends = await runCli(bob, ["send", "--group", "team", "may I?"]);
    expect(bobSends.code).toBe(7);
    expect(bobSends.stderr).toContain("accept with `telepound group join team`");
    let since = proxy.sockets.length;
    await cliOk(alice, ["send", "--group", "team", "before bob joined"]);
    expect(recipientsSince(since)).toEqual([["alice"]]);
    expect(
      jsonLines(await cliOk(bob, ["inbox", "--json"])).some((line) => line.text === "before bob joined"),
    ).toBe(false);

    const joined = JSON.parse(await cliOk(bob, ["--json", "group", "join", "team"]));
    expect(joined).toMatchObject({ change: "joined", members: ["alice", "bob"], invited: [] });
    expect(JSON.parse(await cliOk(bob, ["--json", "group", "list"]))).toEqual({
      groups: ["team"],
      invitations: [],
    });
    // Alice is told (signed by bob), then her message reaches bob.
    expect(await cliOk(alice, ["inbox"])).toMatch(
      /group team: bob joined \(members: alice, bob\) \[signed by bob\]/,
    );
    since = proxy.sockets.length;
    await cliOk(alice, ["send", "--group", "team", "after bob joined"]);
    expect(recipientsSince(since)).toEqual([["alice", "bob"]]);
    const received = jsonLines(await cliOk(bob, ["inbox", "--json"])).filter(
      (line) => line.text !== undefined,
    );
    expect(received).toEqual([
      expect.objectContaining({ from: "alice", group: "team", text: "after bob joined" }),
    ]);
  });

  it("is gone from the list once declined", async () => {
    proxy.play({});
    const [dave, bob] = [who("dave"), who("bob")];
    await cliOk(dave, ["group", "create", "club", "bob"]);
    expect(JSON.parse(await cliOk(bob, ["--json", "group", "list"])).invitations).toContainEqual(
      expect.objectContaining({ group: "club", by: "dave" }),
    );
    expect(JSON.parse(await cliOk(bob, ["--json", "group", "decline", "club"]))).toEqual({
      group: "club",
      declined: true,
    });
    const listed = JSON.parse(await cliOk(bob, ["--json", "group", "list"]));
    expect(listed.invitations.map((invitation: { group: string }) => invitation.group)).not.toContain("club");
    expect(JSON.parse(await cliOk(dave, ["--json", "group", "info", "club"]))).toMatchObject({
      members: ["dave"],
      invited: [],
    });
    expect(await cliOk(dave, ["inbox"])).toMatch(/group club: bob declined the invitation/);
  });

  it("takes effect at once after bob has written to the admin; before, it invites and a remove withdraws it", async () => {
    proxy.play({});
    const [carol, bob] = [who("carol"), who("bob")];
    await cliOk(carol, ["group", "create", "crew"]);
    const invited = await cliOk(carol, ["group", "add", "crew", "bob"]);
    expect(invited).toMatch(/^invited bob to crew: they must accept with `telepound group join crew`\n/);
    const withdrawn = JSON.parse(await cliOk(carol, ["--json", "group", "remove", "crew", "bob"]));
    expect(withdrawn).toMatchObject({ change: "uninvited", user: "bob", invited: [] });

    await cliOk(bob, ["send", "carol", "hi carol"]);
    const added = JSON.parse(await cliOk(carol, ["--json", "group", "add", "crew", "bob"]));
    expect(added).toMatchObject({ change: "added", user: "bob", members: ["carol", "bob"], invited: [] });
    const bobSees = jsonLines(await cliOk(bob, ["inbox", "--json"]));
    expect(bobSees.filter((line) => line.group === "crew").map((line) => line.event)).toEqual([
      "invited",
      "uninvited",
      "added",
    ]);
    expect(JSON.parse(await cliOk(bob, ["--json", "group", "list"])).groups).toContain("crew");
  });

  it("shows in listen as it happens", async () => {
    proxy.play({});
    const [dave, bob] = [who("dave"), who("bob")];
    await cliOk(dave, ["group", "create", "den"]);
    const listener = new CliProcess(bob, ["listen"]);
    try {
      await cliOk(dave, ["group", "add", "den", "bob"]);
      await listener.waitForOutput((out) =>
        out.includes("dave invited you to den: `telepound group join den` or `telepound group decline den`"),
      );
    } finally {
      listener.child.kill("SIGINT");
      await listener.exited;
    }
  });
});

describe("an attacker inviting a victim", () => {
  it("leaves the victim at most 20 pending invitations and in no group, however many groups invite them", async () => {
    proxy.play({});
    const [mallory, victim] = [who("mallory"), who("victim")];
    const results = [];
    for (let i = 0; i < PENDING_CAP + 5; i++)
      results.push(await runCli(mallory, ["group", "create", `spam${i}`, "victim"]));
    const refused = results.filter((result) => result.code !== 0);
    expect(results.filter((result) => result.code === 0)).toHaveLength(PENDING_CAP);
    expect(refused).toHaveLength(5);
    for (const result of refused) {
      expect(result.code).toBe(7);
      expect(result.stderr).toMatch(/20 pending invitations/);
    }
    const listed = JSON.parse(await cliOk(victim, ["--json", "group", "list"]));
    expect(listed.groups).toEqual([]);
    expect(listed.invitations.length).toBeLessThanOrEqual(PENDING_CAP);
    expect(new Set(listed.invitations.map((invitation: { by: string }) => invitation.by))).toEqual(
      new Set(["mallory"]),
    );
    // The attacker's messages to those groups reach nobody but the attacker.
    const since = proxy.sockets.length;
    await cliOk(mallory, ["send", "--group", "spam0", "buy now"]);
    expect(recipientsSince(since)).toEqual([["mallory"]]);
    const inbox = jsonLines(await cliOk(victim, ["inbox", "--json"]));
    expect(inbox.some((line) => line.text !== undefined)).toBe(false);
  }, 180_000);
});

describe("a malicious server and consent", () => {
  /** vault: dave admin, carol a member (she wrote to dave first), bob invited. */
  async function vault(): Promise<{ info: GroupInfo; hash: Uint8Array; statement: GroupStatement }> {
    const [dave, carol] = [who("dave"), who("carol")];
    await cliOk(carol, ["send", "dave", "count me in"]);
    const created = JSON.parse(await cliOk(dave, ["--json", "group", "create", "vault", "carol", "bob"]));
    expect([...created.members].sort()).toEqual(["carol", "dave"]);
    expect(created.invited).toEqual(["bob"]);
    await cliOk(carol, ["inbox"]);
    const info = await upstream<GroupInfo>(carol, "/v1/groups/vault");
    const bytes = fromBase64(info.statement);
    return {
      info,
      hash: statementHash(bytes, fromBase64(info.signature)),
      statement: decodeStatement(bytes),
    };
  }

  it("cannot make bob a member without his signed join: forged events and member lists are refused, nothing sealed for him", async () => {
    proxy.play({});
    const carol = who("carol");
    const head = await vault();
    expect(headEpochOf(carol, "vault")).toBe(head.info.epoch);

    // 1. "joined" events: the create again with bob listed as a member, and a join in bob's name that
    // bob never signed.
    const join: GroupStatement = {
      ...head.statement,
      version: STATEMENT_VERSION,
      action: "join",
      epoch: head.info.epoch + 1,
      prev: head.hash,
      at: Date.now(),
      by: "bob",
      user: "bob",
      admin: "dave",
      membersDigest: membersDigest(["bob", "carol", "dave"]),
      invitedDigest: membersDigest([]),
    };
    const unsigned = {
      statement: base64(encodeStatement(join)),
      signature: base64(crypto.getRandomValues(new Uint8Array(64))),
    };
    const events = [
      eventFrame(
        { statement: head.info.statement, signature: head.info.signature },
        { event: "joined", user: "bob", members: ["bob", "carol", "dave"], invited: [] },
      ),
      eventFrame(unsigned, { members: ["bob", "carol", "dave"] }),
    ];
    proxy.play({
      toClient: (frame) =>
        typeof frame === "string" && frame.includes('"welcome"') ? [frame, ...events] : [frame],
    });
    const inbox = await runCli(carol, ["inbox", "--json"]);
    expect(inbox.code).toBe(0);
    expect(jsonLines(inbox.stdout).filter((line) => line.event !== undefined)).toEqual([]);
    expect(inbox.stderr).toMatch(
      /ignored a membership event for the group vault: the member list given does not match/,
    );
    expect(inbox.stderr).toMatch(
      /ignored a membership event for the group vault: the signature is not bob's/,
    );
    expect(headEpochOf(carol, "vault")).toBe(head.info.epoch);

    // 2. A GroupInfo with bob moved from the invited to the members, met by a send after stale_epoch.
    proxy.play({
      toServer: (frame, socket) => {
        if (typeof frame === "string") return [frame];
        const { messageIdHex } = decodeUpload(frame);
        socket.toClient(
          JSON.stringify({
            type: "error",
            code: "stale_epoch",
            message: "the group moved on",
            id: messageIdHex,
          }),
        );
        return [];
      },
      http: async (request, forward) => {
        if (request.path !== "/v1/groups/vault") return forward();
        const info = (await (await forward()).json()) as GroupInfo;
        return jsonResponse(200, {
          ...info,
          members: [...info.members, { username: "bob", joinedAt: Date.now() }],
          invited: [],
        });
      },
    });
    let since = proxy.sockets.length;
    const lied = await runCli(carol, ["send", "--group", "vault", "members only"]);
    expect(lied.code).toBe(8);
    expect(lied.stderr).toMatch(/does not verify/);
    expect(recipientsSince(since).length).toBeGreaterThan(0);
    expect(recipientsSince(since).flat()).not.toContain("bob");

    // Honest again: sealed for the members the signed chain proves, bob not among them.
    proxy.play({});
    since = proxy.sockets.length;
    await cliOk(carol, ["send", "--group", "vault", "still members only"]);
    expect(recipientsSince(since)).toEqual([["carol", "dave"]]);
    expect(
      jsonLines(await cliOk(who("bob"), ["inbox", "--json"])).some(
        (line) => line.group === "vault" && line.text !== undefined,
      ),
    ).toBe(false);
  });
});
