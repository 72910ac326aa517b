// The shape of one CLI command: a declarative object (name, arguments, options, handler) that cli.ts
// registers with commander. One command per file in this folder; the table is commands/index.ts.

import type { Context } from "../context.js";

export interface ArgumentSpec {
  /** commander syntax: "<user>" required, "[user]" optional, "<text...>" variadic (last only). */
  syntax: string;
  description: string;
}

export interface OptionSpec {
  /** commander syntax, e.g. "--wait <seconds>". */
  flags: string;
  description: string;
  defaultValue?: string;
}

export interface CommandInput {
  /** Positional arguments in order, a variadic one spread at the end. */
  args: string[];
  /** This command's own options (not the global ones), as commander parsed them. */
  options: Record<string, string | boolean | undefined>;
}

export interface CommandSpec {
  name: string;
  summary: string;
  args?: readonly ArgumentSpec[];
  options?: readonly OptionSpec[];
  /**
   * Whole command lines shown under "Examples:" in the command's --help, each starting with "telepound ".
   * One may end with "  # why" to explain itself; the help tests parse every example as written.
   */
  examples: readonly string[];
  /** Resolves when the command is done; throws a CliError (or anything) on failure. Never exits. */
  run(ctx: Context, input: CommandInput): Promise<void>;
}
