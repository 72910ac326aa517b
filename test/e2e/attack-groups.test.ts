// Attacks on group membership by a malicious server: the real CLI, through the malicious-server proxy,
// against `wrangler dev`. The proxy adds a ghost, drops a member, replays an old statement, shows a fork,
// skips an epoch and passes off a non-admin's statement; each must fail, with nothing sealed for the ghost.

import { createPrivateKey, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromHex } from "../../protocol/bytes.js";
import { decodeUpload, membersDigest } from "../../protocol/envelope.js";
import {
  type GroupStatement,
  decodeStatement,
  encodeStatement,
  statementHash,
  statementSigningInput,
} from "../../protocol/group-statement.js";
import type { GroupInfo } from "../../protocol/http.js";
import { type CliUser, cliOk, jsonLines, newHome, runCli } from "../support/cli.js";
import { forgedEventFrame } from "../support/forged-event.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import {
  type MaliciousServer,
  type ProxiedSocket,
  jsonResponse,
  startMaliciousServer,
} from "../support/malicious-server.js";

let server: LocalServer;
let proxy: MaliciousServer;
let alice: CliUser;
let bob: CliUser;
let carol: CliUser;
let dave: CliUser;
let ghost: CliUser;

function user(label: string): CliUser {
  return { home: newHome(label), server: "", password: `pw-${label}-${Math.random().toString(36).slice(2)}` };
}

/** The real server's answer for `path`, asked as `who` (their session token from their home). */
async function upstream<T>(who: CliUser, path: string): Promise<T> {
  const session = JSON.parse(readFileSync(join(who.home, "session.json"), "utf8")) as { token: string };
  const response = await fetch(`${server.url}${path}`, {
    headers: { authorization: `Bearer ${session.token}` },
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"));
const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

/** Signs `statement` with the real signing key in `signer`'s home: a statement that verifies. */
function signedBy(signer: CliUser, statement: GroupStatement): { statement: string; signature: string } {
  const identity = JSON.parse(readFileSync(join(signer.home, "identity.json"), "utf8")) as {
    keys: { signingPrivate: string };
  };
  const key = createPrivateKey({
    key: Buffer.from(identity.keys.signingPrivate, "base64"),
    format: "der",
    type: "pkcs8",
  });
  const bytes = encodeStatement(statement);
  return { statement: base64(bytes), signature: base64(sign(null, statementSigningInput(bytes), key)) };
}

/** The group's real head, as a member sees it, with the hash the next statement's prev must be. */
async function head(
  member: CliUser,
  group: string,
): Promise<{ info: GroupInfo; hash: Uint8Array; statement: GroupStatement }> {
  const info = await upstream<GroupInfo>(member, `/v1/groups/${group}`);
  const bytes = fromBase64(info.statement);
  return { info, hash: statementHash(bytes, fromBase64(info.signature)), statement: decodeStatement(bytes) };
}

/** A forged event frame for `signed`: a "added" event unless the fields say otherwise. */
function eventFrame(
  signed: { statement: string; signature: string },
  fields: Record<string, unknown>,
): string {
  return forgedEventFrame(signed, { event: "added", ...fields });
}

/** Injects `frames` right after the server's welcome on every socket (so inbox processes them). */
function injectAfterWelcome(frames: string[]): void {
  proxy.play({
    toClient: (frame) =>
      typeof frame === "string" && frame.includes('"welcome"') ? [frame, ...frames] : [frame],
  });
}

/** Every upload the client sent on sockets opened after `since`, decoded. */
function uploadsSince(since: number) {
  return proxy.sockets
    .slice(since)
    .flatMap((socket: ProxiedSocket) => socket.fromClient)
    .filter((frame): frame is Uint8Array => typeof frame !== "string")
    .map((frame) => decodeUpload(frame));
}

/** Answers every upload with stale_epoch (the upload never reaches the server), so the client catches up. */
function staleEpochThen(http: (path: string, forward: () => Promise<Response>) => Promise<Response>): void {
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
    http: (request, forward) => http(request.path, () => forward()),
  });
}

async function groupsFile(
  who: CliUser,
): Promise<{ groups: Array<{ name: string; epochs: Array<{ epoch: number }>; forks: unknown[] }> }> {
  return JSON.parse(readFileSync(join(who.home, "groups.json"), "utf8"));
}

async function headEpochOf(who: CliUser, group: string): Promise<number> {
  const entry = (await groupsFile(who)).groups.find((g) => g.name === group);
  return Math.max(...(entry?.epochs.map((e) => e.epoch) ?? [0]));
}

beforeAll(async () => {
  server = await startLocalServer();
  proxy = await startMaliciousServer(server.url);
  [alice, bob, carol, dave, ghost] = ["alice", "bob", "carol", "dave", "ghost"].map(user) as [
    CliUser,
    CliUser,
    CliUser,
    CliUser,
    CliUser,
  ];
  for (const [who, name] of [
    [alice, "alice"],
    [bob, "bob"],
    [carol, "carol"],
    [dave, "dave"],
    [ghost, "ghost"],
  ] as const) {
    who.server = proxy.url;
    await cliOk(who, ["signup", name]);
  }
  // Bob, Carol and Dave have written to Alice: her creates and adds make them members at once.
  for (const member of [bob, carol, dave]) await cliOk(member, ["send", "alice", "hello"]);
}, 180_000);

afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
});

