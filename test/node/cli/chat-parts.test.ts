// chat's parts that need no server: the reconnection back-off (capped, jittered), the cursor row of a
// wrapped line of wide characters, Tab completion, the read marks kept in the home, and the printer's
// held backlog and unread mark.

import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RECONNECT_MAX_MS, RECONNECT_MIN_MS, reconnectDelay } from "../../../client/net/live-connection.js";
import { complete } from "../../../cli-client/chat/completion.js";
import { Conversations } from "../../../cli-client/chat/conversations.js";
import { ReadMarks } from "../../../cli-client/chat/read-marks.js";
import { cursorRow } from "../../../cli-client/chat/screen.js";
import { Printer, shown } from "../../../cli-client/output.js";
import { sink, tempDir } from "./helpers.js";

describe("reconnection back-off", () => {
  it("starts soon, grows, never waits more than the cap, and spreads clients with jitter", () => {
    expect(reconnectDelay(0, 1)).toBe(RECONNECT_MIN_MS);
    expect(reconnectDelay(1, 1)).toBeGreaterThan(reconnectDelay(0, 1));
    for (let attempt = 0; attempt < 50; attempt++) {
      expect(reconnectDelay(attempt, 0.999)).toBeLessThanOrEqual(RECONNECT_MAX_MS);
      expect(reconnectDelay(attempt, 0)).toBeGreaterThanOrEqual(RECONNECT_MIN_MS / 2);
    }
    expect(reconnectDelay(40, 0)).toBe(RECONNECT_MAX_MS / 2);
    expect(RECONNECT_MAX_MS).toBeLessThanOrEqual(1000);
  });
});

describe("the cursor's row in a wrapped line", () => {
  it("counts CJK and emoji as two columns, and a wide character that cannot fit in the last column on the next row", () => {
    expect(cursorRow({ prompt: "> ", line: "a".repeat(37), cursor: 37 }, 40)).toBe(0);
    expect(cursorRow({ prompt: "> ", line: "a".repeat(38), cursor: 38 }, 40)).toBe(1);
    // "> " then 19 two-column characters fill 40 columns exactly.
    expect(cursorRow({ prompt: "> ", line: "漢".repeat(19), cursor: 19 }, 40)).toBe(1);
    // "bob> " (5) and 17 wide ones end at column 39: the 18th skips the last column and starts row 1.
    expect(cursorRow({ prompt: "bob> ", line: "漢".repeat(17), cursor: 17 }, 40)).toBe(0);
    // readline's cursor counts UTF-16 code units: an emoji is two.
    // readline's cursor counts UTF-16 code units: an emoji is two.
    expect(cursorRow({ prompt: "bob> ", line: "😀".repeat(18), cursor: 36 }, 40)).toBe(1);
    expect(cursorRow({ prompt: "bob> ", line: "😀".repeat(36), cursor: 72 }, 40)).toBe(1);
    expect(cursorRow({ prompt: "bob> ", line: "😀".repeat(36), cursor: 20 }, 40)).toBe(0);
    // Colours in the prompt take no columns.
    expect(
      cursorRow({ prompt: "\x1b[1m\x1b[32mbob\x1b[39m\x1b[22m> ", line: "a".repeat(35), cursor: 35 }, 40),
    ).toBe(1);
  });
});

describe("Tab completion", () => {
  const sources = { users: () => ["bob", "bea", "carol"], groups: () => ["team", "tea"] };
  it("completes commands, then users or groups as the command takes them", () => {
    expect(complete("/ms", sources)).toEqual([["/msg "], "/ms"]);
    expect(complete("/re", sources)).toEqual([["/reconnect", "/remove", "/reply"], "/re"]);
    expect(complete("/msg c", sources)).toEqual([["carol "], "c"]);
    expect(complete("/msg b", sources)).toEqual([["bea", "bob"], "b"]);
    expect(complete("/group tea", sources)).toEqual([["tea", "team"], "tea"]);
    expect(complete("/join te", sources)).toEqual([["tea", "team"], "te"]);
    expect(complete("/create newgroup ca", sources)).toEqual([["carol "], "ca"]);
    // Plain text and a message's words are not completed.
    expect(complete("hello b", sources)).toEqual([[], "b"]);
    expect(complete("/msg bob b", sources)).toEqual([[], "b"]);
  });
});

