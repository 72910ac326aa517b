// End to end: `telepound daemon` against `wrangler dev`: JSON-RPC over stdin/stdout and over the home's
// socket, sending both ways with a CLI user, notifications to every client, group methods, errors that
// carry the CLI's exit codes, bad lines answered without killing it, `telepound send` and `inbox`
// going through the running daemon, and a dead daemon's socket file ignored and then replaced.

import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { type Socket, connect } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, jsonLines, newHome, runCli } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";

const CLI = new URL("../../dist/telepound.mjs", import.meta.url).pathname;

let server: LocalServer;
let alice: CliUser;
let bob: CliUser;
let carol: CliUser;

type Line = Record<string, unknown> & { id?: unknown; method?: string; params?: Record<string, unknown> };

/** One JSON-RPC client: lines written to `write`, lines read from `feed`. */
class RpcPeer {
  readonly lines: Line[] = [];
  private buffered = "";
  private nextId = 1;

  constructor(private readonly write: (text: string) => void) {}

  feed(chunk: string): void {
    this.buffered += chunk;
    let at: number;
    while ((at = this.buffered.indexOf("\n")) !== -1) {
      const line = this.buffered.slice(0, at);
      this.buffered = this.buffered.slice(at + 1);
      if (line.trim() !== "") this.lines.push(JSON.parse(line) as Line);
    }
  }

  send(raw: string): void {
    this.write(`${raw}\n`);
  }

  async call(method: string, params?: unknown): Promise<Line> {
    const id = this.nextId++;
    this.send(JSON.stringify({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) }));
    return this.waitFor((line) => line.id === id && !("method" in line));
  }

  async waitFor(predicate: (line: Line) => boolean, what = "a line"): Promise<Line> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const found = this.lines.find(predicate);
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.lines)}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  notification(method: string, match: (params: Record<string, unknown>) => boolean): Promise<Line> {
    return this.waitFor(
      (line) => line.method === method && match(line.params ?? {}),
      `a ${method} notification`,
    );
  }
}

class DaemonProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly rpc: RpcPeer;
  stderr = "";
  readonly exited: Promise<number>;

  constructor(user: CliUser) {
    this.child = spawn(process.execPath, [CLI, "--server", user.server, "--home", user.home, "daemon"], {
      env: { ...process.env, TELEPOUND_HOME: "", TELEPOUND_SERVER: "" },
    });
    this.rpc = new RpcPeer((text) => this.child.stdin.write(text));
    this.child.stdout.setEncoding("utf8").on("data", (chunk: string) => this.rpc.feed(chunk));
    this.child.stderr.setEncoding("utf8").on("data", (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code ?? 1)));
  }

  async ready(): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!this.stderr.includes("receiving for")) {
      if (Date.now() > deadline) throw new Error(`daemon did not start: ${this.stderr}`);
      if (this.child.exitCode !== null)
        throw new Error(`daemon exited ${this.child.exitCode}: ${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number> {
    if (this.child.exitCode === null) this.child.kill(signal);
    return this.exited;
  }
}

const sockets: Socket[] = [];
const daemons: DaemonProcess[] = [];

async function socketPeer(user: CliUser): Promise<RpcPeer> {
  const socket = connect(join(user.home, "daemon.sock"));
  sockets.push(socket);
  await new Promise<void>((done, fail) => socket.once("connect", done).once("error", fail));
  const peer = new RpcPeer((text) => socket.write(text));
  socket.setEncoding("utf8").on("data", (chunk: string) => peer.feed(chunk));
  return peer;
}

async function startDaemon(user: CliUser): Promise<DaemonProcess> {
  const daemon = new DaemonProcess(user);
  daemons.push(daemon);
  await daemon.ready();
  return daemon;
}

/** `telepound ARGS` with `input` on its standard input. */
function cliWithInput(
  user: CliUser,
  args: string[],
  input: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, "--server", user.server, "--home", user.home, ...args]);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("exit", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input);
  });
}

function user(label: string): CliUser {
  return {
    home: newHome(label),
    server: server.url,
    password: `pw-${label}-${Math.random().toString(36).slice(2)}`,
  };
}

beforeAll(async () => {
  server = await startLocalServer();
  [alice, bob, carol] = [user("alice"), user("bob"), user("carol")];
  await Promise.all([
    cliOk(alice, ["signup", "alice"]),
    cliOk(bob, ["signup", "bob"]),
    cliOk(carol, ["signup", "carol"]),
  ]);
}, 120_000);

afterEach(async (context) => {
  if (context.task.result?.state === "fail") for (const daemon of daemons) console.error(daemon.stderr);
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(daemons.splice(0).map((daemon) => daemon.stop()));
});

afterAll(async () => {
  await server?.stop();
});

describe("telepound daemon", () => {
  it("sends and receives over stdin/stdout and the socket, with group methods, and errors that leave it running", async () => {
    // Queued before the daemon starts: it arrives as a notification once it connects.
    await cliOk(bob, ["send", "alice", "before the daemon"]);
    const daemon = await startDaemon(alice);
    const socketPath = join(alice.home, "daemon.sock");
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    expect(statSync(alice.home).mode & 0o777).toBe(0o700);
    const stdio = daemon.rpc;
    await stdio.notification(
      "message",
      (params) => params.text === "before the daemon" && params.from === "bob",
    );

    const socket = await socketPeer(alice);
    // Bob to alice: every client of the daemon is told.
    await cliOk(bob, ["send", "alice", "to both clients"]);
    const [onStdio, onSocket] = await Promise.all([
      stdio.notification("message", (params) => params.text === "to both clients"),
      socket.notification("message", (params) => params.text === "to both clients"),
    ]);
    expect(onStdio.params).toMatchObject({ from: "bob", to: "alice", text: "to both clients" });
    expect(onSocket.params).toEqual(onStdio.params);

    // Alice to bob, a multi-line text, over stdio; and over the socket.
    const sent = await stdio.call("send", { to: "bob", text: "line one\nline two" });
    expect(sent.result).toMatchObject({ to: "bob", status: expect.stringMatching(/^(delivered|stored)$/) });
    expect((sent.result as Record<string, unknown>).id).toMatch(/^[0-9a-f]+$/);
    const viaSocket = await socket.call("send", { to: "bob", text: "over the socket" });
    expect(viaSocket.result).toMatchObject({ to: "bob" });
    const bobGot = jsonLines(await cliOk(bob, ["inbox", "--json"])).filter((line) => line.from === "alice");
    expect(bobGot.map((line) => line.text)).toEqual(["line one\nline two", "over the socket"]);

    // Methods with the CLI's --json fields.
    expect((await socket.call("user", { user: "bob" })).result).toMatchObject({
      username: "bob",
      verified: false,
    });
    expect((await socket.call("devices.list")).result).toMatchObject({
      sessions: [expect.objectContaining({ current: true })],
    });
    const history = (await stdio.call("history", { user: "bob", limit: 2 })).result as Line[];
    expect(history.map((entry) => entry.text)).toEqual(["line one\nline two", "over the socket"]);

    // Groups: bob wrote to alice, so he is a member at once; carol has not, so she is invited.
    const created = await socket.call("group.create", { group: "crew", users: ["bob", "carol"] });
    expect(created.result).toMatchObject({
      name: "crew",
      admin: "alice",
      members: ["alice", "bob"],
      invited: ["carol"],
    });
    await stdio.notification("event", (params) => params.event === "created" && params.group === "crew");
    expect((await socket.call("group.info", { group: "crew" })).result).toMatchObject({ epoch: 1 });
    expect((await socket.call("group.list")).result).toMatchObject({ groups: ["crew"] });
    const groupSent = await stdio.call("send", { group: "crew", text: "hello crew" });
    expect(groupSent.result).toMatchObject({ group: "crew", to: "crew" });
    expect(jsonLines(await cliOk(bob, ["inbox", "--json"]))).toContainEqual(
      expect.objectContaining({ group: "crew", text: "hello crew", from: "alice" }),
    );
    const removed = await socket.call("group.remove", { group: "crew", user: "carol" });
    expect(removed.result).toMatchObject({ user: "carol", change: "uninvited", invited: [] });
    // carol declines nothing now: the application error carries the CLI's exit code and message.
    const notAdmin = await socket.call("group.add", { group: "nosuchgroup", user: "bob" });
    expect(notAdmin.error).toMatchObject({ code: -32000, data: { exitCode: 4 } });
    expect(await socket.call("group.leave", { group: "crew" })).toMatchObject({
      result: { group: "crew", left: true },
    });

    // Errors, each answered, none fatal.
    const unknownUser = await stdio.call("send", { to: "nosuchuser", text: "x" });
    expect(unknownUser.error).toMatchObject({
      code: -32000,
      data: { exitCode: 4, message: expect.stringContaining("nosuchuser") },
    });
    stdio.send("{ this is not json");
    await stdio.waitFor(
      (line) => (line.error as { code?: number } | undefined)?.code === -32700,
      "a parse error",
    );
    expect((await stdio.call("no.such.method")).error).toMatchObject({ code: -32601 });
    expect((await stdio.call("send", { to: "bob", text: "x", colour: "red" })).error).toMatchObject({
      code: -32602,
    });
    expect((await stdio.call("send", { to: "bob", group: "crew", text: "x" })).error).toMatchObject({
      code: -32602,
    });
    expect((await stdio.call("send", ["bob", "x"])).error).toMatchObject({ code: -32602 });
    stdio.send('{"jsonrpc":"1.0","id":77,"method":"send"}');
    await stdio.waitFor(
      (line) => line.id === 77 && (line.error as { code: number }).code === -32600,
      "invalid request",
    );
    // Over 1 MiB on one line: refused, and the same connection is still served.
    socket.send(
      `{"jsonrpc":"2.0","id":5,"method":"send","params":{"to":"bob","text":"${"x".repeat(1_100_000)}"}}`,
    );
    await socket.waitFor(
      (line) => line.id === null && (line.error as { code: number }).code === -32600,
      "too long",
    );
    expect((await socket.call("whoami")).result).toMatchObject({ username: "alice" });
    expect((await stdio.call("whoami")).result).toMatchObject({ username: "alice" });
    expect(daemon.child.exitCode).toBeNull();
  });

  it("serves `telepound send`, `send -` and `inbox` while it runs, and a dead daemon's socket is ignored", async () => {
    const daemon = await startDaemon(alice);
    const sent = await runCli(alice, ["--json", "send", "bob", "through the daemon"]);
    expect(sent.code).toBe(0);
    expect(jsonLines(sent.stdout)[0]).toMatchObject({ to: "bob", status: expect.any(String) });
    // The daemon ran it on its own connection: its log names the call.
    expect(daemon.stderr).toMatch(/socket#\d+ cli send exit 0/);
    const piped = await cliWithInput(alice, ["send", "bob", "-"], "first line\nsecond line\n");
    expect(piped.code).toBe(0);
    const bobGot = jsonLines(await cliOk(bob, ["inbox", "--json"])).filter((line) => line.from === "alice");
    expect(bobGot.map((line) => line.text)).toEqual(["through the daemon", "first line\nsecond line"]);

    // An application error through the thin path: the CLI's own message and exit code.
    const unknown = await runCli(alice, ["send", "nosuchuser", "x"]);
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toContain("nosuchuser");

    // inbox asks the daemon for what it received since the previous inbox.
    await cliOk(bob, ["send", "alice", "for the inbox"]);
    await daemon.rpc.notification("message", (params) => params.text === "for the inbox");
    const inbox = jsonLines(await cliOk(alice, ["inbox", "--json"]));
    expect(inbox.map((line) => line.text)).toContain("for the inbox");
    expect(daemon.stderr).toMatch(/cli inbox exit 0/);
    expect(jsonLines(await cliOk(alice, ["inbox", "--json"]))).toEqual([]);

    // The daemon dies without cleaning up: its socket file stays, and is ignored.
    await daemon.stop("SIGKILL");
    expect(existsSync(join(alice.home, "daemon.sock"))).toBe(true);
    const direct = await runCli(alice, ["send", "bob", "no daemon now"]);
    expect(direct.code).toBe(0);
    expect(direct.stderr).toBe("");
    // A new daemon takes the stale file's place; stopped, it removes its socket.
    const next = await startDaemon(alice);
    expect((await (await socketPeer(alice)).call("whoami")).result).toMatchObject({ username: "alice" });
    expect(await next.stop("SIGTERM")).toBe(0);
    expect(existsSync(join(alice.home, "daemon.sock"))).toBe(false);
  });
});
