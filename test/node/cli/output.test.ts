// The printer: --json gives exactly one JSON object per line on stdout (messages in the contract's shape),
// warnings and errors go to stderr, message text cannot smuggle terminal control sequences.

import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { GroupEventKind } from "../../../protocol/frames.js";
import {
  Printer,
  describeGroup,
  describeInvitation,
  invitationData,
  isoTime,
  jsonLine,
  sanitize,
  sanitizeLine,
  shown,
  shownLines,
  summarizeEvent,
  whenFlushed,
} from "../../../cli-client/output.js";
import { sink } from "./helpers.js";

function printer(json: boolean) {
  const stdout = sink();
  const stderr = sink();
  return { printer: new Printer(json, { stdout, stderr }), stdout, stderr };
}

const message = {
  id: "0123456789abcdef0123456789abcdef",
  from: "alice",
  to: "bob",
  text: 'hi "bob"\nsecond line',
  sentAt: Date.UTC(2026, 3, 1, 12, 0, 3, 250),
};

describe("Printer --json", () => {
  it("prints a message as exactly {id, from, to, text, sentAt} with ISO 8601 sentAt, one line", () => {
    const { printer: out, stdout, stderr } = printer(true);
    out.message(message);
    out.message({ ...message, id: "ffffffffffffffffffffffffffffffff" });
    const lines = stdout.lines();
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0]!);
    expect(Object.keys(first)).toEqual(["id", "from", "to", "text", "sentAt"]);
    expect(first).toEqual({ ...message, sentAt: "2026-04-01T12:00:03.250Z" });
    expect(stderr.text()).toBe("");
  });

  it("prints results as data, drops human-only chatter, and sends warnings and errors to stderr", () => {
    const { printer: out, stdout, stderr } = printer(true);
    out.result("delivered to bob", { to: "bob", status: "delivered" });
    out.info("now talking to bob");
    out.warn("dropped a message");
    out.error("no such user", 4);
    expect(stdout.lines().map((line) => JSON.parse(line))).toEqual([{ to: "bob", status: "delivered" }]);
    expect(stderr.lines().map((line) => JSON.parse(line))).toEqual([
      { warning: "dropped a message" },
      { error: { message: "no such user", exitCode: 4 } },
    ]);
  });
});

describe("Printer human mode", () => {
  it("prints results and info as text, warnings and errors prefixed on stderr", () => {
    const { printer: out, stdout, stderr } = printer(false);
    out.result("delivered to bob", { ignored: true });
    out.info("now talking to bob");
    out.warn("careful");
    out.error("no such user", 4);
    expect(stdout.text()).toBe("delivered to bob\nnow talking to bob\n");
    expect(stderr.text()).toBe("warning: careful\ntelepound: no such user\n");
  });

  it("shows the sender and indents continuation lines so they cannot pose as another sender", () => {
    const { printer: out, stdout } = printer(false);
    out.message({ ...message, text: "hello\nbob: fake line" });
    const lines = stdout.lines();
    expect(lines[0]).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] alice: hello$/);
    expect(lines[1]).toBe("    bob: fake line");
  });

  it("replaces terminal escapes and bidi overrides in message text", () => {
    const { printer: out, stdout } = printer(false);
    out.message({ ...message, text: "a\u001b[2Jb\rc\u202ed\u0007" });
    expect(stdout.text()).not.toMatch(/[\u001b\r\u202e\u0007]/);
    expect(stdout.text()).toContain("a\ufffd[2Jb\ufffdc\ufffdd\ufffd");
    expect(sanitize("tab\tok")).toBe("tab\tok");
  });

  it("calls the line guard around every write, so chat can redraw its prompt", () => {
    const { printer: out, stdout } = printer(false);
    const events: string[] = [];
    out.setLineGuard({
      before: () => events.push("before"),
      after: () => events.push(`after:${stdout.text().length}`),
    });
    out.info("x");
    out.setLineGuard(null);
    out.info("y");
    expect(events).toEqual(["before", "after:2"]);
  });
});

/** Every character a terminal acts on: C0 but tab and newline, DEL, C1. */
// eslint-disable-next-line no-control-regex
const TERMINAL_CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
/** What a hostile server puts in every string it hands out: clear screen, OSC title, BEL, C1 CSI, bidi. */
const HOSTILE = "x\u001b[2J\u001b]0;owned\u0007\u009b31m\u0085\u007f\r\u202eevil\u0000";

