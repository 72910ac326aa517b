// The daemon's protocol layer: JSON-RPC lines read into requests or the errors that answer them, lines
// split with a size limit that does not end the connection, method params checked (unknown ones refused)
// and turned into the CLI command they run, and the feed `inbox` reads through a daemon.

import { describe, expect, it } from "vitest";
import { Feed } from "../../../cli-client/daemon/feed.js";
import { METHODS, checkParams } from "../../../cli-client/daemon/methods.js";
import {
  LineReader,
  RpcErrorCode,
  errorLine,
  notificationLine,
  parseLine,
  resultLine,
} from "../../../cli-client/daemon/protocol.js";
import { readGlobals } from "../../../cli-client/daemon/thin-client.js";

function errorOf(line: string): { code: number; id: unknown } {
  const parsed = parseLine(line);
  if (!("error" in parsed)) throw new Error(`expected an error for ${line}`);
  return { code: parsed.error.code, id: parsed.id };
}

describe("parseLine", () => {
  it("reads a request with its id and params, and a notification without an id", () => {
    expect(parseLine('{"jsonrpc":"2.0","id":7,"method":"send","params":{"to":"bob","text":"hi"}}')).toEqual({
      request: { id: 7, method: "send", params: { to: "bob", text: "hi" } },
    });
    expect(parseLine('{"jsonrpc":"2.0","method":"whoami"}')).toEqual({
      request: { method: "whoami", params: {} },
    });
    expect(parseLine('{"jsonrpc":"2.0","id":"a","method":"whoami"}')).toMatchObject({ request: { id: "a" } });
  });

  it("answers what is not JSON with a parse error, and what is not a request with invalid request", () => {
    expect(errorOf("{nope")).toEqual({ code: RpcErrorCode.parseError, id: null });
    expect(errorOf("[1,2]").code).toBe(RpcErrorCode.invalidRequest);
    expect(errorOf('"send"').code).toBe(RpcErrorCode.invalidRequest);
    expect(errorOf('{"jsonrpc":"1.0","id":3,"method":"send"}')).toEqual({
      code: RpcErrorCode.invalidRequest,
      id: 3,
    });
    expect(errorOf('{"jsonrpc":"2.0","id":3}')).toEqual({ code: RpcErrorCode.invalidRequest, id: 3 });
    expect(errorOf('{"jsonrpc":"2.0","id":{"x":1},"method":"send"}')).toEqual({
      code: RpcErrorCode.invalidRequest,
      id: null,
    });
    expect(errorOf('{"jsonrpc":"2.0","id":3,"method":"send","extra":1}').code).toBe(
      RpcErrorCode.invalidRequest,
    );
  });

  it("refuses params by position", () => {
    expect(errorOf('{"jsonrpc":"2.0","id":4,"method":"send","params":["bob","hi"]}')).toEqual({
      code: RpcErrorCode.invalidParams,
      id: 4,
    });
  });

  it("writes responses and notifications as single lines with terminal controls escaped", () => {
    expect(JSON.parse(resultLine(1, { a: 1 }))).toEqual({ jsonrpc: "2.0", id: 1, result: { a: 1 } });
    expect(JSON.parse(errorLine(null, { code: -32700, message: "x" }))).toEqual({
      jsonrpc: "2.0",
      id: null,
      error: { code: -32700, message: "x" },
    });
    const line = notificationLine("message", { text: "a\u009b31mb\u2028c" });
    expect(line).not.toMatch(/[\u009b\u2028\n]/);
    expect(JSON.parse(line).params.text).toBe("a\u009b31mb\u2028c");
  });
});

describe("LineReader", () => {
  function reader(limit: number) {
    const lines: string[] = [];
    let tooLong = 0;
    const lineReader = new LineReader(
      (line) => lines.push(line),
      () => (tooLong += 1),
      limit,
    );
    return { lines, tooLong: () => tooLong, lineReader };
  }

  it("joins lines split across chunks, drops blank lines and a trailing CR, and keeps a last unended line", () => {
    const { lines, lineReader } = reader(100);
    lineReader.push(Buffer.from('{"a"'));
    lineReader.push(Buffer.from(':1}\r\n\n{"b":2}\n{"c"'));
    lineReader.push(Buffer.from(":3}"));
    expect(lines).toEqual(['{"a":1}', '{"b":2}']);
    lineReader.end();
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
  });

  it("reports a line over the limit once, skips it to its newline, and reads the next lines", () => {
    const { lines, tooLong, lineReader } = reader(10);
    lineReader.push(Buffer.from("0123456789abc"));
    lineReader.push(Buffer.from("more of the same long line"));
    lineReader.push(Buffer.from("end\nshort\n"));
    expect(tooLong()).toBe(1);
    expect(lines).toEqual(["short"]);
    lineReader.push(Buffer.from("0123456789\n"));
    expect(lines).toEqual(["short", "0123456789"]);
  });

  it("splits multi-byte characters across chunks without damage", () => {
    const { lines, lineReader } = reader(100);
    const bytes = Buffer.from("héllo ✓\n");
    lineReader.push(bytes.subarray(0, 2));
    lineReader.push(bytes.subarray(2));
    expect(lines).toEqual(["héllo ✓"]);
  });
});

