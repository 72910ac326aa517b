// Runs the real, built CLI (dist/telepound.mjs) as a child process, the way a user or a script would.

import { type ChildProcessWithoutNullStreams, execFile, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rememberSecret } from "./privacy.js";

const CLI = new URL("../../dist/telepound.mjs", import.meta.url).pathname;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliUser {
  home: string;
  server: string;
  password: string;
}

export function newHome(label: string): string {
  return mkdtempSync(join(tmpdir(), `telepound-${label}-`));
}

function cliEnv(user: CliUser, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TELEPOUND_PASSWORD: user.password, ...extra };
  delete env.TELEPOUND_SERVER;
  delete env.TELEPOUND_HOME;
  return env;
}

export function runCli(
  user: CliUser,
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, "--server", user.server, "--home", user.home, ...args],
      { env: cliEnv(user, extraEnv), timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Like runCli, but fails the test with the CLI's own words when it exits non-zero. */
export async function cliOk(user: CliUser, args: string[]): Promise<string> {
  const result = await runCli(user, args);
  if (result.code !== 0) throw cliFailure(args, result);
  return result.stdout;
}

function cliFailure(args: string[], result: CliResult): Error {
  return new Error(
    `telepound ${args.join(" ")} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
  );
}

/** A new user `name` signed up through the CLI on `server`, its password remembered for the privacy scan. */
export async function cliUser(server: string, name: string): Promise<CliUser> {
  const user = { home: newHome(name), server, password: `password of ${name}` };
  rememberSecret(`password of ${name}`, user.password);
  await cliOk(user, ["signup", name]);
  return user;
}

/**
 * Sends `text` to `group`. A group send that meets changes its sender has not seen shows them and sends
 * nothing (exit 10), so that one is sent again; any other failure throws with the CLI's own words.
 */
export async function cliSendToGroup(user: CliUser, group: string, text: string): Promise<void> {
  rememberSecret("a group message sent from the CLI", text);
  const args = ["send", "--group", group, text];
  const first = await runCli(user, args);
  if (first.code === 10) await cliOk(user, args);
  else if (first.code !== 0) throw cliFailure(args, first);
}

/** Runs `inbox` saving files into a new folder; the first file it saved, if any, by name and path. */
export async function cliReceiveFile(
  user: CliUser,
  label: string,
): Promise<{ name: string; path: string } | undefined> {
  const out = newHome(label);
  const received = jsonLines(await cliOk(user, ["--json", "inbox", "--out", out])).find(
    (line) => line.file !== undefined,
  );
  return received?.file as { name: string; path: string } | undefined;
}

/** One JSON object per line. */
export function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** A long-running CLI process (inbox --wait, chat) whose output a test can wait on. */
export class CliProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = "";
  stderr = "";
  readonly exited: Promise<number>;

  constructor(user: CliUser, args: string[]) {
    this.child = spawn(process.execPath, [CLI, "--server", user.server, "--home", user.home, ...args], {
      env: cliEnv(user),
    });
    this.child.stdout.on("data", (chunk) => (this.stdout += chunk));
    this.child.stderr.on("data", (chunk) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code ?? 1)));
  }

  async waitForOutput(predicate: (stdout: string) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.stdout)) {
      if (Date.now() > deadline) throw new Error(`timed out; stdout: ${this.stdout}\nstderr: ${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
