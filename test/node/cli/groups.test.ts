// Groups in the CLI against the stub server, with real keys: group messages are checked against the
// members of their epoch (learned from events or asked from the server) and rejected when they do not
// match; our own group messages never show back; a send refused for a stale epoch is sealed again for
// the new members; the group commands map the server's refusals to exit codes.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { decodeUpload, encodeDelivery, signedPartWithSignature } from "../../../protocol/envelope.js";
import type { EventFrame } from "../../../protocol/frames.js";
import type { GroupInfo } from "../../../protocol/http.js";
import {
  SenderKeyring,
  UnwrapCache,
  openEnvelope,
  readDelivery,
  sealMessage,
} from "../../../cli-client/crypto/index.js";
import { Api } from "../../../cli-client/api.js";
import { EPOCHS_KEPT, GroupDirectory } from "../../../cli-client/groups.js";
import { Home } from "../../../cli-client/home.js";
import { type TestUser, answerUploads, loggedInHome, makeUser, nextSequence, serveKeys } from "./fixtures.js";
import { type StubServer, fakeIo, sendWelcome, startStubServer, tempDir, runCaptured } from "./helpers.js";

let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let eve: TestUser;
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
});

beforeEach(async () => {
  server = await startStubServer();
  serveKeys(server, [alice, bob, carol, eve]);
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

/** `from` seals `text` to `group` at `epoch` for `sealedFor`; returns the delivery `to` gets. */
async function groupDelivery(
  from: TestUser,
  to: TestUser,
  group: string,
  epoch: number,
  sealedFor: TestUser[],
  text: string,
) {
  const sealed = await sealMessage({
    signingPrivateKey: from.identity.signing.privateKey,
    sender: from.name,
    kind: "group",
    target: group,
    epoch,
    recipients: sealedFor.map((user) => ({
      username: user.name,
      encryptionKey: user.identity.encryption.publicKey,
      fingerprint: user.fingerprint,
    })),
    payload: { text },
    counter: 1,
    ...nextSequence(from, `g:${group}`),
    keyring: new SenderKeyring(),
  });
  const envelope = decodeUpload(sealed.frame);
  const slot = envelope.slots.findIndex((s) => s.recipient === to.name);
  return {
    frame: encodeDelivery(signedPartWithSignature(envelope), envelope.slotBytes[slot]!),
    id: sealed.messageId,
  };
}

function event(group: string, epoch: number, members: string[], overrides: Partial<EventFrame> = {}) {
  return {
    type: "event",
    id: `${epoch}`.padStart(32, "e"),
    event: "added",
    group,
    by: "alice",
    user: members.at(-1)!,
    epoch,
    members: [...members].sort(),
    admin: "alice",
    at: Date.now(),
    ...overrides,
  } satisfies EventFrame;
}

/** A receiving socket that pushes `frames` (binary deliveries or JSON objects) then synced; records acks. */
function serve(frames: Array<Uint8Array | object>) {
  const acked: string[] = [];
  server.onSocket = (socket) => {
    sendWelcome(socket.ws, "alice");
    for (const frame of frames) socket.ws.send(frame instanceof Uint8Array ? frame : JSON.stringify(frame));
    socket.ws.send(JSON.stringify({ type: "synced" }));
    socket.ws.on("message", (data: Buffer, isBinary) => {
      if (!isBinary) acked.push(...((JSON.parse(data.toString()) as { ids?: string[] }).ids ?? []));
    });
  };
  return acked;
}

function groupInfo(name: string, epoch: number, members: string[], admin = "alice"): GroupInfo {
  return {
    name,
    admin,
    epoch,
    members: members.map((username, i) => ({ username, joinedAt: 1_000 + i })),
    createdAt: 1_000,
  };
}

describe("receiving group messages", () => {
  it("shows a message whose members match the epoch an event announced, with group and sender", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol]);
    const message = await groupDelivery(alice, bob, "devs", 2, [alice, bob, carol], "hello devs");
    const acked = serve([event("devs", 2, ["alice", "bob", "carol"]), message.frame]);
    const { code, stdout, stderr } = await cli(["--home", home.dir, "inbox", "--json"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(jsonLines(stdout)).toEqual([
      {
        event: "added",
        group: "devs",
        by: "alice",
        user: "carol",
        epoch: 2,
        members: ["alice", "bob", "carol"],
        admin: "alice",
      },
      {
        id: message.id,
        from: "alice",
        to: "devs",
        group: "devs",
        text: "hello devs",
        sentAt: expect.any(String),
      },
    ]);
    expect(acked).toEqual([event("devs", 2, []).id, message.id]);
    // The epoch's members were saved before the acknowledgement, for later runs.
    const saved = await home.read("groups.json");
    expect(saved?.groups).toEqual([
      { name: "devs", admin: "alice", epochs: [[2, ["alice", "bob", "carol"]]] },
    ]);
  });

  it("shows group and sender to people", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol]);
    const message = await groupDelivery(carol, bob, "devs", 2, [alice, bob, carol], "from carol");
    serve([event("devs", 2, ["alice", "bob", "carol"]), message.frame]);
    const { stdout } = await cli(["--home", home.dir, "inbox"]);
    expect(stdout).toMatch(/group devs: alice added carol \(members: alice, bob, carol\)\n/);
    expect(stdout).toMatch(/\] #devs carol: from carol\n$/);
  });

  it("rejects a message sealed for a member set the epoch does not have (a recipient smuggled in)", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol, eve]);
    // The server told bob the members are alice, bob, carol; the message was also sealed for eve.
    const message = await groupDelivery(alice, bob, "devs", 2, [alice, bob, carol, eve], "with eve");
    const acked = serve([event("devs", 2, ["alice", "bob", "carol"]), message.frame]);
    const { code, stdout, stderr } = await cli(["--home", home.dir, "inbox"]);
    expect(code).toBe(0);
    expect(stdout).not.toContain("with eve");
    expect(stderr).toMatch(
      new RegExp(
        `dropped a message from alice \\(${message.id}\\): verification failed: the members digest does not match the members of devs at epoch 2`,
      ),
    );
    expect(acked).toContain(message.id);
  });

  it("rejects a message that claims an epoch whose members differ from those it was sealed for", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol]);
    // Sealed for epoch 1's members but labelled epoch 2, where carol joined.
    const message = await groupDelivery(alice, bob, "devs", 2, [alice, bob], "old members");
    serve([
      event("devs", 1, ["alice", "bob"], { id: "1".repeat(32), event: "created", user: "alice" }),
      event("devs", 2, ["alice", "bob", "carol"]),
      message.frame,
    ]);
    const { stdout, stderr } = await cli(["--home", home.dir, "inbox"]);
    expect(stdout).not.toContain("old members");
    expect(stderr).toMatch(/members digest does not match the members of devs at epoch 2/);
  });

  it("asks the server for an epoch it has no event for, and remembers the answer", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol]);
    let asked = 0;
    server.http.set("GET /v1/groups/devs/epochs/5", (request) => {
      asked++;
      expect(request.headers.authorization).toBe("Bearer token-of-bob");
      return { status: 200, body: { name: "devs", epoch: 5, members: ["alice", "bob", "carol"] } };
    });
    const first = await groupDelivery(alice, bob, "devs", 5, [alice, bob, carol], "first");
    const second = await groupDelivery(carol, bob, "devs", 5, [alice, bob, carol], "second");
    serve([first.frame, second.frame]);
    const { stdout } = await cli(["--home", home.dir, "inbox", "--json"]);
    expect(jsonLines(stdout).map((line) => line.text)).toEqual(["first", "second"]);
    expect(asked).toBe(1);
    // A later run knows the epoch without asking.
    serve([(await groupDelivery(alice, bob, "devs", 5, [alice, bob, carol], "third")).frame]);
    expect(jsonLines((await cli(["--home", home.dir, "inbox", "--json"])).stdout)[0]?.text).toBe("third");
    expect(asked).toBe(1);
  });

  it("rejects a message of an epoch the server says we were not part of (403)", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol]);
    server.http.set("GET /v1/groups/devs/epochs/3", () => ({
      status: 403,
      body: { error: { code: "forbidden", message: "you were not a member at epoch 3" } },
    }));
    const message = await groupDelivery(alice, bob, "devs", 3, [alice, bob, carol], "not for you");
    const acked = serve([message.frame]);
    const { code, stdout, stderr } = await cli(["--home", home.dir, "inbox"]);
    expect(code).toBe(0);
    expect(stdout).toBe("no new messages\n");
    expect(stderr).toMatch(/you were not a member of the group devs at epoch 3/);
    expect(acked).toEqual([message.id]);
  });

  it("rejects a message from a sender the epoch's members do not include", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, eve]);
    // Eve seals for a list that includes herself, but the epoch bob knows does not.
    const message = await groupDelivery(eve, bob, "devs", 1, [alice, bob, eve], "let me in");
    serve([event("devs", 1, ["alice", "bob"], { event: "created", user: "alice" }), message.frame]);
    const { stdout, stderr } = await cli(["--home", home.dir, "inbox"]);
    expect(stdout).not.toContain("let me in");
    expect(stderr).toMatch(/dropped a message from eve/);
  });

  it("does not show our own group message handed back, even when another process sent it", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const own = await groupDelivery(alice, alice, "devs", 1, [alice, bob], "mine");
    const acked: string[] = [];
    server.onSocket = (socket) => {
      // By now inbox has loaded seen.json; `send --group` in another process records its id only now.
      void home
        .withLock(() => home.write("seen.json", { owner: "alice", ids: [[`alice/${own.id}`, Date.now()]] }))
        .then(() => {
          sendWelcome(socket.ws, "alice");
          socket.ws.send(
            JSON.stringify(event("devs", 1, ["alice", "bob"], { event: "created", user: "alice" })),
          );
          socket.ws.send(own.frame);
          socket.ws.send(JSON.stringify({ type: "synced" }));
        });
      socket.ws.on("message", (data: Buffer) => acked.push(...(JSON.parse(data.toString()).ids ?? [])));
    };
    const { code, stdout } = await cli(["--home", home.dir, "inbox", "--json"]);
    expect(code).toBe(0);
    expect(stdout).not.toContain("mine");
    expect(jsonLines(stdout)).toHaveLength(1);
    expect(acked).toContain(own.id);
  });

  it("shows our own group message sent from another device (not recorded here)", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const own = await groupDelivery(alice, alice, "devs", 1, [alice, bob], "from my laptop");
    serve([event("devs", 1, ["alice", "bob"], { event: "created", user: "alice" }), own.frame]);
    const { stdout } = await cli(["--home", home.dir, "inbox"]);
    expect(stdout).toMatch(/#devs alice: from my laptop/);
  });
});

