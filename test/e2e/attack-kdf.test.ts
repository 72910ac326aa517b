// Attack tests: a malicious server trying to choose the password KDF. The proxy offers one
// shared salt at logN 15 and adds KDF fields to every answer; the real CLI must derive under its own salt.
//
// Each authKey the CLI sends is recomputed here from PROTOCOL §3.2 alone, with node:crypto: salt =
// SHA-256("telepound/v1/kdf-salt\0" ‖ str8 origin ‖ str8 username), scrypt N = 2^16, r = 8, p = 1, HKDF.

import { createHash, hkdfSync, scrypt } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, newHome, runCli } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import {
  type MaliciousServer,
  type ProxiedRequest,
  type Scenario,
  jsonBody,
  jsonResponse,
  startMaliciousServer,
} from "../support/malicious-server.js";
import { rememberSecret } from "../support/privacy.js";

/** Two users share it: with a salt per user their authKeys still differ. */
const PASSWORD = "one password for two users";
const SHARED_SALT = Buffer.alloc(16, 0x5a).toString("base64");
/** What the operator would like every client to derive under: one salt for all, half the cost. */
const STEERED_KDF = { algorithm: "scrypt", salt: SHARED_SALT, logN: 15, r: 8, p: 1 };

let server: LocalServer;
let proxy: MaliciousServer;
/** The origin the CLI addresses the proxy at, written out by hand (scheme, loopback address, port). */
let proxyOrigin: string;

beforeAll(async () => {
  rememberSecret("shared password of the KDF attack users", PASSWORD);
  server = await startLocalServer();
  proxy = await startMaliciousServer(server.url);
  proxyOrigin = `http://127.0.0.1:${new URL(proxy.url).port}`;
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
});

function user(label: string, password = PASSWORD): CliUser {
  return { home: newHome(label), server: proxy.url, password };
}

function scryptAsync(password: Buffer, salt: Buffer, logN: number): Promise<Buffer> {
  const N = 2 ** logN;
  return new Promise((resolve, reject) =>
    scrypt(password, salt, 32, { N, r: 8, p: 1, maxmem: 128 * N * 8 + 1024 * 1024 }, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

function authKeyFrom(master: Buffer): string {
  return Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), "telepound/v1/auth", 32)).toString("base64");
}

/** The authKey an honest client sends for `username` at `origin` (PROTOCOL §3.2). */
async function expectedAuthKey(origin: string, username: string, password = PASSWORD): Promise<string> {
  const str8 = (text: string) => Buffer.concat([Buffer.from([text.length]), Buffer.from(text, "ascii")]);
  const salt = createHash("sha256")
    .update("telepound/v1/kdf-salt\0", "ascii")
    .update(str8(origin))
    .update(str8(username))
    .digest();
  return authKeyFrom(await scryptAsync(Buffer.from(password.normalize("NFC"), "utf8"), salt, 16));
}

/** The authKey the operator's parameters would give: what the attack wants the CLI to send. */
async function steeredAuthKey(password = PASSWORD): Promise<string> {
  return authKeyFrom(
    await scryptAsync(Buffer.from(password, "utf8"), Buffer.from(SHARED_SALT, "base64"), 15),
  );
}

/**
 * The operator's play: GET /v1/kdf answered with the shared salt at logN 15 (the real server says 410),
 * and every JSON answer given `kdf` and `salt` fields besides its own.
 */
const steer: Scenario = {
  http: async (request, forward) => {
    const path = request.path.split("?")[0]!;
    if (path.startsWith("/v1/kdf/")) {
      const username = decodeURIComponent(path.slice("/v1/kdf/".length));
      return jsonResponse(200, { username, kdf: STEERED_KDF });
    }
    const answer = await forward();
    const text = await answer.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return new Response(text, { status: answer.status, headers: answer.headers });
    }
    if (typeof body !== "object" || body === null || Array.isArray(body))
      return jsonResponse(answer.status, body);
    return jsonResponse(answer.status, { ...body, kdf: STEERED_KDF, salt: SHARED_SALT });
  },
};

/** Requests the proxy saw from now on, for one scenario's run. */
function since(start: number): ProxiedRequest[] {
  return proxy.requests.slice(start);
}

