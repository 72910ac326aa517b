// `chat` run in a real pseudo-terminal, as a person at a terminal runs it: tests type into it and wait for
// what the screen shows, escape sequences and all.

import { stripVTControlCharacters } from "node:util";
import { type IPty, spawn as spawnPty } from "@lydell/node-pty";
import type { CliUser } from "./cli.js";

const CLI = new URL("../../dist/telepound.mjs", import.meta.url).pathname;

/** `chat` in a pseudo-terminal: what a person at a terminal sees, escape sequences and all. */
export class PtyChat {
  readonly pty: IPty;
  output = "";
  readonly exited: Promise<number>;

  constructor(
    user: CliUser,
    args: string[] = [],
    size: { cols: number; rows: number } = { cols: 160, rows: 50 },
  ) {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !["NO_COLOR", "TELEPOUND_HOME", "TELEPOUND_SERVER"].includes(key))
        env[key] = value;
    }
    Object.assign(env, { TELEPOUND_PASSWORD: user.password, TERM: "xterm-256color" });
    this.pty = spawnPty(
      process.execPath,
      [CLI, "--server", user.server, "--home", user.home, "chat", ...args],
      {
        name: "xterm-256color",
        ...size,
        env,
      },
    );
    this.pty.onData((data) => (this.output += data));
    this.exited = new Promise((resolve) => this.pty.onExit(({ exitCode }) => resolve(exitCode)));
  }

  /** The screen's text without colours and cursor movement. */
  get text(): string {
    return stripVTControlCharacters(this.output);
  }

  type(keys: string): void {
    this.pty.write(keys);
  }

  async waitFor(predicate: (text: string) => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.text)) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; the terminal shows:\n${this.text}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
