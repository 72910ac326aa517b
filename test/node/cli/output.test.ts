// The printer: --json gives exactly one JSON object per line on stdout (messages in the contract's shape),
// warnings and errors go to stderr, message text cannot smuggle terminal control sequences.

import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { Printer, isoTime, sanitize, whenFlushed } from "../../../cli-client/output.js";
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
