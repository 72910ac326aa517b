// End to end: the real CLI, as separate processes with separate homes, against `wrangler dev` started
// on a fresh persisted state: accounts, live and offline 1:1 delivery across shards, a server restart
// with messages queued, and a look at the persisted state for anything that should not be there.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliProcess, type CliUser, cliOk, jsonLines, newHome, runCli } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { filesUnder, findSecrets, rememberSecret, secretsOf } from "../support/privacy.js";
import { OPERATOR_HEADERS } from "../support/operator-token.js";

let server: LocalServer;
const passwords: string[] = [];
const texts: string[] = [];

function user(label: string, password = `pw-${label}-${Math.random().toString(36).slice(2)}`): CliUser {
  passwords.push(password);
  rememberSecret(`password of ${label}`, password);
  return { home: newHome(label), server: server.url, password };
}

function text(label: string): string {
  const value = `${label} ${Math.random().toString(36).slice(2)} secret-marker`;
  texts.push(value);
  rememberSecret(`message "${label}"`, value);
  return value;
}

async function totalConnections(): Promise<number> {
  const stats = (await (await fetch(`${server.url}/v1/stats`, { headers: OPERATOR_HEADERS })).json()) as {
    connections: Record<string, number>;
  };
  return Object.values(stats.connections).reduce((sum, n) => sum + n, 0);
}

async function waitForConnections(atLeast: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while ((await totalConnections()) < atLeast) {
    if (Date.now() > deadline) throw new Error("listener never connected");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  server = await startLocalServer();
}, 90_000);

afterAll(async () => {
  await server?.stop();
});

describe("accounts from the CLI", () => {
  it("signs up, says who is logged in, and finds other users by fingerprint", async () => {
    const alice = user("alice");
    const bob = user("bob");
    await cliOk(alice, ["signup", "alice"]);
    await cliOk(bob, ["signup", "Bob"]);
    expect(await cliOk(alice, ["whoami"])).toContain("alice");
    const found = await runCli(alice, ["user", "bob"]);
    expect(found.code).toBe(0);
    expect(found.stdout).toMatch(/([0-9a-f]{4} ){15}[0-9a-f]{4}/);
    const missing = await runCli(alice, ["user", "nobody-here"]);
    expect(missing.code).toBe(4);
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("refuses a taken name and a wrong password with one clear line", async () => {
    const taken = await runCli(user("dup"), ["signup", "ALICE"]);
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toMatch(/taken/i);
    const wrong = await runCli({ ...user("wrong"), password: "not the password" }, ["login", "alice"]);
    expect(wrong.code).toBe(3);
    expect(wrong.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("logs the same user in from a second home, and logout ends only that home's session", async () => {
    const carol = user("carol");
    await cliOk(carol, ["signup", "carol"]);
    const carolLaptop = { ...carol, home: newHome("carol-laptop") };
    await cliOk(carolLaptop, ["login", "carol"]);
    expect(await cliOk(carolLaptop, ["whoami"])).toContain("carol");
    await cliOk(carolLaptop, ["logout"]);
    expect((await runCli(carolLaptop, ["whoami"])).code).toBe(3);
    expect(await cliOk(carol, ["whoami"])).toContain("carol");
  });
});

describe("1:1 messages", () => {
  it("reach a listening recipient at once (on another shard), exactly once", async () => {
    const dave = user("dave");
    const erin = user("erin");
    await cliOk(dave, ["signup", "dave"]);
    await cliOk(erin, ["signup", "erin"]);
    const before = await totalConnections();
    const listener = new CliProcess(erin, ["inbox", "--wait", "15", "--json"]);
    await waitForConnections(before + 1);
    // The listener holds the only socket on its shard, so least-load puts the sender elsewhere.
    const message = text("hello erin");
    const sent = jsonLines(await cliOk(dave, ["--json", "send", "erin", ...message.split(" ")]));
    expect(sent[0]).toMatchObject({ status: "delivered" });
    await listener.waitForOutput((out) => out.includes(message));
    listener.child.kill("SIGINT");
    await listener.exited;
    const lines = jsonLines(listener.stdout).filter((line) => line.text === message);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      from: "dave",
      to: "erin",
      text: message,
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
    expect(Number.isNaN(Date.parse(String(lines[0]!.sentAt)))).toBe(false);
    // Acknowledged: nothing waits any more.
    expect(
      jsonLines(await cliOk(erin, ["inbox", "--json"])).filter((line) => line.text === message),
    ).toHaveLength(0);
  });

  it("are kept for an offline recipient across a server restart, in order, and reach their other home too", async () => {
    const frank = user("frank");
    const gina = user("gina");
    await cliOk(frank, ["signup", "frank"]);
    await cliOk(gina, ["signup", "gina"]);
    const messages = [text("first"), text("second"), text("third")];
    for (const message of messages) {
      const sent = jsonLines(await cliOk(frank, ["send", "gina", message, "--json"]));
      expect(sent[0]).toMatchObject({ status: "stored" });
    }

    await server.restart();

    const received = jsonLines(await cliOk(gina, ["inbox", "--json"]));
    expect(received.map((line) => line.text)).toEqual(messages);
    expect(received.every((line) => line.from === "frank" && line.to === "gina")).toBe(true);
    expect(jsonLines(await cliOk(gina, ["inbox", "--json"]))).toHaveLength(0);

    // A new machine logging in later still finds what the first had not acknowledged when it logged in.
    const late = text("late");
    await cliOk(frank, ["send", "gina", late]);
    const ginaPhone = { ...gina, home: newHome("gina-phone") };
    await cliOk(ginaPhone, ["login", "gina"]);
    expect(jsonLines(await cliOk(ginaPhone, ["inbox", "--json"])).map((line) => line.text)).toEqual([late]);
    expect(jsonLines(await cliOk(gina, ["inbox", "--json"])).map((line) => line.text)).toEqual([late]);
  }, 120_000);

  it("keep one sender's rapid messages in order", async () => {
    const hank = user("hank");
    const iris = user("iris");
    await cliOk(hank, ["signup", "hank"]);
    await cliOk(iris, ["signup", "iris"]);
    const messages = Array.from({ length: 8 }, (_, i) => text(`burst-${i}`));
    for (const message of messages) await cliOk(hank, ["send", "iris", message]);
    expect(jsonLines(await cliOk(iris, ["inbox", "--json"])).map((line) => line.text)).toEqual(messages);
  }, 120_000);
});

describe("the persisted state", () => {
  it("contains no message text and no password", async () => {
    expect(filesUnder(server.persistDir).length).toBeGreaterThan(0);
    const secrets = [...texts, ...passwords].flatMap((value) => secretsOf("secret", value));
    expect(findSecrets([server.persistDir], secrets)).toEqual([]);
  });
});
