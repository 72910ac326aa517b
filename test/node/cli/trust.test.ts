// The trust model through runCli against the stub server, with real keys: a key change found by sending
// (direct and group) is recorded and stops every send until `trust`; `user` and `verify` report it loudly;
// `verify` shows the safety number and marks keys verified (never while a change is pending); `trust`
// accepts new keys and resets verification; messages signed with a changed sender's new keys are held in
// the home (acknowledged to the server, not shown) and shown once the new keys are trusted.

import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import confirm from "@inquirer/confirm";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { SignedChain } from "./group-chain.js";
import { safetyNumber } from "../../../client/crypto/index.js";
import type { Home } from "../../../client/store/home.js";
import { type TestUser, answerUploads, deliveryFrom, loggedInHome, makeUser, serveKeys } from "./fixtures.js";
import {
  type FakeIo,
  type StubServer,
  fakeIo,
  runCaptured,
  sendWelcome,
  startStubServer,
  tempDir,
} from "./helpers.js";

vi.mock("@inquirer/confirm", () => ({ default: vi.fn() }));

let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
/** bob's account as the server gives it after a key change: bob's name, new keys. */
let newBob: TestUser;
vi.setConfig({ testTimeout: 30_000, hookTimeout: 60_000 });

let server: StubServer;
let dir: Awaited<ReturnType<typeof tempDir>>;
let home: Home;

beforeAll(async () => {
  const [a, b, c, replacement] = await Promise.all([
    makeUser("alice"),
    makeUser("bob"),
    makeUser("carol"),
    makeUser("bob"),
  ]);
  [alice, bob, carol, newBob] = [a, b, c, replacement];
});

beforeEach(async () => {
  server = await startStubServer();
  serveKeys(server, [alice, bob, carol]);
  dir = await tempDir();
  home = await loggedInHome(dir.path, server.url, alice, [bob]);
  vi.mocked(confirm).mockReset();
});

afterEach(async () => {
  await server.close();
  await dir.remove();
});

const cli = (args: string[], io?: FakeIo) => runCaptured(["--home", home.location, ...args], io);

/** From now on the server gives new keys for bob (one GET /v1/users/bob answer counted per request). */
function bobsKeysChange(): { asked: () => number } {
  let asked = 0;
  server.http.set("GET /v1/users/bob", () => {
    asked++;
    return { status: 200, body: { username: "bob", publicKeys: newBob.publicKeys } };
  });
  return { asked: () => asked };
}

/** Sending sockets that accept every upload; returns what was uploaded. */
function acceptUploads(): ReturnType<typeof answerUploads> {
  return answerUploads(server, "delivered");
}

/** Receiving sockets that push `frames` then synced; returns every id acknowledged. */
function serveInbox(frames: Uint8Array[]): string[] {
  const acked: string[] = [];
  server.onSocket = (socket) => {
    sendWelcome(socket.ws);
    for (const frame of frames) socket.ws.send(frame);
    socket.ws.send(JSON.stringify({ type: "synced" }));
    socket.ws.on("message", (data: Buffer, isBinary) => {
      if (!isBinary) acked.push(...((JSON.parse(data.toString()) as { ids?: string[] }).ids ?? []));
    });
  };
  return acked;
}

async function pinOf(name: string) {
  return (await home.read("contacts.json"))?.contacts.get(name);
}

function heldFiles(): string[] {
  try {
    return readdirSync(join(home.location, "held", "alice"));
  } catch {
    return [];
  }
}

const lines = (text: string) => text.split("\n").filter(Boolean);