describe("sending to a group", () => {
  /** Answers uploads from `answers` in turn (a function of the upload's message id), the last one after. */
  function answerInTurn(answers: Array<(id: string) => object>) {
    return answerUploads(server, (id, index) => (answers[index] ?? answers.at(-1)!)(id));
  }

  const stale = (id: string) => ({
    type: "error",
    code: "stale_epoch",
    message: "sealed for an old epoch",
    id,
  });
  const sent = (id: string) => ({ type: "sent", id, status: "delivered" });

  it("seals for every member including itself, which each can open", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    server.http.set("GET /v1/groups/devs", () => ({
      status: 200,
      body: groupInfo("devs", 1, ["alice", "bob"]),
    }));
    const uploads = answerInTurn([sent]);
    const { code, stdout } = await cli([
      "--home",
      home.dir,
      "send",
      "--group",
      "devs",
      "hi",
      "all",
      "--json",
    ]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ to: "devs", group: "devs", epoch: 1, status: "delivered" });
    const [upload] = uploads;
    expect(upload!.header).toMatchObject({ kind: "group", target: "devs", epoch: 1, sender: "alice" });
    expect(upload!.slots.map((slot) => slot.recipient)).toEqual(["alice", "bob"]);
    for (const user of [alice, bob]) {
      const i = upload!.slots.findIndex((slot) => slot.recipient === user.name);
      const opened = await openEnvelope(
        readDelivery(encodeDelivery(signedPartWithSignature(upload!), upload!.slotBytes[i]!)),
        {
          me: user.name,
          encryptionPrivateKey: user.identity.encryption.privateKey,
          senderSigningKey: alice.identity.signing.publicKey,
          unwrapCache: new UnwrapCache(),
          expectedMembers: ["alice", "bob"],
          expectedEpoch: 1,
        },
      );
      expect(opened.payload.text).toBe("hi all");
    }
    // Recorded as seen before it went out, so the copy coming back is not shown.
    const seen = await home.read("seen.json");
    expect(seen?.ids.map(([id]) => id)).toEqual([`alice/${upload!.messageIdHex}`]);
  });

  it("on stale_epoch fetches the group again and seals anew (new id, new members), checking each member's keys once", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    // What this device knew: epoch 1. The group is at epoch 2 by now, with carol.
    const groups = await GroupDirectory.load(home, "alice", new Api(server.url));
    groups.learn("devs", 1, ["alice", "bob"], "alice");
    await groups.save();
    let infoAsked = 0;
    server.http.set("GET /v1/groups/devs", () => {
      infoAsked++;
      return { status: 200, body: groupInfo("devs", 2, ["alice", "bob", "carol"]) };
    });
    const lookups: unknown[] = [];
    server.http.set("POST /v1/users/lookup", (_request, body) => {
      const { usernames } = JSON.parse(body) as { usernames: string[] };
      lookups.push({ usernames });
      const users = [bob, carol].filter((user) => usernames.includes(user.name));
      return {
        status: 200,
        body: {
          users: users.map((user) => ({ username: user.name, publicKeys: user.publicKeys })),
          missing: [],
        },
      };
    });
    const uploads = answerInTurn([stale, sent]);
    const { code, stdout, stderr } = await cli([
      "--home",
      home.dir,
      "send",
      "--group",
      "devs",
      "again",
      "--json",
    ]);
    expect(code).toBe(0);
    expect(uploads).toHaveLength(2);
    const [first, second] = uploads;
    expect(first!.header.epoch).toBe(1);
    expect(first!.slots.map((slot) => slot.recipient)).toEqual(["alice", "bob"]);
    expect(second!.header.epoch).toBe(2);
    expect(second!.slots.map((slot) => slot.recipient)).toEqual(["alice", "bob", "carol"]);
    expect(second!.messageIdHex).not.toBe(first!.messageIdHex);
    expect(second!.header.counter).toBe(first!.header.counter + 1);
    expect(JSON.parse(stdout)).toMatchObject({ id: second!.messageIdHex, epoch: 2 });
    expect(infoAsked).toBe(1);
    // bob's pinned keys are checked with the server before the first seal; carol, new, is pinned before the
    // second; bob is not asked about again.
    expect(lookups).toEqual([{ usernames: ["bob"] }, { usernames: ["carol"] }]);
    expect(stderr).toMatch(/first contact with carol: pinned/);
    expect((await home.read("contacts.json"))?.contacts.get("carol")?.fingerprint).toBe(carol.fingerprint);
    expect((await home.read("groups.json"))?.groups[0]?.epochs.map(([epoch]) => epoch)).toEqual([1, 2]);
    // Sealed again under the same sequence: the refused copy was never delivered, so no member sees a gap.
    expect((await home.read("state.json"))?.sequences).toEqual([["g:devs", 1]]);
  });

  it("gives up with exit 7 when the group keeps changing", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    server.http.set("GET /v1/groups/devs", () => ({
      status: 200,
      body: groupInfo("devs", 1, ["alice", "bob"]),
    }));
    const uploads = answerInTurn([stale]);
    const { code, stderr } = await cli(["--home", home.dir, "send", "--group", "devs", "never"]);
    expect(code).toBe(7);
    expect(uploads).toHaveLength(4);
    expect(new Set(uploads.map((upload) => upload.messageIdHex)).size).toBe(4);
    expect(stderr.trim().split("\n")).toHaveLength(1);
  });

  it("refuses with exit 7 when not a member, 4 when there is no such group, before connecting", async () => {
    server.onSocket = () => {
      throw new Error("must not connect");
    };
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    server.http.set("GET /v1/groups/theirs", () => ({
      status: 403,
      body: { error: { code: "forbidden", message: "you are not a member of this group" } },
    }));
    const notMember = await cli(["--home", home.dir, "send", "--group", "theirs", "hi"]);
    expect(notMember.code).toBe(7);
    expect(notMember.stderr).toBe("telepound: you are not a member of the group theirs\n");
    const missing = await cli(["--home", home.dir, "send", "--group", "nowhere", "hi"]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toBe("telepound: no such group: nowhere\n");
    const neither = await cli(["--home", home.dir, "send"]);
    expect(neither.code).toBe(2);
  });

  it("stops with exit 8 when a member's newly looked-up keys differ from a pin made meanwhile", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    server.http.set("GET /v1/groups/devs", () => ({
      status: 200,
      body: groupInfo("devs", 1, ["alice", "bob", "carol"]),
    }));
    server.http.set("POST /v1/users/lookup", () => {
      // Another process pinned carol's real keys between our read and the server's (other) answer.
      const file = JSON.parse(readFileSync(join(home.dir, "contacts.json"), "utf8"));
      file.contacts.carol = { publicKeys: carol.publicKeys, fingerprint: carol.fingerprint, firstSeen: "x" };
      writeFileSync(join(home.dir, "contacts.json"), JSON.stringify(file));
      return {
        status: 200,
        body: {
          users: [
            { username: "bob", publicKeys: bob.publicKeys },
            { username: "carol", publicKeys: eve.publicKeys },
          ],
          missing: [],
        },
      };
    });
    const uploads = answerInTurn([sent]);
    const { code, stderr } = await cli(["--home", home.dir, "send", "--group", "devs", "hi"]);
    expect(code).toBe(8);
    expect(stderr).toMatch(/KEY MISMATCH for carol/);
    expect(uploads).toHaveLength(0);
  });
});