describe("methods", () => {
  function argv(method: string, params: Record<string, unknown>): string[] {
    const spec = METHODS[method]!;
    const checked = checkParams(spec, params);
    if (!checked.ok) throw new Error(checked.reason);
    return spec.argv(checked.params);
  }

  it("turns each call into the CLI command it runs, names after -- so none reads as an option", () => {
    expect(argv("send", { to: "bob", text: "-1 is\na number" })).toEqual([
      "send",
      "--",
      "bob",
      "-1 is\na number",
    ]);
    expect(argv("send", { group: "team", text: "", file: "/tmp/x" })).toEqual([
      "send",
      "--group=team",
      "--file=/tmp/x",
      "--",
      "",
    ]);
    expect(argv("group.add", { group: "team", user: "-carol" })).toEqual([
      "group",
      "add",
      "--",
      "team",
      "-carol",
    ]);
    expect(argv("group.create", { group: "team", users: ["bob", "carol"] })).toEqual([
      "group",
      "create",
      "--",
      "team",
      "bob",
      "carol",
    ]);
    expect(argv("history", { group: "team", search: "x", limit: 5 })).toEqual([
      "history",
      "--group=team",
      "--search=x",
      "--limit=5",
      "--",
    ]);
    expect(argv("verify", { user: "bob", yes: true })).toEqual(["verify", "--yes", "--", "bob"]);
    expect(argv("devices.revoke", { id: "abcd" })).toEqual(["devices", "revoke", "--", "abcd"]);
    expect(argv("group.list", {})).toEqual(["group", "list"]);
  });

  it("refuses unknown params, missing ones, wrong types and a send with both or neither recipient", () => {
    const refused = (method: string, params: Record<string, unknown>) => {
      const checked = checkParams(METHODS[method]!, params);
      return checked.ok ? null : checked.reason;
    };
    expect(refused("send", { to: "bob", text: "x", colour: "red" })).toMatch(/colour/);
    expect(refused("send", { to: "bob", group: "team", text: "x" })).toMatch(/exactly one/);
    expect(refused("send", { text: "x" })).toMatch(/exactly one/);
    expect(refused("group.add", { group: "team" })).toMatch(/user/);
    expect(refused("history", { limit: "5" })).toMatch(/limit/);
    expect(refused("group.list", { all: true })).toMatch(/all/);
    expect(refused("user", { user: "bob" })).toBeNull();
  });

  it("has every method the daemon documents", () => {
    expect(Object.keys(METHODS).sort()).toEqual(
      [
        "send",
        "whoami",
        "user",
        "verify",
        "trust",
        "history",
        "group.create",
        "group.add",
        "group.remove",
        "group.leave",
        "group.info",
        "group.list",
        "group.join",
        "group.decline",
        "devices.list",
        "devices.revoke",
      ].sort(),
    );
  });
});

describe("the thin path's reading of a command line", () => {
  it("finds the command and the global options wherever they stand, and nothing after --", () => {
    expect(readGlobals(["--home", "/h", "send", "bob", "--json", "--", "--server", "x"])).toEqual({
      home: "/h",
      json: true,
      command: "send",
      rest: ["bob", "--", "--server", "x"],
    });
    expect(readGlobals(["group", "add", "--server=http://s", "team", "bob"])).toMatchObject({
      server: "http://s",
      command: "group",
      rest: ["add", "team", "bob"],
    });
  });
});

describe("Feed", () => {
  const warning = (message: string) => ({ kind: "warning" as const, warning: { message } });

  it("gives what came after a cursor, and says how many were dropped past its limit", () => {
    const feed = new Feed(3);
    for (const n of [1, 2, 3, 4, 5]) feed.push(warning(`w${n}`));
    const { entries, dropped } = feed.since(0);
    expect(entries.map((entry) => entry.seq)).toEqual([3, 4, 5]);
    expect(dropped).toBe(2);
    expect(feed.since(4)).toEqual({ entries: [expect.objectContaining({ seq: 5 })], dropped: 0 });
    expect(feed.next).toBe(6);
  });

  it("wakes a waiter at the next push, or when its signal aborts", async () => {
    const feed = new Feed();
    const controller = new AbortController();
    const woken = feed.whenPushed(controller.signal);
    feed.push(warning("now"));
    await woken;
    const aborted = feed.whenPushed(controller.signal);
    controller.abort();
    await aborted;
  });
});