describe("untrusted strings at the printer boundary", () => {
  it("sanitises every human line: results, info, warnings and errors, whatever the command built", () => {
    const { printer: out, stdout, stderr } = printer(false);
    out.result(`sent to ${HOSTILE}`, {});
    out.info(`now talking to ${HOSTILE}`);
    out.warn(`first contact with ${HOSTILE}`);
    out.error(`refused by the server: ${HOSTILE}`, 7);
    for (const text of [stdout.text(), stderr.text()]) {
      expect(text).not.toMatch(TERMINAL_CONTROLS);
      expect(text).not.toContain("\u202e");
    }
    expect(stdout.lines()).toHaveLength(2);
    expect(stderr.lines()).toHaveLength(2);
  });

  it("keeps an error and a warning to one line, so server words cannot pose as a line of the CLI's own", () => {
    const { printer: out, stderr } = printer(false);
    out.error("refused by the server: no\ntelepound: key verified", 7);
    out.warn("server error: no\nwarning: all keys verified");
    out.warn(shown`these lines were not sent:\n${shownLines(["  one", "  two\u001b[2J"])}`);
    expect(stderr.lines()).toEqual([
      "telepound: refused by the server: no\ufffdtelepound: key verified",
      "warning: server error: no\ufffdwarning: all keys verified",
      "warning: these lines were not sent:",
      "  one",
      "  two\ufffd[2J",
    ]);
  });

  it("sanitises every field of a message, a history entry and an event", () => {
    const { printer: out, stdout } = printer(false);
    const file = { name: HOSTILE, path: `/tmp/${HOSTILE}`, size: 3, sha256: "00" };
    out.message({ ...message, from: HOSTILE, to: HOSTILE, group: HOSTILE, text: HOSTILE, file });
    out.historyEntry({
      kind: "message",
      direction: "in",
      id: message.id,
      from: HOSTILE,
      to: HOSTILE,
      text: HOSTILE,
      sentAt: message.sentAt,
      recordedAt: message.sentAt,
    });
    const event = {
      group: HOSTILE,
      by: HOSTILE,
      user: HOSTILE,
      epoch: 1,
      members: [HOSTILE],
      invited: [HOSTILE],
      admin: HOSTILE,
      signedBy: HOSTILE,
      viewer: "bob",
    };
    out.event({ ...event, event: "left", at: message.sentAt });
    // The invitation of the viewer names the group in the commands it suggests: still one safe line.
    out.event({ ...event, event: "invited", viewer: HOSTILE, at: message.sentAt });
    expect(stdout.text()).not.toMatch(TERMINAL_CONTROLS);
    expect(stdout.text()).not.toContain("\u202e");
    // One line each: no field could add one.
    expect(stdout.lines()).toHaveLength(5);
    for (const kind of GroupEventKind.options)
      expect(summarizeEvent({ ...event, event: kind })).not.toMatch(/[\u0000-\u001f]/);
  });

  it("says what each membership change did, with 'you' and how to answer for an invitation of the viewer", () => {
    const base = {
      group: "team",
      by: "alice",
      epoch: 2,
      admin: "alice",
      signedBy: "alice",
      members: ["alice", "carol"],
      invited: ["bob"],
    };
    const summary = (event: GroupEventKind, user: string, viewer: string) =>
      summarizeEvent({ ...base, event, user, viewer });
    expect(summary("invited", "bob", "bob")).toBe(
      "alice invited you to team: `telepound group join team` or `telepound group decline team` (members: alice, carol; invited: bob) [signed by alice]",
    );
    expect(summary("invited", "bob", "carol")).toBe(
      "group team: alice invited bob (members: alice, carol; invited: bob) [signed by alice]",
    );
    // A create that invites the viewer asks the same question.
    expect(summary("created", "alice", "bob")).toMatch(
      /^alice invited you to team: `telepound group join team` or `telepound group decline team` \(members: alice, carol; invited: bob\)/,
    );
    expect(summary("created", "alice", "carol")).toBe(
      "group team: alice created the group (members: alice, carol; invited: bob) [signed by alice]",
    );
    const after = { ...base, invited: [], by: "bob", signedBy: "bob" };
    expect(summarizeEvent({ ...after, event: "joined", user: "bob", viewer: "alice" })).toBe(
      "group team: bob joined (members: alice, carol) [signed by bob]",
    );
    expect(summarizeEvent({ ...after, event: "declined", user: "bob", viewer: "bob" })).toBe(
      "group team: you declined the invitation (members: alice, carol) [signed by bob]",
    );
    expect(summarizeEvent({ ...base, invited: [], event: "uninvited", user: "bob", viewer: "bob" })).toBe(
      "group team: alice withdrew the invitation of you (members: alice, carol) [signed by alice]",
    );
    expect(summarizeEvent({ ...base, invited: [], event: "uninvited", user: "bob", viewer: "carol" })).toBe(
      "group team: alice withdrew the invitation of bob (members: alice, carol) [signed by alice]",
    );
  });

  it("lists a pending invitation on one line with how to answer it, the server's names sanitised", () => {
    const line = describeInvitation({ group: "team", by: HOSTILE, at: 0 });
    expect(line).toMatch(
      /^team: invited by x\ufffd\[2J.* at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(`telepound group join team` or `telepound group decline team`\)$/,
    );
    expect(line).not.toMatch(TERMINAL_CONTROLS);
    expect(invitationData({ group: "team", by: "alice", at: 0 })).toEqual({
      group: "team",
      by: "alice",
      at: "1970-01-01T00:00:00.000Z",
    });
  });

  it("keeps group descriptions to their lines whatever the names hold: two, three with invitations", () => {
    const info = {
      name: `team\n${HOSTILE}`,
      admin: "a\nb",
      epoch: 1,
      members: [{ username: "a\nb", joinedAt: 0 }],
      invited: [],
      createdAt: 0,
      statement: "",
      signature: "",
    };
    const text = describeGroup(info);
    expect(text.split("\n")).toHaveLength(2);
    expect(text).not.toMatch(TERMINAL_CONTROLS);
    const invited = describeGroup({ ...info, invited: [`bob\n${HOSTILE}`, "carol"] });
    expect(invited.split("\n")).toHaveLength(3);
    expect(invited.split("\n")[2]).toMatch(/^invited, not yet members: bob\ufffd.*, carol$/);
    expect(invited).not.toMatch(TERMINAL_CONTROLS);
  });

  it("keeps the printer's own colours and sanitises what goes into them", () => {
    const stdout = sink();
    const out = new Printer(false, { stdout, stderr: sink() }, true);
    out.info(shown`logged in as ${out.name(HOSTILE)} in ${out.groupName(HOSTILE)}; plain ${HOSTILE}`);
    const text = stdout.text();
    // The only escapes left are SGR colour sequences (ESC [ digits m), the printer's own.
    const withoutColours = text.replace(/\u001b\[[0-9;]*m/g, "");
    expect(text).toContain("\u001b[1m");
    expect(withoutColours).not.toMatch(TERMINAL_CONTROLS);
    expect(withoutColours).toContain("logged in as x\ufffd[2J");
  });

  it("sanitises a plain string wholesale, colour escapes and all: only shown`…` and the printer keep them", () => {
    const { printer: out, stdout } = printer(false);
    out.info("\u001b[31mred\u001b[0m");
    expect(stdout.text()).toBe("\ufffd[31mred\ufffd[0m\n");
  });

  it("sanitiseLine also takes tabs, newlines and line separators out", () => {
    expect(sanitizeLine("a\tb\nc\u2028d")).toBe("a\ufffdb\ufffdc\ufffdd");
    expect(sanitize("a\tb\nc")).toBe("a\tb\nc");
  });
});

describe("--json output is safe for a consumer's terminal", () => {
  it("escapes C0, DEL, C1, bidi marks and line separators as \\uXXXX and still parses back", () => {
    const value = `${HOSTILE}\u2028\u2066`;
    const line = jsonLine({ [value]: value, list: [value] });
    expect(line).not.toMatch(TERMINAL_CONTROLS);
    expect(line).not.toMatch(/[\u202e\u2028\u2066]/);
    expect(line).toContain("\\u009b");
    expect(line).toContain("\\u007f");
    expect(JSON.parse(line)).toEqual({ [value]: value, list: [value] });
  });

  it("is used for every kind of line the printer writes", () => {
    const { printer: out, stdout, stderr } = printer(true);
    out.result("", { to: HOSTILE });
    out.message({ ...message, from: HOSTILE, text: HOSTILE });
    const event = {
      group: HOSTILE,
      by: HOSTILE,
      user: HOSTILE,
      epoch: 1,
      members: [HOSTILE],
      invited: [HOSTILE],
      admin: null,
      signedBy: HOSTILE,
      viewer: "bob",
    };
    out.event({ ...event, event: "added", at: 0 });
    out.warn(HOSTILE);
    out.error(HOSTILE, 7);
    for (const text of [stdout.text(), stderr.text()]) {
      expect(text).not.toMatch(TERMINAL_CONTROLS);
      expect(text).not.toContain("\u202e");
    }
    const parsed = [...stdout.lines(), ...stderr.lines()].map((line) => JSON.parse(line));
    expect(parsed[0]).toEqual({ to: HOSTILE });
    expect(parsed[1].text).toBe(HOSTILE);
    expect(parsed[4]).toEqual({ error: { message: HOSTILE, exitCode: 7 } });
  });
});

describe("isoTime", () => {
  it("never throws on an out-of-range sender clock", () => {
    expect(isoTime(Number.MAX_SAFE_INTEGER)).toBe("1970-01-01T00:00:00.000Z");
  });
});

describe("whenFlushed", () => {
  it("resolves once earlier writes are out, and rejects when the stream cannot write them", async () => {
    const written: string[] = [];
    const ok = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        setTimeout(() => {
          written.push(chunk.toString());
          callback();
        }, 5);
      },
    });
    ok.write("line\n");
    await whenFlushed(ok);
    expect(written).toContain("line\n");

    const broken = new Writable({
      write(_chunk, _encoding, callback) {
        callback(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
      },
    });
    broken.on("error", () => undefined);
    broken.write("line\n");
    await expect(whenFlushed(broken)).rejects.toThrow(/EPIPE/);
  });
});
