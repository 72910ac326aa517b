// Groups in the CLI against the stub server, with real keys: membership comes from signed statements
// (test/node/cli/group-chain.ts), group messages are checked against the verified members of their epoch
// and rejected when they do not match; our own group messages never show back; a send refused for a stale
// epoch is sealed again for the new verified members; the group commands sign their changes and map the
// server's refusals to exit codes.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { decodeUpload, encodeDelivery, signedPartWithSignature } from "../../../protocol/envelope.js";
import {
  SenderKeyring,
  UnwrapCache,
  openEnvelope,
  readDelivery,
  sealMessage,
} from "../../../cli-client/crypto/index.js";
import { Contacts } from "../../../cli-client/contacts.js";
import { EPOCHS_KEPT, GroupDirectory } from "../../../cli-client/groups.js";
import { Home } from "../../../cli-client/home.js";
import type { LoggedIn } from "../../../cli-client/session.js";
import { SignedChain, groupsFileOf } from "./group-chain.js";
import {
  type TestUser,
  answerUploads,
  loggedInAs,
  loggedInHome,
  makeUser,
  nextSequence,
  serveKeys,
} from "./fixtures.js";
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

/** `user` logged in on the stub, for driving a GroupDirectory directly. */
function loggedIn(user: TestUser): LoggedIn {
  return loggedInAs(server.url, user);
}

