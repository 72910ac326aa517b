// runCli: global options before or after the command, usage errors (exit 2), and the mapping of every
// error type to its exit code and one stderr line, in human and --json modes. Uses a stub command table.

import { describe, expect, it } from "vitest";
import { FormatError } from "../../../protocol/bytes.js";
import { runCli } from "../../../cli-client/cli.js";
import type { CommandInput, CommandSpec } from "../../../cli-client/commands/command.js";
import type { Context } from "../../../cli-client/context.js";
import { COMMANDS } from "../../../cli-client/commands/index.js";
import {
  CryptoError,
  PayloadTooLargeError,
  TamperedMessageError,
  WrongPasswordError,
} from "../../../client/crypto/index.js";
import {
  AuthError,
  ExitCode,
  InterruptedError,
  KeyMismatchError,
  NetworkError,
  NotFoundError,
  RateLimitedError,
  RefusedError,
  UsageError,
  describeError,
} from "../../../client/errors.js";
import { fakeIo } from "./helpers.js";

interface Call {
  ctx: Context;
  input: CommandInput;
}

/** A table shaped like the real one whose handlers record what they were given, or throw `error`. */
function stubCommands(calls: Call[], error?: unknown): CommandSpec[] {
  const record = async (ctx: Context, input: CommandInput) => {
    calls.push({ ctx, input });
    if (error !== undefined) throw error;
    ctx.printer.result("done", { done: true });
  };
  return [
    {
      name: "send",
      summary: "",
      examples: [],
      args: [
        { syntax: "<user>", description: "" },
        { syntax: "<text...>", description: "" },
      ],
      run: record,
    },
    {
      name: "inbox",
      summary: "",
      examples: [],
      options: [{ flags: "--wait <seconds>", description: "", defaultValue: "0" }],
      run: record,
    },
    { name: "whoami", summary: "", examples: [], run: record },
  ];
}

async function run(argv: string[], options: { env?: NodeJS.ProcessEnv; error?: unknown } = {}) {
  const calls: Call[] = [];
  const io = fakeIo(options.env ?? {});
  const code = await runCli(argv, io, stubCommands(calls, options.error));
  return { code, calls, stdout: io.out.text(), stderr: io.err.text() };
}