describe("group commands", () => {
  it("map the server's refusals to exit codes with one line", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice]);
    server.http.set("POST /v1/groups/devs/members", () => ({
      status: 403,
      body: { error: { code: "forbidden", message: "only the admin (alice) may add members" } },
    }));
    server.http.set("GET /v1/groups/gone", () => ({
      status: 404,
      body: { error: { code: "not_found", message: "no such group" } },
    }));
    server.http.set("GET /v1/groups/theirs", () => ({
      status: 403,
      body: { error: { code: "forbidden", message: "you are not a member of this group" } },
    }));
    server.http.set("POST /v1/groups", () => ({
      status: 409,
      body: { error: { code: "conflict", message: "the group devs exists already" } },
    }));
    const add = await cli(["--home", home.dir, "group", "add", "devs", "carol"]);
    expect(add).toMatchObject({
      code: 7,
      stderr: "telepound: refused by the server: only the admin (alice) may add members\n",
    });
    expect((await cli(["--home", home.dir, "group", "info", "gone"])).code).toBe(4);
    expect((await cli(["--home", home.dir, "group", "info", "theirs"])).code).toBe(7);
    const taken = await cli(["--home", home.dir, "group", "create", "devs"]);
    expect(taken).toMatchObject({ code: 7, stderr: "telepound: the group name devs is taken\n" });
    expect((await cli(["--home", home.dir, "group", "info", "no"])).code).toBe(2);
    expect((await cli(["--home", home.dir, "group", "explode"])).code).toBe(2);
  });

  it("create sends the other members once, and info prints admin and members (global options after them)", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    let created: unknown;
    server.http.set("POST /v1/groups", (_request, body) => {
      created = JSON.parse(body);
      return { status: 201, body: groupInfo("devs", 1, ["alice", "bob", "carol"]) };
    });
    server.http.set("GET /v1/groups/devs", () => ({
      status: 200,
      body: groupInfo("devs", 3, ["alice", "carol"], "carol"),
    }));
    const create = await cli(["--home", home.dir, "group", "create", "Devs", "bob", "alice", "BOB", "carol"]);
    expect(create.code).toBe(0);
    expect(created).toEqual({ name: "devs", members: ["bob", "carol"] });
    const info = await cli(["group", "info", "devs", "--home", home.dir, "--json"]);
    expect(JSON.parse(info.stdout)).toEqual({
      name: "devs",
      admin: "carol",
      epoch: 3,
      members: ["alice", "carol"],
      createdAt: expect.any(String),
    });
    const human = await cli(["--home", home.dir, "group", "info", "devs"]);
    expect(human.stdout).toBe(
      "group devs: admin carol, epoch 3\nmembers, oldest first: alice, carol (admin)\n",
    );
  });
});