describe("a malicious server and group membership", () => {
  it("cannot add a ghost: a stale_epoch then a GroupInfo with ghost (unsigned, or a forged statement) is refused, nothing sealed for ghost", async () => {
    proxy.play({});
    await cliOk(alice, ["group", "create", "ghosted", "bob"]);
    await cliOk(bob, ["inbox"]);
    const real = await head(bob, "ghosted");

    // 1. The real statement, with ghost slipped into the member list.
    staleEpochThen(async (path, forward) => {
      if (path !== "/v1/groups/ghosted") return forward();
      const info = (await (await forward()).json()) as GroupInfo;
      return jsonResponse(200, {
        ...info,
        members: [...info.members, { username: "ghost", joinedAt: Date.now() }],
      });
    });
    let since = proxy.sockets.length;
    const listed = await runCli(bob, ["send", "--group", "ghosted", "for members only"]);
    expect(listed.code).toBe(8);
    expect(listed.stderr).toMatch(/does not verify/);
    let uploads = uploadsSince(since);
    expect(uploads.length).toBeGreaterThan(0);
    for (const upload of uploads)
      expect(upload.slots.map((slot) => slot.recipient)).toEqual(["alice", "bob"]);

    // 2. A whole new head: an "add ghost" statement in alice's name, with a signature that is not hers.
    const forged: GroupStatement = {
      ...real.statement,
      action: "add",
      epoch: real.info.epoch + 1,
      prev: real.hash,
      at: Date.now(),
      user: "ghost",
      membersDigest: membersDigest(["alice", "bob", "ghost"]),
    };
    staleEpochThen(async (path, forward) => {
      if (path !== "/v1/groups/ghosted") return forward();
      return jsonResponse(200, {
        ...real.info,
        epoch: forged.epoch,
        members: [...real.info.members, { username: "ghost", joinedAt: Date.now() }],
        statement: base64(encodeStatement(forged)),
        signature: base64(crypto.getRandomValues(new Uint8Array(64))),
      });
    });
    since = proxy.sockets.length;
    const invented = await runCli(bob, ["send", "--group", "ghosted", "still members only"]);
    expect(invented.code).toBe(8);
    expect(invented.stderr).toMatch(/signature is not alice's/);
    uploads = uploadsSince(since);
    expect(uploads.length).toBeGreaterThan(0);
    expect(uploads.flatMap((upload) => upload.slots.map((slot) => slot.recipient))).not.toContain("ghost");
    expect(await headEpochOf(bob, "ghosted")).toBe(1);
  });

  it("cannot drop a member: a member list without carol does not match the signed digest", async () => {
    proxy.play({});
    await cliOk(alice, ["group", "create", "dropped", "bob", "carol", "dave"]);
    proxy.play({
      http: async (request, forward) => {
        if (request.path !== "/v1/groups/dropped") return forward();
        const info = (await (await forward()).json()) as GroupInfo;
        return jsonResponse(200, { ...info, members: info.members.filter((m) => m.username !== "carol") });
      },
    });
    // Dave never saw the group: the server's word is all he has, and it does not verify.
    const since = proxy.sockets.length;
    const result = await runCli(dave, ["send", "--group", "dropped", "to all four"]);
    expect(result.code).toBe(8);
    expect(result.stderr).toMatch(/members digest does not match/);
    expect(uploadsSince(since)).toEqual([]);
    proxy.play({});
    // Honest again: the real membership verifies (and, never shown, stops the first send to show it).
    expect((await runCli(dave, ["send", "--group", "dropped", "to all four"])).code).toBe(10);
    await cliOk(dave, ["send", "--group", "dropped", "to all four"]);
    const sealed = uploadsSince(since);
    expect(sealed.at(-1)!.slots.map((slot) => slot.recipient)).toEqual(["alice", "bob", "carol", "dave"]);
  });

  it("cannot replay an old statement as an event: it is ignored, and no change is adopted", async () => {
    proxy.play({});
    await cliOk(alice, ["group", "create", "replayed", "bob"]);
    const created = await upstream<{ statement: string; signature: string }>(
      bob,
      "/v1/groups/replayed/epochs/1",
    );
    await cliOk(alice, ["group", "add", "replayed", "carol"]);
    await cliOk(bob, ["inbox"]);
    expect(await headEpochOf(bob, "replayed")).toBe(2);
    // The creation again: as it was, and with its summary and member list claiming ghost was added.
    injectAfterWelcome([
      eventFrame(created, { event: "created", members: ["alice", "bob"] }),
      eventFrame(created, { event: "added", user: "ghost", members: ["alice", "bob", "ghost"] }),
    ]);
    const inbox = await runCli(bob, ["inbox", "--json"]);
    expect(inbox.code).toBe(0);
    expect(jsonLines(inbox.stdout).filter((line) => line.event !== undefined)).toEqual([]);
    // The faithful replay is ignored without a word; the doctored one is refused with one.
    expect(inbox.stderr.match(/ignored a membership event for the group replayed/g)).toHaveLength(1);
    expect(inbox.stderr).toMatch(/member list given does not match the signed members digest/);
    expect(inbox.stderr).not.toMatch(/FORK/);
    expect(await headEpochOf(bob, "replayed")).toBe(2);
  });

  it("cannot fork a group unnoticed: a second valid statement for a known epoch is detected, shown, and the group refused", async () => {
    proxy.play({});
    await cliOk(alice, ["group", "create", "forked", "bob"]);
    const real = await head(bob, "forked");
    await cliOk(alice, ["group", "add", "forked", "carol"]);
    await cliOk(bob, ["inbox"]);
    // Another epoch 2, properly signed with alice's key: what a server showing two histories would hold.
    const other = signedBy(alice, {
      ...real.statement,
      action: "add",
      epoch: 2,
      prev: real.hash,
      at: Date.now(),
      user: "ghost",
      membersDigest: membersDigest(["alice", "bob", "ghost"]),
    });
    injectAfterWelcome([eventFrame(other, { members: ["alice", "bob", "ghost"] })]);
    const inbox = await runCli(bob, ["inbox"]);
    expect(inbox.stderr).toMatch(
      /GROUP FORK in forked at epoch 2: the server showed two different histories/,
    );
    expect(inbox.stdout).not.toMatch(/ghost/);
    expect((await groupsFile(bob)).groups.find((g) => g.name === "forked")?.forks).toHaveLength(1);
    proxy.play({});
    const since = proxy.sockets.length;
    const send = await runCli(bob, ["send", "--group", "forked", "hello?"]);
    expect(send.code).toBe(8);
    expect(send.stderr).toMatch(/GROUP FORK in forked/);
    expect(uploadsSince(since)).toEqual([]);
  });

  it("cannot skip an epoch: a statement two epochs ahead, with the one between withheld, is refused", async () => {
    proxy.play({});
    await cliOk(alice, ["group", "create", "skipped", "bob"]);
    await cliOk(bob, ["inbox"]);
    const real = await head(bob, "skipped");
    const ahead = signedBy(alice, {
      ...real.statement,
      action: "add",
      epoch: 3,
      prev: fromHex("ab".repeat(32)),
      at: Date.now(),
      user: "ghost",
      membersDigest: membersDigest(["alice", "bob", "ghost"]),
    });
    proxy.play({
      toClient: (frame) =>
        typeof frame === "string" && frame.includes('"welcome"')
          ? [frame, eventFrame(ahead, { members: ["alice", "bob", "ghost"] })]
          : [frame],
      http: async (request, forward) =>
        request.path === "/v1/groups/skipped/epochs/2"
          ? jsonResponse(404, { error: { code: "not_found", message: "no epoch 2" } })
          : forward(),
    });
    const inbox = await runCli(bob, ["inbox", "--json"]);
    expect(inbox.stderr).toMatch(/ignored a membership event for the group skipped: epoch 2 is missing/);
    expect(jsonLines(inbox.stdout).filter((line) => line.event !== undefined)).toEqual([]);
    expect(await headEpochOf(bob, "skipped")).toBe(1);
  });

  it("cannot pass off a non-admin's statement: carol's signed add of ghost is refused", async () => {
    proxy.play({});
    await cliOk(alice, ["group", "create", "nonadmin", "bob", "carol"]);
    await cliOk(bob, ["inbox"]);
    const real = await head(bob, "nonadmin");
    const carolAdds = signedBy(carol, {
      ...real.statement,
      action: "add",
      epoch: 2,
      prev: real.hash,
      at: Date.now(),
      by: "carol",
      user: "ghost",
      membersDigest: membersDigest(["alice", "bob", "carol", "ghost"]),
    });
    injectAfterWelcome([eventFrame(carolAdds, { members: ["alice", "bob", "carol", "ghost"] })]);
    const inbox = await runCli(bob, ["inbox", "--json"]);
    expect(inbox.stderr).toMatch(
      /ignored a membership event for the group nonadmin: .*only the admin \(alice\) may add/,
    );
    expect(jsonLines(inbox.stdout).filter((line) => line.event !== undefined)).toEqual([]);
    // The same statement as the server's head after a stale_epoch: the send refuses, nothing for ghost.
    staleEpochThen(async (path, forward) =>
      path === "/v1/groups/nonadmin"
        ? jsonResponse(200, {
            ...real.info,
            epoch: 2,
            members: [...real.info.members, { username: "ghost", joinedAt: Date.now() }],
            ...carolAdds,
          })
        : forward(),
    );
    const since = proxy.sockets.length;
    const send = await runCli(bob, ["send", "--group", "nonadmin", "members only"]);
    expect(send.code).toBe(8);
    expect(send.stderr).toMatch(/only the admin \(alice\) may add/);
    expect(uploadsSince(since).flatMap((upload) => upload.slots.map((slot) => slot.recipient))).not.toContain(
      "ghost",
    );
    expect(await headEpochOf(bob, "nonadmin")).toBe(1);
  });
});

describe("honest membership changes", () => {
  it("are shown with who signed them, and a send that meets one not shown yet exits 10 before sealing", async () => {
    proxy.play({});
    await cliOk(alice, ["group", "create", "honest", "bob"]);
    await cliOk(bob, ["inbox"]);
    await cliOk(alice, ["group", "add", "honest", "dave"]);
    // Bob has not run inbox since: his send is sealed for the old members, the server says stale_epoch,
    // the catch-up verifies alice's add, shows it, and stops.
    const since = proxy.sockets.length;
    const first = await runCli(bob, ["--json", "send", "--group", "honest", "hello"]);
    expect(first.code).toBe(10);
    expect(jsonLines(first.stdout)).toEqual([
      expect.objectContaining({ event: "added", user: "dave", by: "alice", signedBy: "alice", epoch: 2 }),
    ]);
    expect(first.stderr).toMatch(/group membership changed: review it and send again/);
    expect(uploadsSince(since).map((upload) => upload.slots.map((slot) => slot.recipient))).toEqual([
      ["alice", "bob"],
    ]);
    // Shown now: the next send goes out, sealed for the verified members.
    const second = jsonLines(await cliOk(bob, ["--json", "send", "--group", "honest", "hello"]));
    expect(second[0]).toMatchObject({ group: "honest", epoch: 2 });
    expect(
      uploadsSince(since)
        .at(-1)!
        .slots.map((slot) => slot.recipient),
    ).toEqual(["alice", "bob", "dave"]);
    // Dave's inbox shows the change that brought him in, signed by alice, and the message.
    const daveSees = jsonLines(await cliOk(dave, ["inbox", "--json"]));
    expect(daveSees).toEqual([
      expect.objectContaining({
        event: "added",
        user: "dave",
        signedBy: "alice",
        members: ["alice", "bob", "dave"],
      }),
      expect.objectContaining({ from: "bob", group: "honest", text: "hello" }),
    ]);
    const human = await runCli(alice, ["inbox"]);
    expect(human.code).toBe(0);
  });
});
