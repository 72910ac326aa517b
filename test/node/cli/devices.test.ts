// telepound devices and devices revoke through runCli against the stub server: the listing (this home's
// session marked, --json in full), revoking by a unique id prefix, and every refusal's exit code.

import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { SessionInfo } from "../../../protocol/http.js";
import { runCli } from "../../../cli-client/cli.js";
import { parseDeviceName } from "../../../cli-client/commands/args.js";
import { type TestUser, loggedInHome, makeUser } from "./fixtures.js";
import { type StubServer, fakeIo, startStubServer, tempDir } from "./helpers.js";

vi.setConfig({ testTimeout: 30_000, hookTimeout: 60_000 });

let alice: TestUser;
let server: StubServer;
let dir: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  alice = await makeUser("alice");
});

beforeEach(async () => {
  server = await startStubServer();
  dir = await tempDir();
  await loggedInHome(dir.path, server.url, alice);
});

afterEach(async () => {
  await server.close();
  await dir.remove();
});

async function cli(argv: string[]) {
  const io = fakeIo({ TELEPOUND_SERVER: server.url, TELEPOUND_HOME: dir.path });
  const code = await runCli(argv, io);
  return { code, stdout: io.out.text(), stderr: io.err.text() };
}

const T0 = Date.UTC(2026, 11, 1, 9, 0, 0);
const DESK = "3f9a1c0e7b2d4c5e8f9a0b1c2d3e4f50";
const PHONE = "3f9a00112233445566778899aabbccdd";
const LAPTOP = "a0b1c2d3e4f5061728394a5b6c7d8e9f";

function listed(): SessionInfo[] {
  return [
    {
      id: DESK,
      deviceName: "desk",
      createdAt: T0,
      lastSeenAt: T0 + 60_000,
      expiresAt: T0 + 9e8,
      connected: false,
      current: true,
    },
    {
      id: PHONE,
      deviceName: null,
      createdAt: T0 + 1000,
      lastSeenAt: T0 + 2000,
      expiresAt: T0 + 9e8,
      connected: true,
      current: false,
    },
    {
      id: LAPTOP,
      deviceName: "old\u001b]0;laptop",
      createdAt: T0 + 5000,
      lastSeenAt: T0 + 5000,
      expiresAt: T0 + 9e8,
      connected: false,
      current: false,
    },
  ];
}

/** Serves GET /v1/sessions for alice's token and records each DELETE. */
function serveSessions(): string[] {
  const revoked: string[] = [];
  server.http.set("GET /v1/sessions", (request) =>
    request.headers.authorization === "Bearer token-of-alice"
      ? { status: 200, body: { sessions: listed().filter((session) => !revoked.includes(session.id)) } }
      : { status: 401, body: { error: { code: "unauthorized", message: "no" } } },
  );
  for (const { id } of listed()) {
    server.http.set(`DELETE /v1/sessions/${id}`, () => {
      revoked.push(id);
      return { status: 204 };
    });
  }
  return revoked;
}

describe("telepound devices", () => {
  it("lists every session with its device name, created and last seen, this one marked", async () => {
    serveSessions();
    const out = await cli(["devices"]);
    expect(out.code).toBe(0);
    const lines = out.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe("3 sessions:");
    expect(lines[1]).toMatch(
      /^\* 3f9a1c0e7b2d {2}"desk" {2}created \d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}last seen now \(this device\)$/,
    );
    expect(lines[2]).toMatch(/^ {2}3f9a00112233 {2}no device name .* last seen now \(connected\)$/);
    // A device name is the user's own words, but it came over the network: no escape reaches the terminal.
    expect(lines[3]).toContain('"old\ufffd]0;laptop"');
    expect(out.stdout).not.toContain("\u001b");
  });

  it("--json gives full ids and ISO times", async () => {
    serveSessions();
    const out = await cli(["devices", "--json"]);
    expect(out.code).toBe(0);
    const { sessions } = JSON.parse(out.stdout) as { sessions: Array<Record<string, unknown>> };
    expect(sessions[0]).toEqual({
      id: DESK,
      deviceName: "desk",
      createdAt: new Date(T0).toISOString(),
      lastSeenAt: new Date(T0 + 60_000).toISOString(),
      expiresAt: new Date(T0 + 9e8).toISOString(),
      connected: false,
      current: true,
    });
    expect(sessions.map((session) => session.id)).toEqual([DESK, PHONE, LAPTOP]);
  });

  it("exits 3 with the server's reason when this session was ended elsewhere", async () => {
    const reason =
      "this session was revoked from another of your devices (telepound devices revoke): log in again";
    server.http.set("GET /v1/sessions", () => ({
      status: 401,
      body: { error: { code: "session_ended", message: reason } },
    }));
    expect(await cli(["devices"])).toMatchObject({ code: 3, stderr: `telepound: ${reason}\n` });
  });
});

describe("telepound devices revoke", () => {
  it("ends the session a unique prefix names, with the full id", async () => {
    const revoked = serveSessions();
    const out = await cli(["devices", "revoke", "A0B1"]);
    expect(out).toMatchObject({ code: 0 });
    expect(out.stdout).toContain("ended the session a0b1c2d3e4f5");
    expect(revoked).toEqual([LAPTOP]);
    const json = await cli(["devices", "revoke", PHONE, "--json"]);
    expect(JSON.parse(json.stdout)).toEqual({ revoked: PHONE, deviceName: null });
    expect(revoked).toEqual([LAPTOP, PHONE]);
  });

  it("refuses an ambiguous prefix, this home's own session and a malformed id (exit 2), an unknown one (exit 4)", async () => {
    const revoked = serveSessions();
    expect(await cli(["devices", "revoke", "3f9a"])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("matches 2 sessions"),
    });
    expect(await cli(["devices", "revoke", "3f9a1"])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("telepound logout"),
    });
    for (const id of ["3f9", "zzzzzz", "a".repeat(33)]) {
      expect(await cli(["devices", "revoke", id])).toMatchObject({
        code: 2,
        stderr: expect.stringContaining("hex digits"),
      });
    }
    expect(await cli(["devices", "revoke", "ffff"])).toMatchObject({ code: 4 });
    expect(revoked).toEqual([]);
  });
});

describe("--device-name", () => {
  it("is checked as the server checks it, and defaults to the host name, cut to fit", () => {
    expect(parseDeviceName("work laptop")).toBe("work laptop");
    expect(() => parseDeviceName("x".repeat(65))).toThrow(/1–64 characters/);
    expect(() => parseDeviceName("bad\u001bname")).toThrow(/--device-name/);
    expect(parseDeviceName(undefined, "build-box")).toBe("build-box");
    expect(parseDeviceName(undefined, "h".repeat(80))).toBe("h".repeat(64));
    expect(parseDeviceName(undefined, "")).toBeUndefined();
  });
});