describe("chat", () => {
  it("creates, switches to, sends to, changes, shows and leaves a group", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const uploads: ReturnType<typeof decodeUpload>[] = [];
    server.onSocket = (socket) => {
      sendWelcome(socket.ws);
      socket.ws.send(JSON.stringify({ type: "synced" }));
      socket.ws.on("message", (data: Buffer, isBinary) => {
        if (!isBinary) return;
        const upload = decodeUpload(new Uint8Array(data));
        uploads.push(upload);
        socket.ws.send(JSON.stringify({ type: "sent", id: upload.messageIdHex, status: "delivered" }));
      });
    };
    const requests: string[] = [];
    const answer = (info: GroupInfo | null) => (request: { method?: string; url?: string }, body: string) => {
      requests.push(`${request.method} ${request.url} ${body}`.trim());
      return info ? { status: 200, body: info } : { status: 204 };
    };
    server.http.set("POST /v1/groups", answer(groupInfo("devs", 1, ["alice", "bob"])));
    server.http.set("POST /v1/groups/devs/members", answer(groupInfo("devs", 2, ["alice", "bob", "carol"])));
    server.http.set("DELETE /v1/groups/devs/members/bob", answer(groupInfo("devs", 3, ["alice", "carol"])));
    server.http.set("GET /v1/groups/devs", answer(groupInfo("devs", 3, ["alice", "carol"])));
    server.http.set("POST /v1/groups/devs/leave", answer(null));
    const lines = [
      "/members",
      "/create devs bob",
      "hello devs",
      "/add carol",
      "/group devs  second  line",
      "/remove bob",
      "/members",
      "/leave",
      "after leaving",
    ];
    const io = fakeIo({}, `${lines.join("\n")}\n`);
    const { code, stdout, stderr } = await cli(["--home", home.dir, "chat"], io);
    expect(code).toBe(0);
    expect(stderr.split("\n").filter(Boolean)).toEqual([
      "telepound: /members acts on the current group: /group G first",
      expect.stringMatching(/first contact with carol/),
      "telepound: no conversation yet: type /msg USER or /group G first",
    ]);
    expect(requests).toEqual([
      'POST /v1/groups {"name":"devs","members":["bob"]}',
      'POST /v1/groups/devs/members {"username":"carol"}',
      "DELETE /v1/groups/devs/members/bob",
      "GET /v1/groups/devs",
      "POST /v1/groups/devs/leave",
    ]);
    expect(uploads.map((upload) => [upload.header.target, upload.header.epoch])).toEqual([
      ["devs", 1],
      ["devs", 2],
    ]);
    expect(uploads[1]!.slots.map((slot) => slot.recipient)).toEqual(["alice", "bob", "carol"]);
    expect(stdout).toContain("created group devs: admin alice, epoch 1\n");
    expect(stdout).toContain("added carol to group devs: admin alice, epoch 2\n");
    expect(stdout).toContain(
      "group devs: admin alice, epoch 3\nmembers, oldest first: alice (admin), carol\n",
    );
    expect(stdout).toContain("you left the group devs\n");
    // The text after "/group devs" is sent as typed.
    const opened = await openEnvelope(
      readDelivery(encodeDelivery(signedPartWithSignature(uploads[1]!), uploads[1]!.slotBytes[2]!)),
      {
        me: "carol",
        encryptionPrivateKey: carol.identity.encryption.privateKey,
        senderSigningKey: alice.identity.signing.publicKey,
        unwrapCache: new UnwrapCache(),
        expectedMembers: ["alice", "bob", "carol"],
        expectedEpoch: 2,
      },
    );
    expect(opened.payload.text).toBe("second  line");
  });
});

