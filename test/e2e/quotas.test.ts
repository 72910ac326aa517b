// Queue quotas through the real CLI against `wrangler dev` with small settings: a send over the sender's
// share of a recipient's queue, or over the recipient's whole queue, exits with the documented code and
// says why; nothing already stored is lost, the recipient drains it all in order, and then there is room.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExitCode } from "../../client/errors.js";
import { type CliUser, cliOk, jsonLines, newHome, runCli } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";

let server: LocalServer;

beforeAll(async () => {
  server = await startLocalServer({
    vars: { QUEUE_ITEMS_PER_SENDER: "3", QUEUE_ITEMS_PER_RECIPIENT: "5" },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

function user(name: string): CliUser {
  return { home: newHome(name), server: server.url, password: `${name}-password-1` };
}

describe("queue quotas", () => {
  it("refuse a send over quota with exit code 7 and a clear message; the recipient still drains everything", async () => {
    const [alice, carol, bob] = [user("alice"), user("carol"), user("bob")];
    for (const [who, name] of [
      [alice, "alice"],
      [carol, "carol"],
      [bob, "bob"],
    ] as const)
      await cliOk(who, ["signup", name]);
    const sent: string[] = [];
    for (let i = 1; i <= 3; i++) {
      await cliOk(alice, ["send", "bob", `from alice ${i}`]);
      sent.push(`from alice ${i}`);
    }
    // Alice's share of Bob's queue is full: her fourth message is refused, Carol's still go through.
    const overShare = await runCli(alice, ["send", "bob", "from alice 4"]);
    expect(overShare.code).toBe(ExitCode.refused);
    expect(overShare.stderr).toContain("not sent: bob has not yet received what you sent before");
    for (let i = 1; i <= 2; i++) {
      await cliOk(carol, ["send", "bob", `from carol ${i}`]);
      sent.push(`from carol ${i}`);
    }
    // Bob's whole queue is full now.
    const overQueue = await runCli(carol, ["send", "bob", "from carol 3"]);
    expect(overQueue.code).toBe(ExitCode.refused);
    expect(overQueue.stderr).toContain("not sent: bob's queue is full");

    const shown = jsonLines(await cliOk(bob, ["inbox", "--json"])).map((line) => line.text);
    expect(shown).toEqual(sent);
    // Once Bob has read them, there is room again for both.
    await cliOk(alice, ["send", "bob", "from alice 5"]);
    await cliOk(carol, ["send", "bob", "from carol 4"]);
    const later = jsonLines(await cliOk(bob, ["inbox", "--json"])).map((line) => line.text);
    expect(later).toEqual(["from alice 5", "from carol 4"]);
  });
});
