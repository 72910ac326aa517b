// signup, login, logout, whoami and user through runCli against the stub server: the requests' contents,
// what the home holds afterwards (owner-only), and the exit code of every failure the contract names.

import { readFile, readdir, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { PublicKeys, SessionResponse } from "../../../protocol/http.js";
import { runCli } from "../../../cli-client/cli.js";
import { derivePasswordKeys, importIdentity, unsealPrivateKeys } from "../../../client/crypto/index.js";
import { nodeHome } from "../../../cli-client/platform/node-home.js";
import { type TestUser, loggedInHome, makeUser } from "./fixtures.js";
import { type StubServer, fakeIo, startStubServer, tempDir } from "./helpers.js";

const PASSWORD = "correct horse battery";

let bob: TestUser;
// RSA-3072 key generation and scrypt (2^16) take seconds on a loaded 2-core machine.
vi.setConfig({ testTimeout: 30_000, hookTimeout: 60_000 });

let server: StubServer;
let dir: Awaited<ReturnType<typeof tempDir>>;
/** Set when the CLI asks the stub for KDF parameters (protocol 1's GET /v1/kdf). */
let kdfAsked = false;

beforeAll(async () => {
  bob = await makeUser("bob");
});

beforeEach(async () => {
  server = await startStubServer();
  dir = await tempDir();
  kdfAsked = false;
});

afterEach(async () => {
  await server.close();
  await dir.remove();
});

async function cli(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const io = fakeIo({ TELEPOUND_SERVER: server.url, TELEPOUND_HOME: dir.path, ...env });
  const code = await runCli(argv, io);
  return { code, stdout: io.out.text(), stderr: io.err.text() };
}

/** A signup request as the stub stores it. */
interface Account {
  username: string;
  authKey: string;
  publicKeys: PublicKeys;
  sealedPrivateKeys: string;
}

/** A stub server that keeps accounts like the real one: signup stores, login reads back. */
function serveAccounts(): Map<string, Account> {
  const accounts = new Map<string, Account>();
  const sessions = new Map<string, string>();
  const sessionFor = (username: string, body: Account): SessionResponse => {
    const token = `token-${sessions.size + 1}`;
    sessions.set(token, username);
    return {
      username,
      token,
      sessionId: `sid-${sessions.size}`,
      expiresAt: Date.now() + 86_400_000,
      publicKeys: body.publicKeys,
      sealedPrivateKeys: body.sealedPrivateKeys,
    };
  };
  server.http.set("POST /v1/signup", (_, raw) => {
    const body = JSON.parse(raw) as Account;
    const { username } = body;
    if (accounts.has(username))
      return { status: 409, body: { error: { code: "conflict", message: "taken" } } };
    accounts.set(username, body);
    return { status: 201, body: sessionFor(username, body) };
  });
  // A server that still offers KDF parameters: a protocol 2 client never asks for them.
  server.http.set("GET /v1/kdf/alice", () => {
    kdfAsked = true;
    return {
      status: 200,
      body: {
        username: "alice",
        kdf: { algorithm: "scrypt", salt: "AAAAAAAAAAAAAAAAAAAAAA==", logN: 15, r: 8, p: 1 },
      },
    };
  });
  server.http.set("POST /v1/login", (_, raw) => {
    const { username, authKey } = JSON.parse(raw) as { username: string; authKey: string };
    const account = accounts.get(username);
    if (!account || account.authKey !== authKey) {
      return {
        status: 401,
        body: { error: { code: "unauthorized", message: "wrong username or password" } },
      };
    }
    return { status: 200, body: sessionFor(username, account) };
  });
  server.http.set("GET /v1/whoami", (request) => {
    const username = sessions.get((request.headers.authorization ?? "").replace(/^Bearer /, ""));
    if (!username) return { status: 401, body: { error: { code: "unauthorized", message: "no session" } } };
    return { status: 200, body: { username, sessionId: "sid", expiresAt: Date.now() + 1000 } };
  });
  server.http.set("POST /v1/logout", (request) => {
    const token = (request.headers.authorization ?? "").replace(/^Bearer /, "");
    if (!sessions.delete(token))
      return { status: 401, body: { error: { code: "unauthorized", message: "no session" } } };
    return { status: 204 };
  });
  return accounts;
}

describe("signup", () => {
  it("sends a sealed identity the password opens, and leaves an owner-only logged-in home", async () => {
    const accounts = serveAccounts();
    const { code, stdout, stderr } = await cli(["signup", "Alice", "--json"], {
      TELEPOUND_PASSWORD: PASSWORD,
    });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const request = accounts.get("alice")!;
    expect(request.username).toBe("alice");
    expect(request.authKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);

    expect(Object.keys(request).sort()).toEqual([
      "authKey",
      "deviceName",
      "publicKeys",
      "sealedPrivateKeys",
      "username",
    ]);
    // By default the session is named for this machine.
    expect((request as Account & { deviceName?: string }).deviceName).toBe(hostname().slice(0, 64));
    const origin = new URL(server.url).origin;
    const keys = await derivePasswordKeys(PASSWORD, { origin, username: "alice" });
    expect(Buffer.from(keys.authKey).toString("base64")).toBe(request.authKey);
    const privateKeys = unsealPrivateKeys(keys.sealingKey, request.sealedPrivateKeys);
    const { publicKeys } = request;
    importIdentity({
      encryptionPublic: publicKeys.encryption,
      signingPublic: publicKeys.signing,
      ...privateKeys,
    });

    const printed = JSON.parse(stdout);
    expect(printed).toMatchObject({ username: "alice", server: server.url, origin });
    expect(printed.fingerprint).toMatch(/^([0-9a-f]{4} ){15}[0-9a-f]{4}$/);
    expect((await stat(dir.path)).mode & 0o777).toBe(0o700);
    for (const name of await readdir(dir.path))
      expect((await stat(join(dir.path, name))).mode & 0o777).toBe(0o600);
    expect(await nodeHome(dir.path).read("session.json")).toMatchObject({ token: "token-1", origin });
  });

  it("exits 7 when the name is taken, 2 for a short password, 2 without any password source", async () => {
    serveAccounts();
    expect((await cli(["signup", "alice"], { TELEPOUND_PASSWORD: PASSWORD })).code).toBe(0);
    const taken = await cli(["--home", join(dir.path, "other"), "signup", "alice"], {
      TELEPOUND_PASSWORD: PASSWORD,
    });
    expect(taken).toMatchObject({ code: 7, stderr: "telepound: the username alice is already taken\n" });
    const short = await cli(["--home", join(dir.path, "short"), "signup", "carol"], {
      TELEPOUND_PASSWORD: "hunter2",
    });
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/at least 8 characters/);
    const none = await cli(["--home", join(dir.path, "none"), "signup", "carol"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/set TELEPOUND_PASSWORD/);
  });
});

describe("login, whoami, logout", () => {
  it("logs in with the right password only, then works without it until logout", async () => {
    serveAccounts();
    const elsewhere = join(dir.path, "signup-home");
    expect((await cli(["--home", elsewhere, "signup", "alice"], { TELEPOUND_PASSWORD: PASSWORD })).code).toBe(
      0,
    );
    const home = join(dir.path, "laptop");

    const wrong = await cli(["--home", home, "login", "alice"], { TELEPOUND_PASSWORD: "not the password" });
    expect(wrong).toMatchObject({
      code: 3,
      stderr: `telepound: wrong username or password at ${server.url}\n`,
    });

    expect((await cli(["--home", home, "login", "alice"], { TELEPOUND_PASSWORD: PASSWORD })).code).toBe(0);
    expect(kdfAsked).toBe(false);
    expect(await cli(["--home", home, "whoami"])).toMatchObject({ code: 0, stdout: "alice\n" });
    // Each login is a new device, numbering its messages from 1 again.
    const device = async (folder: string) => (await nodeHome(folder).read("state.json"))?.deviceId;
    const laptop = await device(home);
    expect(laptop).toMatch(/^[0-9a-f]{32}$/);
    expect(laptop).not.toBe(await device(elsewhere));
    expect((await cli(["--home", home, "login", "alice"], { TELEPOUND_PASSWORD: PASSWORD })).code).toBe(0);
    expect(await device(home)).not.toBe(laptop);
    expect((await nodeHome(home).read("state.json"))?.sequences).toEqual([]);

    const out = await cli(["--home", home, "logout"]);
    expect(out.code).toBe(0);
    expect(await readdir(home)).toEqual([]);
    expect(await cli(["--home", home, "whoami"])).toMatchObject({
      code: 3,
      stderr: expect.stringMatching(/not logged in/),
    });
  });

  it("exits 3 for an unknown user at login, which the server answers like a wrong password", async () => {
    serveAccounts();
    const { code, stderr } = await cli(["login", "alice"], { TELEPOUND_PASSWORD: PASSWORD });
    expect(code).toBe(3);
    expect(stderr).toBe(`telepound: wrong username or password at ${server.url}\n`);
  });

  it("derives the keys for the origin of --server, however it is spelled", async () => {
    serveAccounts();
    const url = new URL(server.url);
    expect((await cli(["signup", "alice"], { TELEPOUND_PASSWORD: PASSWORD })).code).toBe(0);
    // Another scheme case and a trailing slash: one origin, so one salt and the same keys.
    const spelled = `HTTP://${url.hostname.toUpperCase()}:${url.port}/`;
    const home = join(dir.path, "laptop");
    const login = await cli(["--server", spelled, "--home", home, "login", "alice", "--json"], {
      TELEPOUND_PASSWORD: PASSWORD,
    });
    expect(login.stderr).toBe("");
    expect(JSON.parse(login.stdout)).toMatchObject({ origin: url.origin });
  });

  it("exits 6 with the wait when login is rate limited", async () => {
    server.http.set("POST /v1/login", () => ({
      status: 429,
      headers: { "retry-after": "120" },
      body: { error: { code: "rate_limited", message: "too many failed logins" } },
    }));
    const { code, stderr } = await cli(["login", "alice"], { TELEPOUND_PASSWORD: PASSWORD });
    expect(code).toBe(6);
    expect(stderr).toBe("telepound: rate limited by the server: try again in 120 seconds\n");
  });

  it("exits 8 when the server pairs our sealed keys with someone else's public keys", async () => {
    const accounts = serveAccounts();
    expect((await cli(["signup", "alice"], { TELEPOUND_PASSWORD: PASSWORD })).code).toBe(0);
    accounts.get("alice")!.publicKeys = bob.publicKeys;
    const { code, stderr } = await cli(["--home", join(dir.path, "h2"), "login", "alice"], {
      TELEPOUND_PASSWORD: PASSWORD,
    });
    expect(code).toBe(8);
    expect(stderr).toMatch(/does not belong to/);
  });

  it("refuses to log a home in as someone else while it is logged in (exit 2)", async () => {
    serveAccounts();
    expect((await cli(["signup", "alice"], { TELEPOUND_PASSWORD: PASSWORD })).code).toBe(0);
    const { code, stderr } = await cli(["login", "bob"], { TELEPOUND_PASSWORD: PASSWORD });
    expect(code).toBe(2);
    expect(stderr).toMatch(/logged in as alice: run "telepound logout" first/);
  });

  it("logout cleans up when the session was already revoked, and keeps everything when the server is down", async () => {
    const alice = await makeUser("alice");
    await loggedInHome(dir.path, server.url, alice, [bob]);
    server.http.set("POST /v1/logout", () => ({
      status: 401,
      body: { error: { code: "unauthorized", message: "x" } },
    }));
    expect((await cli(["logout"])).code).toBe(0);
    expect(await readdir(dir.path)).toEqual(["contacts.json"]);

    await loggedInHome(dir.path, server.url, alice, [bob]);
    await server.close();
    const down = await cli(["logout"]);
    expect(down.code).toBe(5);
    expect(down.stderr).toMatch(/cannot reach the Telepound server/);
    expect((await readdir(dir.path)).sort()).toEqual([
      "contacts.json",
      "identity.json",
      "session.json",
      "state.json",
    ]);
    server = await startStubServer();
  });
});

describe("device names and the session cap", () => {
  it("login sends --device-name (by default the host name) and says which sessions the cap ended", async () => {
    serveAccounts();
    const answered = server.http.get("POST /v1/login")!;
    const sent: Array<{ deviceName?: string }> = [];
    const ended = {
      id: "0123456789abcdef0123456789abcdef",
      deviceName: "old\u001b[31mserver",
      createdAt: Date.UTC(2026, 0, 1),
      lastSeenAt: Date.UTC(2026, 0, 2),
    };
    server.http.set("POST /v1/login", async (request, raw, bytes) => {
      sent.push(JSON.parse(raw) as { deviceName?: string });
      const answer = await answered(request, raw, bytes);
      return answer.status === 200
        ? { ...answer, body: { ...(answer.body as object), endedSessions: sent.length === 1 ? [ended] : [] } }
        : answer;
    });
    const env = { TELEPOUND_PASSWORD: PASSWORD };
    expect(
      (await cli(["--home", join(dir.path, "a"), "signup", "alice", "--device-name", "desk"], env)).code,
    ).toBe(0);

    const laptop = await cli(
      ["--home", join(dir.path, "b"), "login", "alice", "--device-name", "work laptop"],
      env,
    );
    expect(laptop.code).toBe(0);
    expect(sent[0]!.deviceName).toBe("work laptop");
    expect(laptop.stdout).toContain("the account was at its session limit: ended the session 01234567");
    expect(laptop.stdout).toContain('"old\ufffd[31mserver"');
    expect(laptop.stdout).not.toContain("\u001b");

    const json = await cli(["--home", join(dir.path, "c"), "login", "alice", "--json"], env);
    expect(sent[1]!.deviceName).toBe(hostname().slice(0, 64));
    expect(JSON.parse(json.stdout)).toMatchObject({ deviceName: hostname().slice(0, 64), endedSessions: [] });

    const bad = await cli(
      ["--home", join(dir.path, "d"), "login", "alice", "--device-name", "x".repeat(65)],
      env,
    );
    expect(bad).toMatchObject({ code: 2, stderr: expect.stringContaining("--device-name") });
    expect(sent).toHaveLength(2);
  });
});

describe("user", () => {
  // Valid usernames that are also names on Object.prototype: a plain object keyed by them would find the
  // prototype's property, or (for __proto__) set the prototype instead of keeping a pin.
  for (const name of ["__proto__", "constructor", "tostring", "hasownproperty"]) {
    it(`pins ${name} like any other user, and refuses changed keys for it with exit 8`, async () => {
      const alice = await makeUser("alice");
      const home = await loggedInHome(dir.path, server.url, alice, []);
      let published = bob.publicKeys;
      server.http.set(`GET /v1/users/${name}`, () => ({
        status: 200,
        body: { username: name, publicKeys: published },
      }));
      const first = await cli(["user", name]);
      expect(first.code).toBe(0);
      expect(first.stdout).toContain(bob.fingerprint);
      expect((await home.read("contacts.json"))?.contacts.get(name)?.fingerprint).toBe(bob.fingerprint);
      // On disk it is an own key of the JSON object, so another process reads it back.
      const onDisk = JSON.parse(await readFile(join(dir.path, "contacts.json"), "utf8"));
      expect(Object.hasOwn(onDisk.contacts, name)).toBe(true);
      expect((await cli(["user", name, "--json"])).stdout).toContain(`"newlyPinned":false`);

      published = alice.publicKeys;
      const changed = await cli(["user", name]);
      expect(changed.code).toBe(8);
      expect(changed.stderr).toContain(`KEY MISMATCH for ${name}`);
      expect((await home.read("contacts.json"))?.contacts.get(name)?.fingerprint).toBe(bob.fingerprint);
    });
  }

  it("prints the fingerprint and pins it; then refuses changed keys with exit 8 and keeps the pin", async () => {
    const alice = await makeUser("alice");
    const home = await loggedInHome(dir.path, server.url, alice, []);
    let published = bob.publicKeys;
    server.http.set("GET /v1/users/bob", () => ({
      status: 200,
      body: { username: "bob", publicKeys: published },
    }));

    const first = await cli(["user", "bob"]);
    expect(first).toMatchObject({ code: 0, stdout: `bob's key fingerprint: ${bob.fingerprint}\n` });
    expect((await home.read("contacts.json"))?.contacts.get("bob")?.fingerprint).toBe(bob.fingerprint);
    expect((await cli(["user", "bob", "--json"])).stdout).toContain(`"newlyPinned":false`);

    published = alice.publicKeys;
    const changed = await cli(["user", "bob"]);
    expect(changed.code).toBe(8);
    expect(changed.stderr).toMatch(/KEY MISMATCH for bob/);
    expect(changed.stderr).toContain(alice.fingerprint);
    expect((await home.read("contacts.json"))?.contacts.get("bob")?.fingerprint).toBe(bob.fingerprint);
  });

  it("exits 4 for an unknown user and 3 for a revoked session", async () => {
    const alice = await makeUser("alice");
    await loggedInHome(dir.path, server.url, alice, []);
    expect((await cli(["user", "nobody"])).code).toBe(4);
    server.http.set("GET /v1/users/bob", () => ({
      status: 401,
      body: { error: { code: "unauthorized", message: "x" } },
    }));
    const revoked = await cli(["user", "bob"]);
    expect(revoked).toMatchObject({
      code: 3,
      stderr: "telepound: your session has expired or was revoked: log in again\n",
    });
  });
});