describe("read marks and unread counts", () => {
  it("counts messages received after the mark, keeps the marks in the home (0600), and survives a damaged file", async () => {
    const home = (await tempDir()).path;
    const marks = ReadMarks.load(home);
    marks.set("user:bob", 2000);
    const conversations = new Conversations("alice", ReadMarks.load(home));
    const entry = (from: string, recordedAt: number, direction: "in" | "out" = "in") => ({
      id: String(recordedAt),
      kind: "message" as const,
      direction,
      from,
      to: from === "alice" ? "bob" : "alice",
      text: "t",
      sentAt: recordedAt,
      recordedAt,
    });
    conversations.load([
      entry("bob", 1000),
      entry("bob", 3000),
      entry("alice", 4000, "out"),
      entry("carol", 5000),
    ]);
    expect(conversations.unread({ kind: "user", name: "bob" })).toBe(1);
    expect(conversations.unread({ kind: "user", name: "carol" })).toBe(1);
    expect(conversations.lastIncoming).toEqual({ kind: "user", name: "carol" });
    expect(conversations.list().map((row) => row.conversation.name)).toEqual(["carol", "bob"]);

    conversations.read({ kind: "user", name: "carol" });
    expect(conversations.unread({ kind: "user", name: "carol" })).toBe(0);
    const file = join(home, "chat-read.json");
    expect(JSON.parse(readFileSync(file, "utf8"))["user:carol"]).toBeGreaterThan(5000);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    await import("node:fs").then(({ writeFileSync }) => writeFileSync(file, "{not json"));
    expect(ReadMarks.load(home).get("user:bob")).toBe(0);
  });
});

describe("the printer's backlog and unread mark", () => {
  const message = (text: string, sentAt: number, from = "bob") => ({
    id: text,
    from,
    to: "alice",
    text,
    sentAt,
  });
  const event = (at: number) => ({
    event: "added" as const,
    group: "team",
    by: "alice",
    user: "bob",
    epoch: 2,
    members: ["alice", "bob"],
    invited: [],
    admin: "alice",
    at,
    signedBy: "alice",
    viewer: "alice",
  });

  it("holds messages and changes back and shows them in the order of their times, ties as they came", () => {
    const stdout = sink();
    const printer = new Printer(false, { stdout, stderr: sink() });
    printer.hold();
    printer.message(message("third", 3000));
    printer.event(event(1000));
    printer.message(message("second", 2000));
    printer.message(message("also second", 2000));
    printer.info("not held: chat's own lines come at once");
    expect(stdout.text()).toBe("not held: chat's own lines come at once\n");
    printer.release();
    const lines = stdout.text().split("\n").slice(1, -1);
    expect(lines.map((line) => line.replace(/^\[[^\]]+\] /, ""))).toEqual([
      expect.stringMatching(/^group team: alice added bob/),
      "bob: second",
      "bob: also second",
      "bob: third",
    ]);
    // Released: the next one is shown at once.
    printer.message(message("live", 4000));
    expect(stdout.text()).toMatch(/bob: live\n$/);
  });

  it("puts the tag chat gives before a message's line, and none where it gives none", () => {
    const stdout = sink();
    const printer = new Printer(false, { stdout, stderr: sink() });
    printer.setMessageTag((shownMessage) => (shownMessage.from === "carol" ? shown`[1 unread]` : null));
    printer.message(message("from carol", 1000, "carol"));
    printer.message(message("from bob", 1000));
    expect(stdout.text()).toMatch(/^\[1 unread\] \[[^\]]+\] carol: from carol\n\[[^\]]+\] bob: from bob\n$/);
  });
});
