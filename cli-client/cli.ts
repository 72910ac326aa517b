// Builds the commander program from the command table and runs it: global options may stand before or
// after the command, and every failure becomes one stderr line plus the exit code from errors.ts.

import { Command, CommanderError } from "commander";
import { z } from "zod";
import packageJson from "../package.json" with { type: "json" };
import { COMMANDS } from "./commands/index.js";
import type { CommandSpec } from "./commands/command.js";
import { type CliIo, type Context, DEFAULT_SERVER, type GlobalOptions, createContext } from "./context.js";
import { EXIT_CODE_MEANINGS, ExitCode, describeError } from "../client/errors.js";
import { Printer, sanitize } from "./output.js";

/** Summaries of the nouns that group several commands ("group create", "group add", …). */
const NOUN_SUMMARIES = new Map([["group", "groups: create, add, remove, join, decline, leave, info, list"]]);

/**
 * Where a command's context comes from and what is done with it afterwards: by default a new client for
 * the home, closed at the end; the daemon (daemon/server.ts) lends its own long-lived one instead.
 */
export interface ContextHost {
  create(options: GlobalOptions, io: CliIo): Promise<Context>;
  release(ctx: Context): Promise<void>;
}

// zod compiles a fast parser for an object schema on its first use (with new Function): worth it for a
// schema parsed thousands of times, a loss for a command that parses each a few times and exits.
z.config({ jitless: true });

const OWN_CLIENT: ContextHost = {
  create: (options, io) => createContext(options, io),
  release: (ctx) => ctx.client.close(),
};

/** Runs one invocation (`argv` without node and script) and returns its exit code; never exits itself. */
export async function runCli(
  argv: readonly string[],
  io: CliIo,
  commands: readonly CommandSpec[] = COMMANDS,
  host: ContextHost = OWN_CLIENT,
): Promise<number> {
  let context: Context | null = null;
  const program = buildProgram(
    commands,
    io,
    (ctx) => {
      context = ctx;
    },
    host,
  );
  try {
    await program.parseAsync([...argv], { from: "user" });
    return ExitCode.ok;
  } catch (error) {
    // Before the options were parsed there is no context yet; --json is then read from argv directly.
    const printer = (context as Context | null)?.printer ?? new Printer(wantsJson(argv), io);
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return ExitCode.ok;
      const message =
        error.code === "commander.help"
          ? "missing command"
          : error.message.replace(/^error: /, "").replace(/\n+/g, " ");
      printer.error(`${message} (see "telepound --help")`, ExitCode.usage);
      return ExitCode.usage;
    }
    const { exitCode, message } = describeError(error);
    printer.error(message, exitCode);
    if (exitCode === ExitCode.unexpected && io.env.TELEPOUND_DEBUG && error instanceof Error) {
      // The stack starts with the message, which may carry the server's words.
      io.stderr.write(`${sanitize(error.stack ?? "")}\n`);
    }
    return exitCode;
  } finally {
    const used = context as Context | null;
    if (used) await host.release(used);
  }
}

export function buildProgram(
  commands: readonly CommandSpec[],
  io: CliIo,
  onContext: (ctx: Context) => void,
  host: ContextHost = OWN_CLIENT,
): Command {
  const program = new Command("telepound")
    .description("End-to-end encrypted chat")
    .version(packageJson.version)
    .option("--server <url>", `server URL (default: $TELEPOUND_SERVER, else ${DEFAULT_SERVER})`)
    .option(
      "--home <dir>",
      "where the session and keys live (default: $TELEPOUND_HOME, else ~/.config/telepound)",
    )
    .option("--json", "one JSON object per line on stdout")
    // Errors are printed by runCli as one line; help asked for with --help still goes to stdout.
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: () => undefined,
      outputError: () => undefined,
    })
    .exitOverride()
    .addHelpText("after", programFooter());

  for (const spec of commands) {
    // "group create" is the command "create" under "group" (noun, then verb); the noun's help lists them.
    const [first = "", ...rest] = spec.name.split(" ");
    let parent = program;
    if (rest.length > 0) {
      const existing = program.commands.find((command) => command.name() === first);
      // A command that is also a noun ("devices", "devices revoke"): its help shows its verbs' examples too.
      if (existing && !NOUN_SUMMARIES.has(first) && spec.examples[0]) {
        existing.addHelpText("after", `\nExamples of "${first}" commands:\n  ${spec.examples[0]}`);
      }
      parent =
        existing ??
        // Inherits the program's output and exit settings (commander copies them to subcommands).
        program
          .command(first)
          .description(NOUN_SUMMARIES.get(first) ?? `${first} commands`)
          // One example per verb, read when the help is shown so verbs registered later are included.
          .addHelpText("after", () =>
            examplesSection(
              commands
                .filter((other) => other.name.startsWith(`${first} `))
                .flatMap((other) => other.examples.slice(0, 1)),
            ),
          );
    }
    const command = parent.command(rest.length > 0 ? rest.join(" ") : first).description(spec.summary);
    for (const arg of spec.args ?? []) command.argument(arg.syntax, arg.description);
    for (const option of spec.options ?? [])
      command.option(option.flags, option.description, option.defaultValue);
    command.addHelpText("after", examplesSection(spec.examples));
    command.action(async (...received: unknown[]) => {
      // commander passes the positional arguments, then the options object, then the command itself.
      const self = received.at(-1) as Command;
      const positional = received.slice(0, self.registeredArguments.length);
      const args = positional.flatMap((value) => (value === undefined ? [] : value)) as string[];
      const ctx = await host.create(self.optsWithGlobals<GlobalOptions>(), io);
      onContext(ctx);
      await spec.run(ctx, { args, options: self.opts() });
    });
  }
  return program;
}

/** The top-level help's closing lines: where options may go, where to learn more, what exit codes mean. */
function programFooter(): string {
  const codes = Object.entries(EXIT_CODE_MEANINGS).map(([code, meaning]) => `  ${code.padEnd(5)}${meaning}`);
  return [
    "",
    "Global options (--server, --home, --json) may stand before or after the command;",
    "with --json every command prints one JSON object per line.",
    "Run `telepound <command> --help` for a command's options and examples.",
    "",
    "Exit codes:",
    ...codes,
  ].join("\n");
}

/** "Examples:" with one command line each, their "# why" comments lined up. */
function examplesSection(examples: readonly string[]): string {
  if (examples.length === 0) return "";
  const split = examples.map((example) => {
    const at = example.indexOf("  # ");
    return at === -1
      ? { line: example, why: "" }
      : { line: example.slice(0, at), why: example.slice(at + 2) };
  });
  const width = Math.max(...split.filter(({ why }) => why).map(({ line }) => line.length), 0);
  const lines = split.map(({ line, why }) => `  ${why ? `${line.padEnd(width)}  ${why}` : line}`);
  return ["", "Examples:", ...lines].join("\n");
}

/** --json before a literal "--" (after it, "--json" is message text). */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end === -1 ? argv : argv.slice(0, end)).includes("--json");
}
