// `--help` for every command in the table: its summary, arguments, options and examples are shown, and
// every example parses as the command it belongs to (handlers only record the call, so nothing connects).

import { CommanderError } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../../../cli-client/cli.js";
import type { CommandSpec } from "../../../cli-client/commands/command.js";
import { COMMANDS } from "../../../cli-client/commands/index.js";
import { EXIT_CODE_MEANINGS } from "../../../client/errors.js";
import { fakeIo, runCaptured } from "./helpers.js";

/** Help text with commander's line wrapping (and the examples' comment alignment) undone. */
function flat(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/** The part of a help text from its "Examples:" heading on. */
function examplesPart(help: string): string {
  const at = help.indexOf("\nExamples:\n");
  return at === -1 ? "" : help.slice(at);
}

/**
 * The words of the first command of a shell line, as a POSIX shell would split these examples: single and
 * double quotes, backslash escapes, a word starting with "#" begins a comment. The command ends at a pipe
 * or list operator (`| jq …`, `&& …`); a redirection (`> file`, `>> file`) is dropped with its target.
 * Substitutions and globs are refused, so an example cannot pass here and mean something else when pasted.
 */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: '"' | "'" | null = null;
  let redirected = false;
  const endWord = () => {
    if (word !== null && !redirected) words.push(word);
    if (word !== null) redirected = false;
    word = null;
  };
  for (let i = 0; i < line.length; i++) {
    const char = line[i]!;
    if (quote !== null) {
      if (char === quote) quote = null;
      else if (quote === '"' && char === "\\" && '"\\$`'.includes(line[i + 1] ?? "")) word += line[++i]!;
      else if (quote === '"' && "$`".includes(char)) throw new Error(`substitution in: ${line}`);
      else word += char;
      continue;
    }
    if (/\s/.test(char)) {
      endWord();
    } else if (char === "#" && word === null) {
      break;
    } else if ("|&;".includes(char)) {
      break;
    } else if (char === ">" || char === "<") {
      endWord();
      if (line[i + 1] === char) i++;
      // The next word is the redirection's target, not an argument.
      redirected = true;
    } else if (char === '"' || char === "'") {
      quote = char;
      word ??= "";
    } else if (char === "\\") {
      word = (word ?? "") + (line[++i] ?? "");
    } else if ("()$`*?".includes(char)) {
      throw new Error(`"${char}" makes this more than a plain command: ${line}`);
    } else {
      word = (word ?? "") + char;
    }
  }
  if (quote !== null) throw new Error(`unclosed ${quote} in: ${line}`);
  if (redirected && word === null) throw new Error(`redirection without a target in: ${line}`);
  endWord();
  return words;
}

/**
 * Parses `argv` (after "telepound") with the real program built from copies of the table whose handlers
 * only record which command ran; a commander error (unknown option, missing or excess argument) rejects.
 */
async function parseWithRecorders(argv: string[]): Promise<string[]> {
  const ran: string[] = [];
  const recorders: CommandSpec[] = COMMANDS.map((spec) => ({
    ...spec,
    run: async () => {
      ran.push(spec.name);
    },
  }));
  const program = buildProgram(recorders, fakeIo(), () => undefined);
  await program.parseAsync(argv, { from: "user" });
  return ran;
}

describe("shellWords", () => {
  it("splits like a shell: quotes, escapes, a trailing comment", () => {
    expect(shellWords(`telepound send bob "see you at 6"  # why`)).toEqual([
      "telepound",
      "send",
      "bob",
      "see you at 6",
    ]);
    expect(shellWords(`telepound send bob 'it''s' "say \\"hi\\"" a\\ b ""`)).toEqual([
      "telepound",
      "send",
      "bob",
      "its",
      'say "hi"',
      "a b",
      "",
    ]);
    expect(shellWords("telepound send bob C#  # the # inside a word is text")).toEqual([
      "telepound",
      "send",
      "bob",
      "C#",
    ]);
    expect(() => shellWords(`telepound send bob "open`)).toThrow(/unclosed/);
    expect(shellWords(`telepound listen --json | jq -r '.text' > out.txt`)).toEqual([
      "telepound",
      "listen",
      "--json",
    ]);
    expect(shellWords("telepound listen >> log.ndjson --json")).toEqual(["telepound", "listen", "--json"]);
    expect(() => shellWords("telepound inbox >")).toThrow(/without a target/);
    expect(() => shellWords("telepound send bob $(cat notes)")).toThrow(/plain command/);
  });

  it("lets the example check catch what commander refuses", async () => {
    await expect(parseWithRecorders(["send", "bob", "--nope", "hi"])).rejects.toBeInstanceOf(CommanderError);
    await expect(parseWithRecorders(["group", "create"])).rejects.toBeInstanceOf(CommanderError);
    await expect(parseWithRecorders(["whoami", "extra"])).rejects.toBeInstanceOf(CommanderError);
    expect(await parseWithRecorders(["group", "create", "team", "bob"])).toEqual(["group create"]);
  });
});