describe("a key change found by sending", () => {
  it("stops send with exit 8, sends nothing, and records the change beside the pin", async () => {
    bobsKeysChange();
    const uploads = acceptUploads();
    const { code, stderr } = await cli(["send", "bob", "hello"]);
    expect(code).toBe(8);
    expect(stderr).toMatch(/KEY MISMATCH for bob: bob's KEYS CHANGED/);
    expect(stderr).toContain(newBob.fingerprint);
    expect(stderr).toContain(
      "run `telepound verify bob` to compare safety numbers with bob".replace("run", "Run"),
    );
    expect(stderr).toContain("then `telepound trust bob` to accept the new keys");
    expect(lines(stderr)).toHaveLength(1);
    expect(uploads).toHaveLength(0);
    expect(server.sockets).toHaveLength(0);
    const pin = await pinOf("bob");
    expect(pin?.publicKeys).toEqual(bob.publicKeys);
    expect(pin?.keyChange).toEqual({
      publicKeys: newBob.publicKeys,
      fingerprint: newBob.fingerprint,
      seenAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
  });

  it("asks the server once per send, and not at all once a change is recorded, until trust", async () => {
    const uploads = acceptUploads();
    let asked = 0;
    server.http.set("GET /v1/users/bob", () => {
      asked++;
      return { status: 200, body: { username: "bob", publicKeys: bob.publicKeys } };
    });
    expect((await cli(["send", "bob", "one"])).code).toBe(0);
    expect(asked).toBe(1);

    const change = bobsKeysChange();
    expect((await cli(["send", "bob", "two"])).code).toBe(8);
    expect(change.asked()).toBe(1);
    const again = await cli(["send", "bob", "three"]);
    expect(again.code).toBe(8);
    expect(again.stderr).toMatch(/bob's KEYS CHANGED/);
    // Refused from contacts.json alone: no round trip can lift a recorded change, only trust.
    expect(change.asked()).toBe(1);
    expect(uploads).toHaveLength(1);

    const trusted = await cli(["trust", "bob"]);
    expect(trusted.code).toBe(0);
    expect(trusted.stdout).toContain(
      `accepted bob's new keys: fingerprint ${newBob.fingerprint} (was ${bob.fingerprint})`,
    );
    expect((await cli(["send", "bob", "four"])).code).toBe(0);
    expect(uploads).toHaveLength(2);
    // Sealed for the new keys: the slot is wrapped for them (their fingerprint is bound in the wrap).
    expect(uploads[1]!.slots.map((slot) => slot.recipient)).toEqual(["bob"]);
    expect((await pinOf("bob"))?.publicKeys).toEqual(newBob.publicKeys);
  });

  it("stops a group send (exit 8) with one lookup for all members, nothing uploaded", async () => {
    const chain = new SignedChain("devs", [alice, bob, carol]);
    chain.create(alice, ["bob", "carol"]);
    chain.serve(server);
    const lookups: string[][] = [];
    server.http.set("POST /v1/users/lookup", (_request, body) => {
      const { usernames } = JSON.parse(body) as { usernames: string[] };
      lookups.push(usernames);
      const answer = (name: string) => ({
        username: name,
        publicKeys: name === "bob" ? newBob.publicKeys : carol.publicKeys,
      });
      return { status: 200, body: { users: usernames.map(answer), missing: [] } };
    });
    const uploads = acceptUploads();
    const { code, stderr } = await cli(["send", "--group", "devs", "hi all"]);
    expect(code).toBe(8);
    expect(server.sockets).toHaveLength(0);
    expect(stderr).toMatch(/KEY MISMATCH for bob: bob's KEYS CHANGED/);
    expect(lookups).toEqual([["bob", "carol"]]);
    expect(uploads).toHaveLength(0);
    expect((await pinOf("bob"))?.keyChange?.fingerprint).toBe(newBob.fingerprint);
    // carol was met for the first time in the same lookup: pinned, no change.
    expect((await pinOf("carol"))?.keyChange).toBeUndefined();
  });
});

describe("user", () => {
  it("shows when keys were verified, and warns loudly (exit 8) while a change is pending", async () => {
    const before = await cli(["user", "bob", "--json"]);
    expect(JSON.parse(before.stdout)).toMatchObject({ username: "bob", verified: false });
    expect((await cli(["verify", "bob", "--yes"])).code).toBe(0);
    const verified = await cli(["user", "bob"]);
    expect(verified.stdout).toMatch(/^bob's key fingerprint: [0-9a-f ]+ \(verified on \d{4}-/);

    bobsKeysChange();
    const changed = await cli(["user", "bob"]);
    expect(changed.code).toBe(8);
    expect(changed.stdout).toBe("");
    expect(changed.stderr).toMatch(/KEY MISMATCH for bob: bob's KEYS CHANGED/);
    expect(changed.stderr).toContain("telepound trust bob");
  });
});

describe("verify", () => {
  it("prints the safety number and, without a terminal or --yes, says how to mark it", async () => {
    const expected = safetyNumber(
      { username: "alice", publicKeys: alice.publicKeys },
      { username: "bob", publicKeys: bob.publicKeys },
    );
    const { code, stdout } = await cli(["verify", "bob"]);
    expect(code).toBe(0);
    const digits = expected.split(" ");
    expect(stdout).toContain(`    ${digits.slice(0, 4).join(" ")}\n    ${digits.slice(4, 8).join(" ")}\n`);
    expect(stdout).toContain("bob is not verified yet");
    expect(stdout).toContain("telepound verify bob --yes");
    expect((await pinOf("bob"))?.verifiedAt).toBeUndefined();

    const json = await cli(["verify", "bob", "--json"]);
    expect(JSON.parse(json.stdout)).toEqual({
      username: "bob",
      safetyNumber: expected,
      fingerprint: bob.fingerprint,
      verified: false,
      keyChanged: false,
    });
  });

  it("marks the keys verified with --yes, and reports it in --json", async () => {
    const { code, stdout } = await cli(["verify", "bob", "--yes", "--json"]);
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    expect(result).toMatchObject({ username: "bob", verified: true, keyChanged: false });
    expect(result.verifiedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect((await pinOf("bob"))?.verifiedAt).toBe(result.verifiedAt);
    // Asked again, it stays verified as of the first time.
    const again = JSON.parse((await cli(["verify", "bob", "--json"])).stdout);
    expect(again.verifiedAt).toBe(result.verifiedAt);
  });

  it("asks on a terminal, and marks only on yes (a no exits 8)", async () => {
    const terminal = () => {
      const io = fakeIo();
      (io.stdin as { isTTY?: boolean }).isTTY = true;
      return io;
    };
    vi.mocked(confirm).mockResolvedValueOnce(false);
    const no = await cli(["verify", "bob"], terminal());
    expect(no.code).toBe(8);
    expect(no.stdout).toContain("safety number with bob");
    expect(no.stderr).toMatch(/the safety numbers differ, so bob was not marked verified/);
    expect(vi.mocked(confirm).mock.calls[0]![0]).toMatchObject({ message: "Does bob see the same number?" });
    expect((await pinOf("bob"))?.verifiedAt).toBeUndefined();

    vi.mocked(confirm).mockResolvedValueOnce(true);
    const yes = await cli(["verify", "bob"], terminal());
    expect(yes.code).toBe(0);
    expect(yes.stdout).toMatch(/bob verified on \d{4}-/);
    expect((await pinOf("bob"))?.verifiedAt).toEqual(expect.any(String));
  });

  it("refuses to mark while a change is pending, showing old and new fingerprints and the new keys' number", async () => {
    bobsKeysChange();
    const { code, stdout, stderr } = await cli(["verify", "bob", "--yes"]);
    expect(code).toBe(8);
    expect(stdout).toMatch(/WARNING: bob's KEYS CHANGED/);
    expect(stdout).toContain(`fingerprint ${bob.fingerprint}`);
    expect(stdout).toContain(`fingerprint ${newBob.fingerprint}`);
    const withNewKeys = safetyNumber(
      { username: "alice", publicKeys: alice.publicKeys },
      { username: "bob", publicKeys: newBob.publicKeys },
    );
    expect(stdout).toContain(withNewKeys.split(" ").slice(0, 4).join(" "));
    expect(stderr).toMatch(/not marked verified: if bob sees the same number, run `telepound trust bob`/);
    expect((await pinOf("bob"))?.verifiedAt).toBeUndefined();

    const json = await cli(["verify", "bob", "--yes", "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      safetyNumber: withNewKeys,
      fingerprint: newBob.fingerprint,
      verified: false,
      keyChanged: true,
    });
  });

  it("refuses yourself (exit 2)", async () => {
    expect((await cli(["verify", "alice"])).code).toBe(2);
  });
});

describe("trust", () => {
  it("accepts the new keys, resets verification, and says when nothing changed", async () => {
    expect((await cli(["verify", "bob", "--yes"])).code).toBe(0);
    expect((await pinOf("bob"))?.verifiedAt).toBeDefined();
    bobsKeysChange();
    expect((await cli(["send", "bob", "x"])).code).toBe(8);

    const { code, stdout } = await cli(["trust", "bob", "--json"]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      username: "bob",
      outcome: "replaced",
      changed: true,
      fingerprint: newBob.fingerprint,
      previousFingerprint: bob.fingerprint,
      safetyNumber: safetyNumber(
        { username: "alice", publicKeys: alice.publicKeys },
        { username: "bob", publicKeys: newBob.publicKeys },
      ),
      verified: false,
      held: 0,
    });
    const pin = await pinOf("bob");
    expect(pin?.publicKeys).toEqual(newBob.publicKeys);
    expect(pin?.verifiedAt).toBeUndefined();
    expect(pin?.keyChange).toBeUndefined();
    expect(pin?.firstSeen).not.toBe("2026-01-01T00:00:00.000Z");

    const nothing = await cli(["trust", "bob"]);
    expect(nothing.code).toBe(0);
    expect(nothing.stdout).toBe(
      `nothing changed: the server gives the keys pinned for bob (fingerprint ${newBob.fingerprint})\n`,
    );
  });

  it("drops a recorded change when the server gives the pinned keys again, keeping verification", async () => {
    expect((await cli(["verify", "bob", "--yes"])).code).toBe(0);
    bobsKeysChange();
    expect((await cli(["user", "bob"])).code).toBe(8);
    serveKeys(server, [bob]);
    const { code, stdout } = await cli(["trust", "bob"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/pinned keys again .* the recorded key change is dropped/);
    const pin = await pinOf("bob");
    expect(pin?.keyChange).toBeUndefined();
    expect(pin?.verifiedAt).toBeDefined();
    expect((await cli(["user", "bob"])).code).toBe(0);
  });
});

describe("receiving from a sender whose keys changed", () => {
  it("holds their new-key messages out of sight (acknowledged, kept in the home) and shows them after trust", async () => {
    bobsKeysChange();
    const signedByNewKeys = [
      await deliveryFrom(newBob, alice, "new phone, same bob"),
      await deliveryFrom(newBob, alice, "really"),
    ];
    // Signed with the keys alice pinned: from the bob she trusted, so shown even while the change is pending.
    const signedByPin = await deliveryFrom(bob, alice, "sent before the change");
    const acked = serveInbox([signedByNewKeys[0]!.frame, signedByPin.frame, signedByNewKeys[1]!.frame]);

    const first = await cli(["inbox"]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/bob: sent before the change/);
    expect(first.stdout).not.toMatch(/new phone|really/);
    const warnings = lines(first.stderr);
    // One loud warning for the sender, however many messages, then what is held.
    expect(warnings.filter((line) => line.includes("KEYS CHANGED"))).toHaveLength(1);
    expect(warnings.at(-1)).toBe(
      "warning: 2 messages from bob held until you trust their new keys: compare safety numbers with " +
        "`telepound verify bob`, then run `telepound trust bob`",
    );
    expect(new Set(acked)).toEqual(new Set([...signedByNewKeys.map((m) => m.id), signedByPin.id]));
    expect(heldFiles().sort()).toEqual(signedByNewKeys.map((m) => m.id).sort());
    expect((await pinOf("bob"))?.keyChange?.fingerprint).toBe(newBob.fingerprint);

    // Still held by the next run (checked again from the home; the server has nothing new).
    serveInbox([]);
    const second = await cli(["inbox"]);
    expect(second.stdout).toBe("");
    expect(second.stderr).toMatch(/2 messages from bob held/);
    expect(heldFiles()).toHaveLength(2);

    const trusted = await cli(["trust", "bob"]);
    expect(trusted.stdout).toMatch(/2 messages from bob held until now will be shown by the next inbox/);

    const third = await cli(["inbox"]);
    expect(third.code).toBe(0);
    expect(third.stderr).toBe("");
    expect(third.stdout).toMatch(/bob: new phone, same bob\n.*bob: really\n$/);
    expect(heldFiles()).toEqual([]);
    expect((await cli(["inbox"])).stdout).toBe("no new messages\n");
  });

  it("lets go of a held copy damaged on disk instead of checking it forever", async () => {
    const id = "ab".repeat(16);
    mkdirSync(join(home.location, "held", "alice"), { recursive: true });
    writeFileSync(join(home.location, "held", "alice", id), "not a frame");
    serveInbox([]);
    const { code, stdout, stderr } = await cli(["inbox"]);
    expect(code).toBe(0);
    expect(stdout).toBe("no new messages\n");
    expect(stderr).toBe("");
    expect(heldFiles()).toEqual([]);
  });

  it("still drops a message that fails under keys the server confirms (a forgery)", async () => {
    const mallory = await deliveryFrom({ ...newBob }, alice, "I am bob");
    const acked = serveInbox([mallory.frame]);
    const { code, stdout, stderr } = await cli(["inbox"]);
    expect(code).toBe(0);
    expect(stdout).toBe("no new messages\n");
    expect(stderr).toMatch(/dropped a message from bob .*verification failed/);
    expect(acked).toEqual([mallory.id]);
    expect(heldFiles()).toEqual([]);
    expect((await pinOf("bob"))?.keyChange).toBeUndefined();
  });
});
