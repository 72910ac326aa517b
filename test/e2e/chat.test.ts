// End to end, `chat` as a conversation view, in a real pseudo-terminal against `wrangler dev`: opening
// a conversation shows its history with a "new since last time" line, messages for another conversation
// are marked unread and listed by /list, /reply goes to the last sender, Tab completes, a wrapped line of
// wide characters is redrawn without a stale row, /file shows its progress, and with the server down chat
// still opens, queues what is typed in order, answers slash commands at once and is back within about a
// second of the server; what is still in the outbox when chat quits offline goes out with the next chat.

import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, jsonLines, newHome, runCli } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { rememberSecret } from "../support/privacy.js";
import { PtyChat } from "../support/pty-chat.js";
import { VtScreen } from "../support/vt-screen.js";

let server: LocalServer;
const TEXTS = [
  "first from bob",
  "second from bob",
  "hi from carol",
  "thanks carol",
  "while you were away",
  "queued one",
  "queued two",
  "after the outage",
  "wide one",
  "kept one",
  "kept two",
];
let alice: CliUser;
let bob: CliUser;
let carol: CliUser;

function user(label: string): CliUser {
  const password = `pw-${label}-${Math.random()}`;
  rememberSecret(`password of ${label}`, password);
  return { home: newHome(label), server: server.url, password };
}

async function inboxTexts(who: CliUser): Promise<string[]> {
  const received = await runCli(who, ["--json", "inbox", "--wait", "2"]);
  expect(received.code).toBe(0);
  return jsonLines(received.stdout).map((line) => String(line.text));
}

/** The text after the last occurrence of `marker`: what the terminal showed since. */
function after(text: string, marker: string): string {
  const at = text.lastIndexOf(marker);
  return at === -1 ? "" : text.slice(at);
}