function bodiesOf(requests: ProxiedRequest[], path: string): Array<Record<string, unknown>> {
  return requests
    .filter((request) => request.method === "POST" && request.path === path)
    .map((request) => jsonBody(request) as Record<string, unknown>);
}

describe("a server choosing the password KDF", () => {
  it("is never asked: signup and login derive under the user's own salt at the fixed cost", async () => {
    proxy.play(steer);
    const start = proxy.requests.length;
    const alice = user("kdf-alice");
    const bob = user("kdf-bob");
    await cliOk(alice, ["signup", "kdf-alice"]);
    await cliOk(bob, ["signup", "kdf-bob"]);
    // Logging in again on the same home, where the steered answers of signup were seen.
    await cliOk(alice, ["login", "kdf-alice"]);
    await cliOk(bob, ["login", "kdf-bob"]);

    const seen = since(start);
    expect(seen.filter((request) => request.path.startsWith("/v1/kdf"))).toEqual([]);
    const signups = bodiesOf(seen, "/v1/signup");
    const logins = bodiesOf(seen, "/v1/login");
    expect(signups.map((body) => body.username)).toEqual(["kdf-alice", "kdf-bob"]);
    expect(logins.map((body) => body.username)).toEqual(["kdf-alice", "kdf-bob"]);
    for (const body of signups) expect(Object.keys(body)).not.toContain("kdf");

    const [aliceKey, bobKey, steered] = await Promise.all([
      expectedAuthKey(proxyOrigin, "kdf-alice"),
      expectedAuthKey(proxyOrigin, "kdf-bob"),
      steeredAuthKey(),
    ]);
    expect([signups[0]!.authKey, logins[0]!.authKey]).toEqual([aliceKey, aliceKey]);
    expect([signups[1]!.authKey, logins[1]!.authKey]).toEqual([bobKey, bobKey]);
    // One password, two users: two salts, so one guess no longer tests both.
    expect(aliceKey).not.toBe(bobKey);
    expect([aliceKey, bobKey]).not.toContain(steered);
  }, 180_000);

  it("is never asked on the first login on a fresh machine either", async () => {
    proxy.play({});
    const carol = user("kdf-carol");
    await cliOk(carol, ["signup", "kdf-carol"]);

    proxy.play(steer);
    const start = proxy.requests.length;
    const laptop = user("kdf-carol-laptop");
    const login = await runCli(laptop, ["login", "kdf-carol", "--json"]);
    expect(login.stderr).toBe("");
    expect(login.code).toBe(0);
    expect(JSON.parse(login.stdout)).toMatchObject({ username: "kdf-carol", origin: proxyOrigin });

    const seen = since(start);
    expect(seen.filter((request) => request.path.startsWith("/v1/kdf"))).toEqual([]);
    // Nothing before the login itself but the protocol check, which carries no parameter the keys use:
    // they were derived before the server said anything about them.
    expect(seen.map((request) => `${request.method} ${request.path}`).slice(0, 2)).toEqual([
      "GET /v1/health",
      "POST /v1/login",
    ]);
    const [body] = bodiesOf(seen, "/v1/login");
    expect(body!.authKey).toBe(await expectedAuthKey(proxyOrigin, "kdf-carol"));
    expect(await cliOk(laptop, ["whoami"])).toContain("kdf-carol");
  }, 180_000);

  it("binds the account to the origin it was made at: the same server under another address refuses it", async () => {
    proxy.play(steer);
    const dora = user("kdf-dora");
    await cliOk(dora, ["signup", "kdf-dora"]);

    // The real server behind the proxy, addressed directly: the same account, another origin, another salt.
    const direct = await runCli({ ...dora, home: newHome("kdf-dora-direct"), server: server.url }, [
      "login",
      "kdf-dora",
    ]);
    expect(direct.code).toBe(3);
    expect(direct.stderr).toBe(`telepound: wrong username or password at ${server.url}\n`);

    // The password was right: through the origin it was made at, a fresh home logs in.
    await cliOk({ ...dora, home: newHome("kdf-dora-again") }, ["login", "kdf-dora"]);
  }, 180_000);
});