/** devs: alice creates it with bob (epoch 1), then adds carol (epoch 2). */
function devs(): SignedChain {
  const chain = new SignedChain("devs", [alice, bob, carol, eve]);
  chain.create(alice, ["bob"]);
  chain.add(alice, "carol");
  return chain;
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

describe("receiving group messages", () => {
  it("shows a message whose members match the epoch an event announced, with group and sender", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol]);
    const chain = devs();
    const message = await groupDelivery(alice, bob, "devs", 2, [alice, bob, carol], "hello devs");
    const acked = serve([chain.event(chain.entry(1)), chain.event(chain.entry(2)), message.frame]);
    const { code, stdout, stderr } = await cli(["--home", home.dir, "inbox", "--json"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(jsonLines(stdout)).toEqual([
      {
        event: "created",
        group: "devs",
        by: "alice",
        user: "alice",
        epoch: 1,
        members: ["alice", "bob"],
        invited: [],
        admin: "alice",
        signedBy: "alice",
      },
      {
        event: "added",
        group: "devs",
        by: "alice",
        user: "carol",
        epoch: 2,
        members: ["alice", "bob", "carol"],
        invited: [],
        admin: "alice",
        signedBy: "alice",
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
    expect(acked).toEqual([chain.event(chain.entry(1)).id, chain.event(chain.entry(2)).id, message.id]);
    // The verified chain was saved before the acknowledgement, for later runs: both changes shown.
    const saved = await home.read("groups.json");
    expect(saved?.groups).toEqual([groupsFileOf("bob", chain).groups[0]]);
  });

  it("shows group and sender to people", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol]);
    const chain = devs();
    const message = await groupDelivery(carol, bob, "devs", 2, [alice, bob, carol], "from carol");
    serve([chain.event(chain.entry(1)), chain.event(chain.entry(2)), message.frame]);
    const { stdout } = await cli(["--home", home.dir, "inbox"]);
    expect(stdout).toMatch(
      /group devs: alice added carol \(members: alice, bob, carol\) \[signed by alice\]\n/,
    );
    expect(stdout).toMatch(/\] #devs carol: from carol\n$/);
  });

  it("rejects a message sealed for a member set the epoch does not have (a recipient smuggled in)", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol, eve]);
    // The server told bob the members are alice, bob, carol; the message was also sealed for eve.
    const chain = devs();
    const message = await groupDelivery(alice, bob, "devs", 2, [alice, bob, carol, eve], "with eve");
    const acked = serve([chain.event(chain.entry(1)), chain.event(chain.entry(2)), message.frame]);
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
    const chain = devs();
    serve([chain.event(chain.entry(1)), chain.event(chain.entry(2)), message.frame]);
    const { stdout, stderr } = await cli(["--home", home.dir, "inbox"]);
    expect(stdout).not.toContain("old members");
    expect(stderr).toMatch(/members digest does not match the members of devs at epoch 2/);
  });

  it("fetches and verifies the epochs it has no event for, shows the changes, and remembers them", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol, eve]);
    const chain = devs();
    chain.add(alice, "eve");
    chain.remove(alice, "eve");
    chain.add(alice, "eve");
    chain.remove(alice, "eve");
    const requests = chain.serve(server);
    const first = await groupDelivery(alice, bob, "devs", 6, [alice, bob, carol], "first");
    const second = await groupDelivery(carol, bob, "devs", 6, [alice, bob, carol], "second");
    serve([first.frame, second.frame]);
    const { stdout } = await cli(["--home", home.dir, "inbox", "--json"]);
    const lines = jsonLines(stdout);
    expect(lines.filter((line) => "text" in line).map((line) => line.text)).toEqual(["first", "second"]);
    // Every change on the way is verified and shown, each with its signer.
    expect(
      lines.filter((line) => "event" in line).map((line) => [line.epoch, line.event, line.signedBy]),
    ).toEqual([
      [1, "created", "alice"],
      [2, "added", "alice"],
      [3, "added", "alice"],
      [4, "removed", "alice"],
      [5, "added", "alice"],
      [6, "removed", "alice"],
    ]);
    // Epoch 6, then back to the create that brought bob in, once each.
    expect(requests).toEqual([6, 5, 4, 3, 2, 1].map((epoch) => `GET /v1/groups/devs/epochs/${epoch}`));
    // A later run knows the epoch without asking.
    serve([(await groupDelivery(alice, bob, "devs", 6, [alice, bob, carol], "third")).frame]);
    expect(jsonLines((await cli(["--home", home.dir, "inbox", "--json"])).stdout)[0]?.text).toBe("third");
    expect(requests).toHaveLength(6);
  });

  it("drops a message of an epoch whose statement does not verify (signed by a non-admin)", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol, eve]);
    const chain = devs();
    chain.add(carol, "eve");
    chain.serve(server);
    const message = await groupDelivery(eve, bob, "devs", 3, [alice, bob, carol, eve], "eve is in");
    const acked = serve([chain.event(chain.entry(1)), chain.event(chain.entry(2)), message.frame]);
    const { stdout, stderr } = await cli(["--home", home.dir, "inbox"]);
    expect(stdout).not.toContain("eve is in");
    expect(stderr).toMatch(/dropped a message from eve .*only the admin \(alice\) may add members/);
    expect(acked).toContain(message.id);
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
    const chain = devs();
    serve([chain.event(chain.entry(1)), message.frame]);
    const { stdout, stderr } = await cli(["--home", home.dir, "inbox"]);
    expect(stdout).not.toContain("let me in");
    expect(stderr).toMatch(/dropped a message from eve/);
  });

  it("does not show our own group message handed back, even when another process sent it", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const own = await groupDelivery(alice, alice, "devs", 1, [alice, bob], "mine");
    const chain = devs();
    const acked: string[] = [];
    server.onSocket = (socket) => {
      // By now inbox has loaded seen.json; `send --group` in another process records its id only now.
      void home
        .withLock(() => home.write("seen.json", { owner: "alice", ids: [[`alice/${own.id}`, Date.now()]] }))
        .then(() => {
          sendWelcome(socket.ws, "alice");
          socket.ws.send(JSON.stringify(chain.event(chain.entry(1))));
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
    const chain = devs();
    serve([chain.event(chain.entry(1)), own.frame]);
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
    const chain = new SignedChain("devs", [alice, bob]);
    chain.create(alice, ["bob"]);
    chain.serve(server);
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
    // What this device knew: epoch 1. The group is at epoch 2 by now, with carol (alice added her
    // from another device: her own change needs no review).
    const chain = devs();
    await home.write("groups.json", groupsFileOf("alice", chain, [chain.entry(1)]));
    const requests = chain.serve(server);
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
    expect(requests).toEqual(["GET /v1/groups/devs"]);
    // bob's pinned keys are checked with the server before the first seal; carol, new, is pinned before the
    // second; bob is not asked about again.
    expect(lookups).toEqual([{ usernames: ["bob"] }, { usernames: ["carol"] }]);
    expect(stderr).toMatch(/first contact with carol: pinned/);
    expect((await home.read("contacts.json"))?.contacts.get("carol")?.fingerprint).toBe(carol.fingerprint);
    expect((await home.read("groups.json"))?.groups[0]?.epochs.map(({ epoch }) => epoch)).toEqual([1, 2]);
    // Sealed again under the same sequence: the refused copy was never delivered, so no member sees a gap.
    expect((await home.read("state.json"))?.sequences).toEqual([["g:devs", 1]]);
  });

  it("on stale_epoch stops before sealing again when the catch-up meets another's change (exit 10), then goes on", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol]);
    const chain = devs();
    await home.write("groups.json", groupsFileOf("bob", chain, [chain.entry(1)]));
    chain.serve(server);
    const uploads = answerInTurn([stale, sent]);
    const first = await cli(["--home", home.dir, "send", "--group", "devs", "hi", "--json"]);
    expect(first.code).toBe(10);
    expect(jsonLines(first.stdout)).toEqual([
      expect.objectContaining({ event: "added", user: "carol", epoch: 2, signedBy: "alice" }),
    ]);
    expect(JSON.parse(first.stderr)).toEqual({
      error: {
        message: "group membership changed: review it and send again (1 change in devs; nothing was sent)",
        exitCode: 10,
      },
    });
    expect(uploads.map((upload) => upload.header.epoch)).toEqual([1]);
    const again = await cli(["--home", home.dir, "send", "--group", "devs", "hi", "--json"]);
    expect(again.code).toBe(0);
    expect(uploads.map((upload) => upload.header.epoch)).toEqual([1, 2]);
    expect(uploads[1]!.slots.map((slot) => slot.recipient)).toEqual(["alice", "bob", "carol"]);
  });

  it("refuses a server head that does not verify, sealing nothing new (exit 8)", async () => {
    const home = await loggedInHome(dir.path, server.url, bob, [alice, carol, eve]);
    const chain = devs();
    await home.write("groups.json", groupsFileOf("bob", chain));
    // The server's head: epoch 2's statement with eve slipped into the member list.
    const lie = { ...chain.info(), members: [...chain.info().members, { username: "eve", joinedAt: 9 }] };
    server.http.set("GET /v1/groups/devs", () => ({ status: 200, body: lie }));
    const uploads = answerInTurn([stale]);
    const result = await cli(["--home", home.dir, "send", "--group", "devs", "hi"]);
    expect(result.code).toBe(8);
    expect(result.stderr).toMatch(
      /does not verify: the member list given does not match the signed members digest/,
    );
    expect(uploads.flatMap((upload) => upload.slots.map((slot) => slot.recipient))).not.toContain("eve");
  });

  it("gives up with exit 7 when the group keeps changing", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const chain = new SignedChain("devs", [alice, bob]);
    chain.create(alice, ["bob"]);
    chain.serve(server);
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
    const chain = new SignedChain("devs", [alice, bob, carol]);
    chain.create(alice, ["bob", "carol"]);
    chain.serve(server);
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
    devs().serve(server);
    server.http.set("GET /v1/groups/new/next-epoch", () => ({
      status: 200,
      body: { name: "new", epoch: 1 },
    }));
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
    const taken = await cli(["--home", home.dir, "group", "create", "new"]);
    expect(taken).toMatchObject({
      code: 7,
      stderr: "telepound: refused by the server: the group devs exists already\n",
    });
    expect((await cli(["--home", home.dir, "group", "info", "no"])).code).toBe(2);
    expect((await cli(["--home", home.dir, "group", "explode"])).code).toBe(2);
  });

  it("create signs the statement for the next epoch with the members once, and info prints the verified head", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob, carol]);
    const chain = new SignedChain("devs", [alice, bob, carol]);
    const requests = chain.serve(server);
    let created: { statement: string; members: string[] } | undefined;
    const record = server.http.get("POST /v1/groups")!;
    server.http.set("POST /v1/groups", (request, body, bytes) => {
      created = JSON.parse(body);
      return record(request, body, bytes);
    });
    const create = await cli(["--home", home.dir, "group", "create", "Devs", "bob", "alice", "BOB", "carol"]);
    expect(create.code).toBe(0);
    expect(created!.members).toEqual(["alice", "bob", "carol"]);
    expect(chain.head.statement).toMatchObject({ action: "create", epoch: 1, by: "alice", admin: "alice" });
    expect(requests).toEqual(["GET /v1/groups/devs/next-epoch", "POST /v1/groups"]);
    // Removed on another device of alice's: verified from the server's head, shown as it is.
    chain.remove(alice, "bob");
    const info = await cli(["group", "info", "devs", "--home", home.dir, "--json"]);
    expect(JSON.parse(info.stdout)).toEqual({
      name: "devs",
      admin: "alice",
      epoch: 2,
      members: ["alice", "carol"],
      invited: [],
      createdAt: expect.any(String),
    });
    const human = await cli(["--home", home.dir, "group", "info", "devs"]);
    expect(human.stdout).toBe(
      "group devs: admin alice, epoch 2\nmembers, oldest first: alice (admin), carol\n",
    );
  });

  it("refuse a server answer that is not the statement signed (exit 8)", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob]);
    const chain = new SignedChain("devs", [alice, bob]);
    chain.create(alice, ["bob"]);
    chain.serve(server);
    const other = new SignedChain("devs", [alice, bob]);
    other.create(alice, ["bob"]);
    other.add(alice, "carol");
    // The server answers the add with another add, signed by alice long ago.
    server.http.set("POST /v1/groups/devs/members", () => ({ status: 200, body: other.info() }));
    const add = await cli(["--home", home.dir, "group", "add", "devs", "bob2"]);
    expect(add.code).toBe(8);
  });
});

