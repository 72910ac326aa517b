// The thin path: while a daemon runs for the home, `telepound send`, `inbox`, `group …` and the other
// commands it serves go through its socket instead of opening a connection of their own. This module is
// loaded before anything else of the CLI and imports only Node's own modules, so such a command costs
// little more than starting Node; without a daemon (no socket, or a stale one) it steps aside.

import { connect } from "node:net";
import { daemonSocketPath, resolveHomeDir } from "../platform/home-dir.js";

/** The commands a daemon runs; the others (signup, login, logout, chat, daemon) always run here. */
const THROUGH_DAEMON = new Set([
  "whoami",
  "devices",
  "user",
  "verify",
  "trust",
  "send",
  "inbox",
  "listen",
  "history",
  "group",
]);

export interface ThinIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

/** A command line's global options (--server, --home, --json, wherever they stand) and its command. */
export function readGlobals(argv: readonly string[]): {
  server?: string;
  home?: string;
  json: boolean;
  command?: string;
  /** The words after the command, global options left out. */
  rest: string[];
} {
  const found: { server?: string; home?: string; json: boolean; command?: string; rest: string[] } = {
    json: false,
    rest: [],
  };
  let literal = false;
  for (let at = 0; at < argv.length; at += 1) {
    const word = argv[at]!;
    if (!literal && word === "--") {
      literal = true;
      if (found.command !== undefined) found.rest.push(word);
      continue;
    }
    const option = literal ? null : /^--(server|home)(?:=(.*))?$/.exec(word);
    if (option) {
      const value = option[2] ?? argv[++at];
      if (option[1] === "server") found.server = value;
      else found.home = value;
    } else if (!literal && word === "--json") found.json = true;
    else if (found.command === undefined) found.command = word;
    else found.rest.push(word);
  }
  return found;
}

/**
 * Runs the command through the daemon of its home and returns its exit code, or null when it should run
 * here: not a command the daemon serves, help asked for, a terminal prompt wanted, or no daemon running.
 */
export async function viaDaemon(argv: readonly string[], io: ThinIo): Promise<number | null> {
  const globals = readGlobals(argv);
  const { command, rest } = globals;
  if (command === undefined || !THROUGH_DAEMON.has(command)) return null;
  const options = rest.slice(0, rest.includes("--") ? rest.indexOf("--") : rest.length);
  if (options.includes("--help") || options.includes("-h")) return null;
  // verify asks on a terminal whether the numbers match: a prompt the daemon cannot show.
  if (command === "verify" && io.stdin.isTTY && !options.includes("--yes")) return null;
  const socket = await connected(daemonSocketPath(resolveHomeDir(globals.home, io.env)));
  if (!socket) return null;

  const readsStdin =
    command === "send" &&
    (options.includes("--stdin") || rest.filter((word) => word !== "--").at(-1) === "-");
  const stdin = readsStdin ? await readAll(io.stdin) : undefined;
  const server = globals.server ?? io.env.TELEPOUND_SERVER;
  const request = {
    jsonrpc: "2.0",
    id: 1,
    method: "cli",
    params: {
      argv,
      colors: wantsColors(io.stdout, io.env),
      ...(stdin === undefined ? {} : { stdin }),
      ...(server ? { server } : {}),
    },
  };
  return new Promise<number>((resolve) => {
    let buffered = "";
    let answered = false;
    // Ctrl-C: leaving is enough, the daemon ends the command (listen) when its caller goes away.
    const onSignal = (signal: NodeJS.Signals) => {
      answered = true;
      socket.destroy();
      resolve(command === "listen" || signal === "SIGTERM" ? 0 : 130);
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    const done = (code: number) => {
      process.removeListener("SIGINT", onSignal);
      process.removeListener("SIGTERM", onSignal);
      answered = true;
      socket.end();
      resolve(code);
    };
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        const message = JSON.parse(line) as {
          method?: string;
          params?: { stream: "stdout" | "stderr"; text: string };
          result?: { exitCode: number };
          error?: { message: string; data?: { exitCode?: number } };
        };
        if (message.method === "cli.output" && message.params) {
          (message.params.stream === "stdout" ? io.stdout : io.stderr).write(message.params.text);
        } else if (message.result) done(message.result.exitCode);
        else if (message.error) {
          io.stderr.write(`telepound: the daemon refused the command: ${message.error.message}\n`);
          done(message.error.data?.exitCode ?? 1);
        }
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      if (answered) return;
      io.stderr.write("telepound: the daemon closed the connection before the command finished\n");
      done(5);
    });
    socket.write(`${JSON.stringify(request)}\n`);
  });
}

/** A connection to the daemon's socket, or null: no socket file, or one nobody listens on (stale). */
function connected(path: string): Promise<ReturnType<typeof connect> | null> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.removeAllListeners("error");
      resolve(socket);
    });
    socket.once("error", () => resolve(null));
  });
}

async function readAll(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  // The daemon's send takes it as standard input and drops the last line's newline, as here.
  return Buffer.concat(chunks).toString("utf8");
}

/** output.ts wantsColors, repeated here so the thin path loads nothing of the CLI. */
function wantsColors(stdout: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR && env.FORCE_COLOR !== "0") return true;
  return stdout.isTTY === true && env.TERM !== "dumb";
}
