// Where the password comes from: $TELEPOUND_PASSWORD when set (scripts, tests), else a no-echo prompt on
// the terminal. Signup asks twice; without a terminal and without the variable there is nothing to ask.

import { UsageError } from "../client/errors.js";
import type { TextSink } from "./output.js";

/** A new account's password must be at least this long; login accepts whatever the account has. */
export const MIN_PASSWORD_LENGTH = 8;

export interface PasswordSource {
  /** For signup: asks twice and refuses a mismatch or a short password. */
  newPassword(username: string): Promise<string>;
  /** For login. */
  password(username: string): Promise<string>;
}

export interface PasswordIo {
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Prompts go to stderr so that stdout (and --json output) stays clean. */
  stderr: NodeJS.WritableStream & TextSink;
}

export function passwordSource(io: PasswordIo): PasswordSource {
  const fromEnv = io.env.TELEPOUND_PASSWORD;
  const ask = async (message: string): Promise<string> => {
    if (!io.stdin.isTTY) {
      throw new UsageError("no password: set TELEPOUND_PASSWORD, or run telepound in a terminal to be asked");
    }
    // Loaded only when someone is asked: scripts and TELEPOUND_PASSWORD never need the prompt's code.
    const { default: passwordPrompt } = await import("@inquirer/password");
    return passwordPrompt(
      { message, mask: false },
      { input: io.stdin, output: io.stderr, clearPromptOnDone: true },
    );
  };
  return {
    async newPassword(username) {
      const first = fromEnv ?? (await ask(`New password for ${username}:`));
      if (fromEnv === undefined) {
        const second = await ask("Repeat the password:");
        if (first !== second) throw new UsageError("the passwords do not match");
      }
      if ([...first].length < MIN_PASSWORD_LENGTH) {
        throw new UsageError(`the password must be at least ${MIN_PASSWORD_LENGTH} characters long`);
      }
      return first;
    },
    async password(username) {
      return fromEnv ?? (await ask(`Password for ${username}:`));
    },
  };
}