describe.each(COMMANDS.map((spec) => [spec.name, spec] as const))("telepound %s", (name, spec) => {
  it("--help shows the summary, every argument and option, and the examples", async () => {
    const { code, stdout, stderr } = await runCaptured([...name.split(" "), "--help"]);
    expect(code).toBe(0);
    expect(stderr).toBe("");
    expect(stdout).toContain(`Usage: telepound ${name} `);
    const help = flat(stdout);
    expect(help).toContain(flat(spec.summary));
    for (const arg of spec.args ?? []) {
      expect(help).toContain(arg.syntax);
      expect(help).toContain(flat(arg.description));
    }
    for (const option of spec.options ?? []) {
      expect(help).toContain(option.flags);
      expect(help).toContain(flat(option.description));
    }
    const examples = flat(examplesPart(stdout));
    expect(examples).not.toBe("");
    for (const example of spec.examples) expect(examples).toContain(flat(example));
  });

  it("has examples, each a whole telepound command line", () => {
    expect(spec.examples.length).toBeGreaterThan(0);
    for (const example of spec.examples) expect(example).toMatch(/^telepound \S/);
  });

  // Registered per example, so a failure names the line that no longer parses.
  for (const example of spec.examples) {
    it(`example parses as "${name}": ${example}`, async () => {
      const [program, ...argv] = shellWords(example);
      expect(program).toBe("telepound");
      expect(await parseWithRecorders(argv)).toEqual([name]);
    });
  }
});

describe("telepound --help", () => {
  it("lists every command, points to each command's help, and gives the exit codes", async () => {
    const { code, stdout, stderr } = await runCaptured(["--help"]);
    expect(code).toBe(0);
    expect(stderr).toBe("");
    const commandsPart = stdout.slice(stdout.indexOf("\nCommands:\n"), stdout.indexOf("\nExit codes:\n"));
    // "group create" is listed under its noun, "group".
    for (const first of new Set(COMMANDS.map((spec) => spec.name.split(" ")[0]!))) {
      expect(commandsPart).toMatch(new RegExp(`^  ${first}\\b`, "m"));
    }
    expect(stdout).toContain("telepound <command> --help");
    expect(flat(stdout)).toContain("Global options (--server, --home, --json) may stand before or after");
    const exitCodes = flat(stdout.slice(stdout.indexOf("\nExit codes:\n")));
    for (const [exitCode, meaning] of Object.entries(EXIT_CODE_MEANINGS)) {
      expect(exitCodes).toContain(`${exitCode} ${flat(meaning)}`);
    }
  });

  it("a noun's help lists its verbs, each with an example", async () => {
    const nouns = new Map<string, CommandSpec[]>();
    for (const spec of COMMANDS) {
      const [noun, ...verb] = spec.name.split(" ");
      if (verb.length > 0) nouns.set(noun!, [...(nouns.get(noun!) ?? []), spec]);
    }
    expect(nouns.has("group")).toBe(true);
    for (const [noun, specs] of nouns) {
      const { code, stdout } = await runCaptured([noun, "--help"]);
      expect(code).toBe(0);
      const examples = flat(examplesPart(stdout));
      for (const spec of specs) {
        expect(stdout).toMatch(new RegExp(`^  ${spec.name.slice(noun.length + 1)}\\b`, "m"));
        expect(examples).toContain(flat(spec.examples[0]!));
      }
    }
  });
});
