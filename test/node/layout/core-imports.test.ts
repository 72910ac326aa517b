// The core (client/) runs on any platform: it reaches Node, the terminal and the CLI only through
// client/platform.ts. So no file under client/ may import a node: module, a Node-only or terminal package
// (ws, better-sqlite3, commander, picocolors, cli-progress, @inquirer/*), or anything under cli-client/.
// Every import form counts: static, type-only, re-exports, side-effect imports and dynamic import().

import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

const FORBIDDEN_PACKAGES = ["ws", "better-sqlite3", "commander", "picocolors", "cli-progress"];

/** Why `specifier`, imported by `file` (relative to the repository), is not allowed in the core; null if it is. */
export function forbiddenImport(file: string, specifier: string): string | null {
  if (specifier.startsWith("node:")) return "a node: module";
  if (specifier.startsWith("@inquirer/")) return "a terminal prompt package";
  const name = specifier.split("/")[0]!;
  if (FORBIDDEN_PACKAGES.includes(name)) return `the package ${name}`;
  if (specifier.startsWith(".")) {
    const target = relative(root, resolve(root, dirname(file), specifier));
    if (target === "cli-client" || target.startsWith("cli-client/")) return "the CLI (cli-client/)";
    if (!target.startsWith("client/") && !target.startsWith("protocol/"))
      return `${target}, outside client/ and protocol/`;
  }
  return null;
}

/** Every module specifier in `text`, in order: import/export … from "x", import "x", import("x"). */
export function specifiersOf(text: string): string[] {
  const patterns = [
    /(?:^|[\n;])\s*(?:import|export)\b[^;"']*?\bfrom\s*["']([^"']+)["']/g,
    /(?:^|[\n;])\s*import\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  return patterns
    .flatMap((pattern) => [...text.matchAll(pattern)])
    .sort((a, b) => a.index - b.index)
    .map((match) => match[1]!);
}

function coreSources(): string[] {
  return readdirSync(join(root, "client"), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => relative(root, join(entry.parentPath, entry.name)));
}

describe("the core's imports", () => {
  it("include no node: module, no Node-only or terminal package and nothing of cli-client/", () => {
    const files = coreSources();
    expect(files.length).toBeGreaterThan(20);
    const violations = files.flatMap((file) =>
      specifiersOf(readFileSync(join(root, file), "utf8")).flatMap((specifier) => {
        const why = forbiddenImport(file, specifier);
        return why ? [`${file} imports "${specifier}": ${why}`] : [];
      }),
    );
    expect(violations).toEqual([]);
  });

  it("are all found, whatever their form, and judged by where they lead", () => {
    const text = [
      'import { readFile } from "node:fs/promises";',
      'import type { IncomingMessage } from "node:http";',
      'import WebSocket from "ws";',
      "import Database from 'better-sqlite3';",
      'import {\n  Command,\n  CommanderError,\n} from "commander";',
      'export { default } from "picocolors";',
      'import "cli-progress";',
      'const confirm = await import("@inquirer/confirm");',
      'import { Printer } from "../cli-client/output.js";',
      'import { z } from "zod";',
      'import { utf8 } from "../protocol/bytes.js";',
      'import { Api } from "./net/api.js";',
    ].join("\n");
    const specifiers = specifiersOf(text);
    expect(specifiers).toHaveLength(12);
    const judged = specifiers.map((specifier) => forbiddenImport("client/files.ts", specifier));
    expect(judged.slice(0, 9).every((why) => why !== null)).toBe(true);
    expect(judged.slice(9)).toEqual([null, null, null]);
    // A path that climbs out of client/ into the CLI is caught however it is spelled.
    expect(forbiddenImport("client/net/api.ts", "../../cli-client/platform/index.js")).toBe(
      "the CLI (cli-client/)",
    );
    expect(forbiddenImport("client/net/api.ts", "../../worker/index.js")).toMatch(/outside client/);
  });
});