describe("argument parsing", () => {
  it("accepts global options before the command", async () => {
    const { code, calls } = await run([
      "--json",
      "--server",
      "http://example.test:9",
      "--home",
      "/tmp/h",
      "send",
      "bob",
      "hi",
      "there",
    ]);
    expect(code).toBe(0);
    expect(calls).toHaveLength(1);
    const [{ ctx, input }] = calls as [Call];
    expect(input.args).toEqual(["bob", "hi", "there"]);
    expect(ctx.printer.json).toBe(true);
    expect(ctx.server).toBe("http://example.test:9");
    expect(ctx.serverChosen).toBe(true);
    expect(ctx.home.location).toBe("/tmp/h");
  });

  it("accepts global options after the command and between its arguments", async () => {
    const { calls, stdout } = await run(["send", "bob", "hi", "--json", "--home", "/tmp/h2"]);
    const [{ ctx, input }] = calls as [Call];
    expect(input.args).toEqual(["bob", "hi"]);
    expect(ctx.printer.json).toBe(true);
    expect(ctx.home.location).toBe("/tmp/h2");
    expect(stdout).toBe('{"done":true}\n');
  });

  it("treats words after -- as text, not options", async () => {
    const { calls } = await run(["send", "bob", "--", "--json", "-x"]);
    const [{ ctx, input }] = calls as [Call];
    expect(input.args).toEqual(["bob", "--json", "-x"]);
    expect(ctx.printer.json).toBe(false);
  });

  it("passes command options, with their defaults", async () => {
    expect((await run(["inbox", "--wait", "2.5"])).calls[0]?.input.options).toEqual({ wait: "2.5" });
    expect((await run(["inbox"])).calls[0]?.input.options).toEqual({ wait: "0" });
  });

  it("takes the server and home from the environment when no option is given", async () => {
    const env = { TELEPOUND_SERVER: "https://chat.example/", TELEPOUND_HOME: "/env/home" };
    const [{ ctx }] = (await run(["whoami"], { env })).calls as [Call];
    expect(ctx.server).toBe("https://chat.example");
    expect(ctx.home.location).toBe("/env/home");
    const [{ ctx: defaults }] = (await run(["whoami"])).calls as [Call];
    expect(defaults.server).toBe("http://127.0.0.1:8787");
    expect(defaults.serverChosen).toBe(false);
  });

  it.each([
    [[], /missing command/],
    [["frobnicate"], /unknown command 'frobnicate'/],
    [["send", "bob"], /missing required argument 'text'/],
    [["whoami", "extra"], /too many arguments/],
    [["whoami", "--bogus"], /unknown option '--bogus'/],
    [["inbox", "--wait"], /argument missing/],
    [["--server", "ftp://x", "whoami"], /http:\/\/ or https:\/\//],
  ])("exits 2 with one stderr line for %j", async (argv, message) => {
    const { code, calls, stdout, stderr } = await run(argv);
    expect(code).toBe(ExitCode.usage);
    expect(calls).toHaveLength(0);
    expect(stdout).toBe("");
    expect(stderr.split("\n").filter(Boolean)).toHaveLength(1);
    expect(stderr).toMatch(message);
  });

  it("prints help on stdout and exits 0", async () => {
    const { code, stdout, stderr } = await run(["--help"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/Usage: telepound/);
    expect(stderr).toBe("");
  });

  it("registers the contract's commands in the real table", () => {
    expect(COMMANDS.map((command) => command.name)).toEqual([
      "signup",
      "login",
      "logout",
      "whoami",
      "devices",
      "devices revoke",
      "user",
      "verify",
      "trust",
      "send",
      "inbox",
      "listen",
      "chat",
      "daemon",
      "history",
      "group create",
      "group add",
      "group remove",
      "group join",
      "group decline",
      "group leave",
      "group info",
      "group list",
    ]);
  });
});

describe("exit codes", () => {
  it.each([
    [new UsageError("u"), 2],
    [new AuthError("a"), 3],
    [new WrongPasswordError(), 3],
    [new NotFoundError("n"), 4],
    [new NetworkError("net"), 5],
    [new FormatError("truncated"), 5],
    [new RateLimitedError("slow down", 3), 6],
    [new RefusedError("no"), 7],
    [new PayloadTooLargeError("too big"), 7],
    [new KeyMismatchError("changed"), 8],
    [new TamperedMessageError("bad signature"), 8],
    [new CryptoError("bad key"), 8],
    [new InterruptedError(), 130],
    [Object.assign(new Error("User force closed the prompt"), { name: "ExitPromptError" }), 130],
    [new TypeError("boom"), 1],
    ["a string", 1],
  ])("maps %s to %i, printed as one line", async (error, expected) => {
    expect(describeError(error).exitCode).toBe(expected);
    const { code, stderr, stdout } = await run(["whoami"], { error });
    expect(code).toBe(expected);
    expect(stdout).toBe("");
    expect(stderr.endsWith("\n")).toBe(true);
    expect(stderr.slice(0, -1)).not.toContain("\n");
    expect(stderr).toMatch(/^telepound: /);
  });

  it("keeps an unexpected error to one line unless TELEPOUND_DEBUG asks for the stack", async () => {
    const quiet = await run(["whoami"], { error: new Error("kaput") });
    expect(quiet.stderr).toBe("telepound: unexpected error: kaput\n");
    const debug = await run(["whoami"], { error: new Error("kaput"), env: { TELEPOUND_DEBUG: "1" } });
    expect(debug.stderr).toMatch(/^telepound: unexpected error: kaput\nError: kaput\n\s+at /);
  });

  it("reports errors as a JSON line on stderr with --json", async () => {
    const { code, stderr, stdout } = await run(["whoami", "--json"], {
      error: new NotFoundError("no such user: bob"),
    });
    expect(code).toBe(4);
    expect(stdout).toBe("");
    expect(JSON.parse(stderr)).toEqual({ error: { message: "no such user: bob", exitCode: 4 } });
  });

  it("reports usage errors as JSON too when --json was given", async () => {
    const { code, stderr } = await run(["--json", "frobnicate"]);
    expect(code).toBe(2);
    expect(JSON.parse(stderr).error.exitCode).toBe(2);
  });
});
