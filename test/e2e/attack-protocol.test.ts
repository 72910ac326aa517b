// The protocol version and the answers to refused uploads, with the real CLI through the malicious-server
// harness: a server announcing another protocol (or none) is refused before any password-derived key is
// sent, and an upload the server refuses is answered by id, so the CLI stops at once instead of waiting.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, newHome, runCli } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { type MaliciousServer, jsonResponse, startMaliciousServer } from "../support/malicious-server.js";

let server: LocalServer;
let proxy: MaliciousServer;
let alice: CliUser;

beforeAll(async () => {
  server = await startLocalServer();
  proxy = await startMaliciousServer(server.url);
  alice = { home: newHome("alice"), server: proxy.url, password: "alice-password-1" };
  await cliOk(alice, ["signup", "alice"]);
  await cliOk({ home: newHome("bob"), server: proxy.url, password: "bob-password-12" }, ["signup", "bob"]);
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
});

/** The paths of the HTTP requests the proxy saw from `from` on. */
const pathsSince = (from: number) => proxy.requests.slice(from).map((request) => request.path);

describe("a server that announces another protocol", () => {
  it("is refused at signup, before the account is sent", async () => {
    proxy.play({
      http: async (request, forward) =>
        request.path === "/v1/health" ? jsonResponse(200, { ok: true, shards: 4 }) : forward(),
    });
    const from = proxy.requests.length;
    const carol = { home: newHome("carol"), server: proxy.url, password: "carol-password-1" };
    const result = await runCli(carol, ["signup", "carol"]);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(
      `the server at ${proxy.url} speaks Telepound protocol 1 and this client protocol 3: the server must be updated`,
    );
    expect(pathsSince(from)).toEqual(["/v1/health"]);
  });

  it("is refused at login, before anything derived from the password is sent", async () => {
    proxy.play({
      http: async (request, forward) =>
        request.path === "/v1/health" ? jsonResponse(200, { ok: true, protocol: 4, shards: 4 }) : forward(),
    });
    const from = proxy.requests.length;
    const laptop = { ...alice, home: newHome("alice-laptop") };
    const result = await runCli(laptop, ["login", "alice"]);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(
      "speaks Telepound protocol 4 and this client protocol 3: update this client",
    );
    expect(pathsSince(from)).toEqual(["/v1/health"]);
  });

  it("is named as no Telepound server when its health answer is not one", async () => {
    proxy.play({
      http: async (request, forward) =>
        request.path === "/v1/health"
          ? new Response("<html>welcome to nginx</html>", { headers: { "content-type": "text/html" } })
          : forward(),
    });
    const from = proxy.requests.length;
    const laptop = { ...alice, home: newHome("alice-laptop") };
    const result = await runCli(laptop, ["login", "alice"]);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(`${proxy.url} is not a Telepound server: GET /v1/health answered with`);
    expect(pathsSince(from)).toEqual(["/v1/health"]);
  });
});

describe("an upload the server refuses", () => {
  it("is answered by id even when cut short right after its id: the send fails at once", async () => {
    // Cut every upload after its message id; the real server sees only tag, version, kind and id.
    proxy.play({
      toServer: (frame) => (typeof frame === "string" ? [frame] : [frame.subarray(0, 19)]),
    });
    const started = Date.now();
    const result = await runCli(alice, ["send", "bob", "cut short"]);
    const elapsed = Date.now() - started;
    expect(result.code).toBe(5);
    expect(result.stderr).toContain("the server rejected a frame: malformed envelope");
    // Without the id the CLI would wait for its 30 s answer timeout.
    expect(elapsed).toBeLessThan(20_000);
    expect(result.stderr).not.toContain("in time");
  });

  it("of envelope version 1 is refused by id with words that say which versions meet", async () => {
    proxy.play({
      toServer: (frame) => {
        if (typeof frame === "string" || frame[0] !== 0x01) return [frame];
        const old = frame.slice();
        old[1] = 1;
        return [old];
      },
    });
    const result = await runCli(alice, ["send", "bob", "from the past"]);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(
      "this client seals Telepound envelopes of version 1 and this server takes version 2: update the client",
    );
    proxy.play({});
    await cliOk(alice, ["send", "bob", "and now honestly"]);
  });
});