describe("chat", () => {
  it("shows a change another member signed, met while sending, and sends only the next line", async () => {
    const home = await loggedInHome(dir.path, server.url, alice, [bob, carol]);
    const chain = new SignedChain("devs", [alice, bob, carol]);
    chain.create(bob, ["alice"]);
    await home.write("groups.json", groupsFileOf("alice", chain));
    chain.add(bob, "carol");
    chain.serve(server);
    const uploads: ReturnType<typeof decodeUpload>[] = [];
    server.onSocket = (socket) => {
      sendWelcome(socket.ws);
      socket.ws.send(JSON.stringify({ type: "synced" }));
      socket.ws.on("message", (data: Buffer, isBinary) => {
        if (!isBinary) return;
        const upload = decodeUpload(new Uint8Array(data));
        uploads.push(upload);
        // The server moved on to epoch 2 without telling this socket: only a catch-up can say.
        const answer =
          upload.header.epoch === 1
            ? { type: "error", code: "stale_epoch", message: "moved on", id: upload.messageIdHex }
            : { type: "sent", id: upload.messageIdHex, status: "delivered" };
        socket.ws.send(JSON.stringify(answer));
      });
    };
    const io = fakeIo({}, "/group devs first try\n/group devs second try\n");
    const { code, stdout, stderr } = await cli(["--home", home.dir, "chat"], io);
    expect(code).toBe(0);
    expect(stdout).toMatch(/group devs: bob added carol \(members: alice, bob, carol\) \[signed by bob\]/);
    expect(stderr).toMatch(/group membership changed: review it and send again \(1 change in devs/);
    expect(uploads.map((upload) => upload.header.epoch)).toEqual([1, 2]);
    expect(uploads[1]!.slots.map((slot) => slot.recipient)).toEqual(["alice", "bob", "carol"]);
  });

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
    const chain = new SignedChain("devs", [alice, bob, carol]);
    const requests = chain.serve(server);
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
      "GET /v1/groups/devs/next-epoch",
      "POST /v1/groups",
      "GET /v1/groups/devs",
      "POST /v1/groups/devs/members",
      "GET /v1/groups/devs",
      "DELETE /v1/groups/devs/members/bob",
      "GET /v1/groups/devs",
      "GET /v1/groups/devs",
      "POST /v1/groups/devs/leave",
    ]);
    // Every change was signed by alice, in order, each on the one before.
    expect(chain.entries.map((entry) => [entry.epoch, entry.statement.action, entry.statement.by])).toEqual([
      [1, "create", "alice"],
      [2, "add", "alice"],
      [3, "remove", "alice"],
      [4, "leave", "alice"],
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
  it("merges what two processes verified, keeps member lists for the newest epochs only, and ignores another user's file", async () => {
    const home = new Home(dir.path);
    const me = loggedIn(alice);
    const contacts = new Contacts(home, me);
    const chain = devs();
    for (let i = 0; i < EPOCHS_KEPT + 5; i++) {
      if (i % 2 === 0) chain.remove(alice, "carol");
      else chain.add(alice, "carol");
    }
    chain.serve(server);
    const one = await GroupDirectory.load(home, me, contacts);
    const two = await GroupDirectory.load(home, me, contacts);
    const learn = (directory: GroupDirectory, epoch: number) =>
      directory.learn("devs", chain.epochAnswer(chain.entry(epoch)));
    expect((await learn(one, 1)).kind).toBe("adopted");
    expect((await learn(two, 2)).kind).toBe("adopted");
    await one.save();
    await two.save();
    const merged = await GroupDirectory.load(home, me, contacts);
    expect(merged.latest("devs")).toEqual({ epoch: 2, members: ["alice", "bob", "carol"] });
    expect(await merged.membersAt("devs", 1)).toEqual(["alice", "bob"]);

    const last = chain.head.epoch;
    expect((await learn(merged, last)).kind).toBe("adopted");
    await merged.save();
    const file = await home.read("groups.json");
    const epochs = file!.groups[0]!.epochs;
    expect(epochs.map((epoch) => epoch.epoch)).toEqual(chain.entries.map((entry) => entry.epoch));
    expect(epochs.filter((epoch) => epoch.members !== undefined)).toHaveLength(EPOCHS_KEPT);
    // A trimmed epoch is fetched again and checked against the hash kept for it.
    expect(await (await GroupDirectory.load(home, me, contacts)).membersAt("devs", 1)).toEqual([
      "alice",
      "bob",
    ]);
    // Another user's file is not ours to trust.
    expect(
      (await GroupDirectory.load(home, loggedIn(bob), new Contacts(home, loggedIn(bob)))).latest("devs"),
    ).toBeNull();
  });

  it("takes a create after a close as a new chain, a create over the open chain as a fork", async () => {
    const home = new Home(dir.path);
    const me = loggedIn(alice);
    const contacts = new Contacts(home, me);
    const chain = new SignedChain("devs", [alice, bob]);
    chain.create(bob, ["alice"]);
    const directory = await GroupDirectory.load(home, me, contacts);
    expect((await directory.learn("devs", chain.epochAnswer(chain.entry(1)))).kind).toBe("adopted");
    // The same statement again: a replay, nothing changes.
    expect((await directory.learn("devs", chain.epochAnswer(chain.entry(1)))).kind).toBe("known");
    // Another create while alice's known chain is open: the server shows her two histories.
    const rival = new SignedChain("devs", [alice, bob]);
    rival.create(bob, ["alice", "carol"], 2);
    const fork = await directory.learn("devs", rival.epochAnswer(rival.entry(2)));
    expect(fork).toMatchObject({ kind: "fork", epoch: 2 });
    expect(() => directory.latest("devs")).toThrow(/GROUP FORK in devs at epoch 2/);
    await expect(directory.membersAt("devs", 2)).rejects.toThrow(/GROUP FORK/);

    // Elsewhere: everyone leaves, and bob creates the name again: a new chain, no fork.
    const fresh = await GroupDirectory.load(new Home(join(dir.path, "other")), me, contacts);
    const closing = new SignedChain("team", [alice, bob]);
    closing.create(bob, ["alice"]);
    closing.leave(bob);
    closing.leave(alice);
    expect(closing.head.members).toEqual([]);
    closing.create(bob, ["alice"], 4);
    for (const entry of closing.entries)
      expect((await fresh.learn("team", closing.epochAnswer(entry))).kind).toBe("adopted");
    expect(fresh.latest("team")).toEqual({ epoch: 4, members: ["alice", "bob"] });
    expect(fresh.isForked("team")).toBe(false);
  });

  it("follows a removal it can see to a re-add it was not shown in between, as a new chain", async () => {
    const home = new Home(dir.path);
    const me = loggedIn(bob);
    const contacts = new Contacts(home, me);
    const chain = devs(); // 1 create (alice, bob), 2 add carol
    chain.remove(alice, "bob"); // 3
    chain.add(alice, "eve"); // 4: bob was not a member then, nor just before
    chain.add(alice, "bob"); // 5
    chain.remove(alice, "eve"); // 6
    chain.serve(server);
    server.http.set("GET /v1/groups/devs/epochs/4", () => ({
      status: 403,
      body: { error: { code: "forbidden", message: "you were not a member at epoch 4 or just before" } },
    }));
    const directory = await GroupDirectory.load(home, me, contacts);
    // Epoch 2, followed back to the create that brought bob in.
    expect((await directory.learn("devs", chain.epochAnswer(chain.entry(2)))).kind).toBe("adopted");
    expect((await directory.learn("devs", chain.epochAnswer(chain.entry(1)))).kind).toBe("known");
    const outcome = await directory.learn("devs", chain.epochAnswer(chain.entry(6)));
    expect(outcome.kind).toBe("adopted");
    expect(outcome.kind === "adopted" && outcome.epochs.map((epoch) => [epoch.epoch, epoch.action])).toEqual([
      [3, "remove"],
      [5, "add"],
      [6, "remove"],
    ]);
    expect(directory.latest("devs")).toEqual({ epoch: 6, members: ["alice", "bob", "carol"] });
    // While still a member, a gap the server will not fill is refused: nothing adopted.
    const other = await GroupDirectory.load(new Home(join(dir.path, "other")), me, contacts);
    expect((await other.learn("devs", chain.epochAnswer(chain.entry(1)))).kind).toBe("adopted");
    server.http.set("GET /v1/groups/devs/epochs/2", () => ({
      status: 404,
      body: { error: { code: "not_found", message: "no epoch 2" } },
    }));
    expect(await other.learn("devs", chain.epochAnswer(chain.entry(3)))).toMatchObject({
      kind: "refused",
      reason: expect.stringMatching(/epoch 2 is missing/),
    });
    expect(other.latest("devs")).toEqual({ epoch: 1, members: ["alice", "bob"] });
  });

  it("reads a version 1 file (the server's unsigned word) as knowing nothing", async () => {
    const home = new Home(dir.path);
    await home.write("groups.json", { version: 3, owner: "alice", groups: [] });
    await writeFileSync(
      join(dir.path, "groups.json"),
      JSON.stringify({
        owner: "alice",
        groups: [{ name: "devs", admin: "alice", epochs: [[1, ["alice", "ghost"]]] }],
      }),
    );
    const directory = await GroupDirectory.load(home, loggedIn(alice), new Contacts(home, loggedIn(alice)));
    expect(directory.latest("devs")).toBeNull();
  });
});
