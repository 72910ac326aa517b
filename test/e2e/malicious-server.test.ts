// The malicious-server harness itself: honest, it is invisible (the real CLI signs up, sends and receives
// through it); playing, it can rewrite an answer, drop a frame and invent one. Attack tests rely on both.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliProcess, type CliUser, cliOk, jsonLines, newHome, runCli } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { type MaliciousServer, jsonResponse, startMaliciousServer } from "../support/malicious-server.js";

let server: LocalServer;
let proxy: MaliciousServer;
let alice: CliUser;
let bob: CliUser;

beforeAll(async () => {
  server = await startLocalServer();
  proxy = await startMaliciousServer(server.url);
  alice = { home: newHome("alice"), server: proxy.url, password: "alice-password-1" };
  bob = { home: newHome("bob"), server: proxy.url, password: "bob-password-12" };
  await cliOk(alice, ["signup", "alice"]);
  await cliOk(bob, ["signup", "bob"]);
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
});

describe("the malicious-server harness", () => {
  it("is invisible while honest: a message goes through it both ways", async () => {
    proxy.play({});
    await cliOk(alice, ["send", "bob", "through the proxy"]);
    const inbox = jsonLines(await cliOk(bob, ["inbox", "--json"]));
    expect(inbox.map((item) => item.text)).toContain("through the proxy");
    expect(proxy.sockets.length).toBeGreaterThan(0);
  });

  it("can answer an HTTP request with a body of its own", async () => {
    proxy.play({
      http: async (request, forward) =>
        request.path.startsWith("/v1/users/")
          ? jsonResponse(404, { error: { code: "not_found", message: "invented by the proxy" } })
          : forward(),
    });
    const result = await runCli(alice, ["user", "bob"]);
    // bob exists: only the proxy's invented 404 can make the CLI say otherwise.
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("no such user: bob");
  });

  it("can drop every delivery and invent frames", async () => {
    proxy.play({
      toClient: (frame, socket) => {
        if (typeof frame !== "string") return [];
        if (frame.includes('"welcome"')) socket.toClient('{"type":"pong"}');
        return [frame];
      },
    });
    await cliOk(alice, ["send", "bob", "never seen"]);
    const listener = new CliProcess(bob, ["listen", "--json"]);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(listener.stdout).not.toContain("never seen");
    } finally {
      listener.child.kill("SIGINT");
      await listener.exited;
    }
    proxy.play({});
    const inbox = jsonLines(await cliOk(bob, ["inbox", "--json"]));
    expect(inbox.map((item) => item.text)).toContain("never seen");
  });
});
