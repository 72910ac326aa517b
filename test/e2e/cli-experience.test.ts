// End to end, the CLI as people and scripts use it, against `wrangler dev`: `chat` driven through a real
// pseudo-terminal (type a slash command, get a message while typing, quit), `listen` printing NDJSON
// and reconnecting by itself across a server restart, one receiver per home, and the local history.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliProcess, type CliUser, cliOk, jsonLines, newHome, runCli } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { rememberSecret } from "../support/privacy.js";
import { PtyChat } from "../support/pty-chat.js";

let server: LocalServer;
/** Every message text this file sends, for the run-wide privacy scan. */
const TEXTS = [
  "are you there?",
  "hello world",
  "before the restart",
  "typed while offline",
  "after the restart",
  "still here",
];
let alice: CliUser;
let bob: CliUser;

function user(label: string): CliUser {
  const password = `pw-${label}-${Math.random()}`;
  rememberSecret(`password of ${label}`, password);
  return { home: newHome(label), server: server.url, password };
}

beforeAll(async () => {
  server = await startLocalServer();
  for (const text of TEXTS) rememberSecret(`message "${text}"`, text);
  alice = user("alice");
  bob = user("bob");
  await cliOk(alice, ["signup", "alice"]);
  await cliOk(bob, ["signup", "bob"]);
  // Pinned both ways before the tests, so first-contact warnings do not interleave with what they check.
  await cliOk(alice, ["user", "bob"]);
  await cliOk(bob, ["user", "alice"]);
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe("chat in a terminal", () => {
  it("switches conversation, shows a message arriving mid-typing without garbling the line, and quits", async () => {
    const chat = new PtyChat(alice);
    try {
      await chat.waitFor((text) => text.includes("logged in as alice"), "the greeting");
      chat.type("/msg bob\r");
      await chat.waitFor((text) => text.includes("now talking to bob"), "the switch to bob");

      // Half a line typed, then bob's message arrives: it prints above, and the half line is redrawn.
      chat.type("hello wor");
      await chat.waitFor((text) => text.includes("bob> hello wor"), "the typed text");
      await cliOk(bob, ["send", "alice", "are you there?"]);
      await chat.waitFor((text) => /bob: are you there\?/.test(text), "bob's message");
      const afterMessage = chat.text.slice(chat.text.indexOf("bob: are you there?"));
      expect(afterMessage).toContain("bob> hello wor");
      // Sender names are coloured (the same colour every time for the same name).
      expect(chat.output).toMatch(/\x1b\[[0-9;]*m(\x1b\[[0-9;]*m)*bob/);

      // Finishing the line sends what was typed before and after the interruption, as one message.
      chat.type("ld\r");
      const received = await runCli(bob, ["inbox", "--json", "--wait", "2"]);
      expect(received.code).toBe(0);
      const texts = jsonLines(received.stdout).map((line) => line.text);
      expect(texts).toContain("hello world");

      chat.type("/history\r");
      await chat.waitFor(
        (text) => /alice → bob: hello world/.test(text) && /bob → alice: are you there\?/.test(text),
        "the conversation's history",
      );

      // The safety number alice sees for bob is the one bob sees for alice; once compared, mark it.
      const bobSees = jsonLines(await cliOk(bob, ["--json", "verify", "alice"]))[0]!.safetyNumber as string;
      chat.type("/verify bob\r");
      await chat.waitFor((text) => text.includes("type /verify bob yes"), "the safety number");
      expect(chat.text.replace(/\s+/g, " ")).toContain(bobSees);
      chat.type("/verify bob yes\r");
      await chat.waitFor((text) => /bob verified on \d{4}-/.test(text), "bob marked verified");
      expect(jsonLines(await cliOk(alice, ["--json", "user", "bob"]))[0]).toMatchObject({ verified: true });

      chat.type("/nonsense\r");
      await chat.waitFor((text) => text.includes("unknown command /nonsense"), "the unknown command error");
      chat.type("/quit\r");
      expect(await chat.exited).toBe(0);
    } finally {
      chat.pty.kill();
    }
  });
});

describe("scripts: listen", () => {
  it("prints NDJSON as messages arrive, reconnects by itself after a server restart, and acks only what it printed", async () => {
    const listener = new CliProcess(bob, ["--json", "listen"]);
    const chat = new PtyChat(alice);
    try {
      await chat.waitFor((text) => text.includes("logged in as alice"), "chat's greeting");
      await cliOk(alice, ["send", "bob", "before the restart"]);
      await listener.waitForOutput((out) => out.includes("before the restart"));

      // Only one process receives for a home: a second one is refused at once with exit 9.
      const second = await runCli(bob, ["inbox"]);
      expect(second.code).toBe(9);
      expect(second.stderr).toMatch(/already receiving.*listen/);

      const restarting = server.restart();
      // Typed in chat while the server is down: it waits for the connection and then goes out.
      await chat.waitFor((text) => text.includes("not connected ("), "chat to notice the drop", 30_000);
      chat.type("/msg bob typed while offline\r");
      await restarting;
      // Sent while listen may still be backing off: queued by the server, delivered on reconnection.
      await cliOk(alice, ["send", "bob", "after the restart"]);
      await listener.waitForOutput((out) => out.includes("after the restart"), 60_000);
      expect(listener.stderr).toMatch(/connection lost/);
      expect(listener.stderr).toMatch(/reconnected/);

      // chat saw the drop too, said so, and is back: a line typed now is delivered.
      await chat.waitFor((text) => text.includes("reconnected"), "chat to reconnect", 60_000);
      expect(chat.text).toMatch(
        /not connected: messages wait in the outbox and go out, in order, once it is back/,
      );
      await listener.waitForOutput((out) => out.includes("typed while offline"), 30_000);
      chat.type("/msg bob still here\r");
      await listener.waitForOutput((out) => out.includes("still here"), 30_000);
      chat.type("/quit\r");
      expect(await chat.exited).toBe(0);

      listener.child.kill("SIGINT");
      expect(await listener.exited).toBe(0);
      const lines = jsonLines(listener.stdout);
      const texts = lines.map((line) => line.text);
      expect(texts[0]).toBe("before the restart");
      expect(texts.slice(1, 3).sort()).toEqual(["after the restart", "typed while offline"]);
      expect(texts.slice(3)).toEqual(["still here"]);
      for (const line of lines) expect(line).toMatchObject({ from: "alice", to: "bob" });

      // Everything printed was acknowledged: nothing is left for the next receiver.
      const after = await runCli(bob, ["--json", "inbox"]);
      expect(after.code).toBe(0);
      expect(jsonLines(after.stdout)).toEqual([]);
    } finally {
      chat.pty.kill();
      listener.child.kill("SIGKILL");
    }
  });
});

describe("history", () => {
  it("keeps what was sent and received, per conversation, searchable, newest last, without a password", async () => {
    const noPassword = (u: CliUser): CliUser => ({ ...u, password: "" });
    const all = jsonLines(await cliOk(noPassword(bob), ["--json", "history", "alice"]));
    const texts = all.map((entry) => entry.text);
    // Received by chat, inbox and listen, and sent by send: in the order this device saw them.
    expect(texts.slice(0, 3)).toEqual(["are you there?", "hello world", "before the restart"]);
    expect(texts.slice(3, 5).sort()).toEqual(["after the restart", "typed while offline"]);
    expect(texts.slice(5)).toEqual(["still here"]);
    expect(all[0]).toMatchObject({ direction: "out", from: "bob", to: "alice", kind: "message" });
    expect(all[1]).toMatchObject({ direction: "in", from: "alice", to: "bob" });

    const found = jsonLines(await cliOk(noPassword(bob), ["--json", "history", "--search", "RESTART"]));
    expect(found.map((entry) => entry.text)).toEqual(["before the restart", "after the restart"]);
    const newest = jsonLines(await cliOk(noPassword(bob), ["--json", "history", "alice", "--limit", "1"]));
    expect(newest.map((entry) => entry.text)).toEqual(["still here"]);

    const human = await cliOk(noPassword(alice), ["history", "bob", "--search", "world"]);
    expect(human).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] alice → bob: hello world\n$/);
  });
});