describe("GroupDirectory", () => {
  it("merges what two processes learned, keeps the newest epochs, and the newest epoch's admin", async () => {
    const home = new Home(dir.path);
    const api = new Api(server.url);
    const one = await GroupDirectory.load(home, "alice", api);
    const two = await GroupDirectory.load(home, "alice", api);
    one.learn("devs", 2, ["bob", "alice"], "alice");
    two.learn("devs", 3, ["alice"], "alice");
    two.learn("devs", 1, ["alice", "bob", "carol"], "carol");
    await one.save();
    await two.save();
    const merged = await GroupDirectory.load(home, "alice", api);
    expect(await merged.membersAt("devs", 2)).toEqual(["alice", "bob"]);
    expect(merged.latest("devs")).toEqual({ epoch: 3, members: ["alice"] });
    expect((await home.read("groups.json"))?.groups[0]?.admin).toBe("alice");

    for (let epoch = 10; epoch < 10 + EPOCHS_KEPT + 5; epoch++) one.learn("big", epoch, ["alice"]);
    await one.save();
    const file = await home.read("groups.json");
    const big = file?.groups.find((group) => group.name === "big");
    expect(big?.epochs).toHaveLength(EPOCHS_KEPT);
    expect(big?.epochs[0]?.[0]).toBe(15);
    // Another user's file is not ours to trust.
    expect((await GroupDirectory.load(home, "mallory", api)).latest("devs")).toBeNull();
  });
});