beforeAll(async () => {
  server = await startLocalServer();
  for (const text of TEXTS) rememberSecret(`message "${text}"`, text);
  alice = user("alice");
  bob = user("bob");
  carol = user("carol");
  for (const [who, name] of [
    [alice, "alice"],
    [bob, "bob"],
    [carol, "carol"],
  ] as const)
    await cliOk(who, ["signup", name]);
  // Pinned every way before the tests, so first-contact warnings do not interleave with what they check.
  await cliOk(alice, ["user", "bob"]);
  await cliOk(alice, ["user", "carol"]);
  await cliOk(bob, ["user", "alice"]);
  await cliOk(carol, ["user", "alice"]);
  await cliOk(alice, ["group", "create", "team"]);
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe("chat as a conversation view", () => {
  it("shows history on /msg with a new-since-last-time line, unread marks, /list, /reply and Tab completion", async () => {
    await cliOk(bob, ["send", "alice", "first from bob"]);
    let chat = new PtyChat(alice);
    try {
      await chat.waitFor((text) => text.includes("logged in as alice"), "the greeting");
      // Bob's message came while chat was closed: it is counted, and shown where bob's conversation opens.
      await chat.waitFor((text) => text.includes("unread since last time: bob 1"), "the unread summary");

      // Tab completes the command, then the user.
      chat.type("/ms\t");
      await chat.waitFor((text) => text.includes("> /msg "), "the completed command");
      chat.type("b\t");
      await chat.waitFor((text) => text.includes("> /msg bob "), "the completed user");
      chat.type("\r");
      await chat.waitFor((text) => text.includes("now talking to bob"), "the switch to bob");
      await chat.waitFor(
        (text) => /bob → alice: first from bob/.test(after(text, "now talking to bob")),
        "bob's history",
      );
      const opened = after(chat.text, "now talking to bob");
      expect(opened.indexOf("── new since last time (1 unread) ──")).toBeGreaterThan(-1);
      expect(opened.indexOf("── new since last time")).toBeLessThan(opened.indexOf("first from bob"));

      // A direct message from carol while talking to bob: marked, counted in the prompt, not mistaken for bob's.
      await cliOk(carol, ["send", "alice", "hi from carol"]);
      await chat.waitFor(
        (text) => /\[1 unread\] \[[^\]]+\] carol: hi from carol/.test(text),
        "carol's marked message",
      );
      await chat.waitFor((text) => text.includes("bob [carol 1]> "), "the unread count in the prompt");

      chat.type("/list\r");
      await chat.waitFor((text) => /carol\s+1 unread\s+last /.test(after(text, "/list")), "the list");
      const list = after(chat.text, "/list");
      expect(list).toMatch(/\* bob\s+last /);
      expect(list).toMatch(/ #team\b/);
      // Most recent first: carol wrote last.
      expect(list.indexOf("carol")).toBeLessThan(list.indexOf("* bob"));

      // Groups complete too.
      chat.type("/gr\t");
      await chat.waitFor((text) => text.includes("> /group "), "the completed /group");
      chat.type("te\t");
      await chat.waitFor((text) => text.includes("> /group team "), "the completed group");
      chat.type("\x15"); // Ctrl-U: the line is dropped, not sent.

      // /reply opens the last sender's conversation, its history shown; /reply TEXT sends there.
      chat.type("/reply\r");
      await chat.waitFor((text) => text.includes("now talking to carol"), "the switch to carol");
      await chat.waitFor(
        (text) => /carol → alice: hi from carol/.test(after(text, "now talking to carol")),
        "carol's history",
      );
      await chat.waitFor((text) => text.includes("carol> "), "carol's prompt, nothing unread elsewhere");
      chat.type("/reply thanks carol\r");
      expect(await inboxTexts(carol)).toEqual(["thanks carol"]);
      chat.type("/quit\r");
      expect(await chat.exited).toBe(0);

      // Next time: only what came since is new, and the line sits between the old and the new.
      await cliOk(bob, ["send", "alice", "while you were away"]);
      chat = new PtyChat(alice);
      await chat.waitFor((text) => text.includes("unread since last time: bob 1"), "the new unread summary");
      chat.type("/msg bob\r");
      await chat.waitFor(
        (text) => /while you were away/.test(after(text, "now talking to bob")),
        "bob's history",
      );
      const reopened = after(chat.text, "now talking to bob");
      const marker = reopened.indexOf("── new since last time");
      expect(reopened.indexOf("first from bob")).toBeGreaterThan(-1);
      expect(reopened.indexOf("first from bob")).toBeLessThan(marker);
      expect(marker).toBeLessThan(reopened.indexOf("while you were away"));
      chat.type("/quit\r");
      expect(await chat.exited).toBe(0);
    } finally {
      chat.pty.kill();
    }
  });

  it("redraws a wrapped line of wide characters without a stale row when a message arrives", async () => {
    const cols = 40;
    const chat = new PtyChat(alice, [], { cols, rows: 30 });
    try {
      await chat.waitFor((text) => text.includes("logged in as alice"), "the greeting");
      chat.type("/msg bob\r");
      await chat.waitFor((text) => text.includes("now talking to bob"), "the switch to bob");
      await chat.waitFor((text) => text.endsWith("bob> "), "the prompt");
      // 96 columns of CJK and emoji after a 5-column prompt: three rows of a 40-column terminal.
      const typed = "漢字かな😀".repeat(8) + "終";
      chat.type(typed);
      await chat.waitFor((text) => text.includes("終"), "the typed line");
      await cliOk(bob, ["send", "alice", "wide one"]);
      await chat.waitFor((text) => text.includes("bob: wide one"), "bob's message");
      await new Promise((resolve) => setTimeout(resolve, 300));

      const screen = new VtScreen(cols);
      screen.feed(chat.output);
      const rows = screen.rows;
      const messageRow = rows.findIndex((row) => row.endsWith("] bob: wide one"));
      expect(messageRow, `the screen:\n${rows.join("\n")}`).toBeGreaterThan(-1);
      // Nothing of the typed line is left above the message; below it, the line is drawn whole, once.
      expect(rows.slice(0, messageRow).filter((row) => row.includes("漢"))).toEqual([]);
      const below = rows.slice(messageRow + 1).filter((row) => row !== "");
      expect(below.join("")).toBe(`bob> ${typed}`);
      expect(below).toHaveLength(3);
      chat.type("\x15/quit\r");
      expect(await chat.exited).toBe(0);
    } finally {
      chat.pty.kill();
    }
  });

  it("shows a file's progress in the prompt while it is sent", async () => {
    const folder = newHome("file-src");
    const path = join(folder, "big.bin");
    writeFileSync(path, randomBytes(24 * 1024 * 1024));
    const chat = new PtyChat(alice);
    try {
      await chat.waitFor((text) => text.includes("logged in as alice"), "the greeting");
      chat.type("/msg bob\r");
      await chat.waitFor((text) => text.includes("now talking to bob"), "the switch to bob");
      chat.type(`/file ${path}\r`);
      await chat.waitFor((text) => text.includes("sent big.bin"), "the file sent", 120_000);
      const percents = [...chat.text.matchAll(/sending big\.bin (\d+)%/g)].map((match) => Number(match[1]));
      // It starts at 0 and climbs through the middle, never backwards.
      expect(percents[0]).toBe(0);
      expect(percents.some((value) => value > 0 && value < 100)).toBe(true);
      expect([...percents].sort((a, b) => a - b)).toEqual(percents);
      chat.type("/quit\r");
      expect(await chat.exited).toBe(0);
      // Sent is forgotten before chat ends: a copy left in the home's outbox would go out again.
      expect(existsSync(join(alice.home, "outbox.json"))).toBe(false);
    } finally {
      chat.pty.kill();
    }
    const received = await runCli(bob, ["--json", "inbox", "--wait", "2"]);
    expect(
      jsonLines(received.stdout).some((line) => (line.file as { size?: number })?.size === 24 * 1024 * 1024),
    ).toBe(true);
  }, 180_000);
});

describe("chat while the server is away", () => {
  it("opens offline with the history, queues sends in order, answers /help at once, and is back within 2 s of the server", async () => {
    let serverUp = true;
    const stop = async () => {
      await server.stop();
      serverUp = false;
    };
    const start = async () => {
      await server.start();
      serverUp = true;
    };
    await stop();
    const chat = new PtyChat(alice);
    try {
      await chat.waitFor((text) => text.includes("logged in as alice"), "the greeting, with no server");
      await chat.waitFor((text) => /\(offline, next try in \d s\)/.test(text), "the offline prompt");
      // The history is local: opening a pinned contact's conversation works offline.
      chat.type("/msg bob\r");
      await chat.waitFor(
        (text) => /first from bob/.test(after(text, "now talking to bob")),
        "bob's history offline",
      );
      chat.type("queued one\r");
      chat.type("queued two\r");
      await chat.waitFor((text) => text.includes("2 in outbox"), "the outbox in the prompt");
      expect(chat.text).toContain("messages wait in the outbox and go out, in order, once it is back");

      // A slash command does not wait behind the sends: /help answers while they still wait.
      const helpAt = Date.now();
      chat.type("/help\r");
      await chat.waitFor(
        (text) => text.includes("/reconnect          try to reach the server now"),
        "the help",
        2000,
      );
      expect(Date.now() - helpAt).toBeLessThan(2000);
      chat.type("/reconnect\r");
      await chat.waitFor(
        (text) => text.includes("trying to reach the server now"),
        "/reconnect's answer",
        2000,
      );

      // Down long enough that a doubling back-off would now wait many seconds.
      await new Promise((resolve) => setTimeout(resolve, 8000));
      await start();
      const backAt = Date.now();
      await chat.waitFor(
        (text) => text.includes("reconnected; sending 2 waiting in the outbox"),
        "the reconnection",
        10_000,
      );
      const reconnectMs = Date.now() - backAt;
      console.log(`chat reconnected ${reconnectMs} ms after the server answered again`);
      expect(reconnectMs).toBeLessThan(2000);
      expect(await inboxTexts(bob)).toEqual(["queued one", "queued two"]);

      // A drop while running: the same, and a line typed after it goes out too.
      await stop();
      await chat.waitFor(
        (text) => after(text, "reconnected").includes("(offline, next try in"),
        "the drop noticed",
        20_000,
      );
      await start();
      const restartedAt = Date.now();
      await chat.waitFor(
        (text) => (text.match(/reconnected/g) ?? []).length >= 2,
        "the second reconnection",
        10_000,
      );
      const again = Date.now() - restartedAt;
      console.log(`after a drop, chat reconnected ${again} ms after the server answered again`);
      expect(again).toBeLessThan(2000);
      chat.type("after the outage\r");
      expect(await inboxTexts(bob)).toEqual(["after the outage"]);
      chat.type("/quit\r");
      expect(await chat.exited).toBe(0);
    } finally {
      chat.pty.kill();
      if (!serverUp) await server.start();
    }
  }, 120_000);

  it("keeps what was not sent when chat quits offline, and the next chat sends it first, in order", async () => {
    const outbox = join(alice.home, "outbox.json");
    await server.stop();
    try {
      const first = new PtyChat(alice);
      await first.waitFor((text) => /\(offline, next try in \d s\)/.test(text), "the offline prompt");
      first.type("/msg bob\r");
      await first.waitFor((text) => text.includes("now talking to bob"), "the conversation");
      first.type("kept one\r");
      first.type("kept two\r");
      await first.waitFor((text) => text.includes("2 in outbox"), "the outbox in the prompt");
      first.type("/quit\r");
      expect(await first.exited).toBe(0);
      expect(first.text).toContain("kept in the outbox, to go out the next time chat connects");
      // Kept in the home, in order, as typed: nothing was lost by quitting.
      const kept = JSON.parse(readFileSync(outbox, "utf8")) as {
        items: Array<{ text: string; to: unknown }>;
      };
      expect(kept.items.map((item) => item.text)).toEqual(["kept one", "kept two"]);
      expect(kept.items[0]!.to).toEqual({ kind: "user", name: "bob" });
    } finally {
      await server.start();
    }

    const second = new PtyChat(alice);
    try {
      await second.waitFor(
        (text) => text.includes("2 messages from an earlier chat wait in the outbox"),
        "the kept messages announced",
      );
      expect(second.text).toContain("to bob: kept one");
      expect(await inboxTexts(bob)).toEqual(["kept one", "kept two"]);
      // Sent, so no longer kept: a third chat would send nothing again.
      await second.waitFor(() => !existsSync(outbox), "the outbox emptied", 10_000);
      second.type("/quit\r");
      expect(await second.exited).toBe(0);
    } finally {
      second.pty.kill();
    }
  }, 120_000);
});
