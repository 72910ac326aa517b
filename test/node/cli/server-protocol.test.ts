// Signup and login first ask `GET /v1/health` which protocol the server speaks (PROTOCOL §1): a server of
// another version, or a URL that is no Telepound server, is refused by name (exit 5) before a password.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../../../cli-client/cli.js";
import { PROTOCOL_VERSION } from "../../../protocol/version.js";
import { type HttpAnswer, type StubServer, fakeIo, startStubServer, tempDir } from "./helpers.js";

let server: StubServer;
let dir: Awaited<ReturnType<typeof tempDir>>;
/** Every request the stub saw besides the health check. */
let others: string[];

beforeEach(async () => {
  server = await startStubServer();
  dir = await tempDir();
  others = [];
  const record = (key: string) => () => {
    others.push(key);
    return { status: 500, body: { error: { code: "internal", message: "must not be reached" } } };
  };
  for (const key of ["POST /v1/signup", "POST /v1/login", "GET /v1/kdf/alice"])
    server.http.set(key, record(key));
});

afterEach(async () => {
  await server.close();
  await dir.remove();
});

async function cli(argv: string[]) {
  const io = fakeIo({
    TELEPOUND_SERVER: server.url,
    TELEPOUND_HOME: dir.path,
    TELEPOUND_PASSWORD: "correct horse battery",
  });
  const code = await runCli(argv, io);
  return { code, stderr: io.err.text() };
}

function health(answer: HttpAnswer): void {
  server.http.set("GET /v1/health", () => answer);
}

describe("signup and login against a server of another protocol version", () => {
  it.each([["signup"], ["login"]])(
    "%s refuses protocol 1's health answer, which has no version",
    async (command) => {
      health({ status: 200, body: { ok: true, shards: 4 } });
      const { code, stderr } = await cli([command, "alice"]);
      expect(code).toBe(5);
      expect(stderr).toContain(
        `the server at ${server.url} speaks Telepound protocol 1 and this client protocol ${PROTOCOL_VERSION}: the server must be updated`,
      );
      expect(others).toEqual([]);
    },
  );

  it("refuses a later version and says to update the client", async () => {
    const later = PROTOCOL_VERSION + 1;
    health({ status: 200, body: { ok: true, protocol: later, shards: 4, somethingNew: true } });
    const { code, stderr } = await cli(["login", "alice"]);
    expect(code).toBe(5);
    expect(stderr).toContain(
      `speaks Telepound protocol ${later} and this client protocol ${PROTOCOL_VERSION}: update this client`,
    );
    expect(others).toEqual([]);
  });
});

describe("signup and login against something that is not a Telepound server", () => {
  it.each<[string, HttpAnswer, string]>([
    ["an HTML page", { status: 200, raw: new TextEncoder().encode("<html>hello</html>") }, "not JSON"],
    ["a 404", { status: 404, body: { error: { code: "not_found", message: "nope" } } }, "HTTP 404"],
    ["JSON without a version", { status: 200, body: { status: "ok" } }, "without a protocol version"],
    ["a version that is no number", { status: 200, body: { ok: true, protocol: "2", shards: 1 } }, "without"],
    ["a JSON array", { status: 200, body: [2] }, "without a protocol version"],
  ])("names %s as such", async (_, answer, why) => {
    health(answer);
    const { code, stderr } = await cli(["signup", "alice"]);
    expect(code).toBe(5);
    expect(stderr).toContain(`${server.url} is not a Telepound server: GET /v1/health`);
    expect(stderr).toContain(why);
    expect(others).toEqual([]);
  });

  it("says so when nothing answers at all", async () => {
    const url = server.url;
    await server.close();
    const io = fakeIo({
      TELEPOUND_SERVER: url,
      TELEPOUND_HOME: dir.path,
      TELEPOUND_PASSWORD: "x".repeat(12),
    });
    expect(await runCli(["login", "alice"], io)).toBe(5);
    expect(io.err.text()).toContain(`cannot reach the Telepound server at ${url}`);
    server = await startStubServer(); // for afterEach
  });
});

describe("a server of this protocol", () => {
  it("is asked before anything else, and then used as before", async () => {
    const seen: string[] = [];
    server.http.set("GET /v1/health", () => {
      seen.push("health");
      return { status: 200, body: { ok: true, protocol: PROTOCOL_VERSION, shards: 4 } };
    });
    server.http.set("POST /v1/signup", () => {
      seen.push("signup");
      return { status: 409, body: { error: { code: "conflict", message: "taken" } } };
    });
    const { code, stderr } = await cli(["signup", "alice"]);
    expect(seen).toEqual(["health", "signup"]);
    expect(code).toBe(7);
    expect(stderr).toContain("already taken");
  });
});
