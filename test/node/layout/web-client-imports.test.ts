// The web client (web-client/) runs in a page: it reaches the client core and the protocol, and never
// Node (no node: module, no Node-only or terminal package) nor the CLI's adapter (cli-client/).

import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const NODE_ONLY_PACKAGES = ["ws", "better-sqlite3", "commander", "picocolors", "cli-progress", "@inquirer"];

/** Every module specifier in `text`: import/export … from "x", import "x", import("x"). */
function specifiersOf(text: string): string[] {
  const patterns = [
    /(?:^|[\n;])\s*(?:import|export)\b[^;"']*?\bfrom\s*["']([^"']+)["']/g,
    /(?:^|[\n;])\s*import\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  return patterns.flatMap((pattern) => [...text.matchAll(pattern)]).map((match) => match[1]!);
}

function forbidden(file: string, specifier: string): string | null {
  if (specifier.startsWith("node:")) return "a node: module";
  if (NODE_ONLY_PACKAGES.includes(specifier.split("/")[0]!)) return "a Node-only or terminal package";
  if (specifier.startsWith(".")) {
    const target = relative(root, resolve(root, dirname(file), specifier));
    if (target.startsWith("cli-client")) return "the CLI (cli-client/)";
    if (![/^web-client\//, /^client\//, /^protocol\//].some((allowed) => allowed.test(target)))
      return `${target}, outside web-client/, client/ and protocol/`;
  }
  return null;
}

describe("the web client's imports", () => {
  it("include no node: module, no Node-only package and nothing of cli-client/", () => {
    const files = readdirSync(join(root, "web-client"), { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile() && /\.tsx?$/.test(entry.name))
      .map((entry) => relative(root, join(entry.parentPath, entry.name)));
    expect(files.length).toBeGreaterThan(8);
    const violations = files.flatMap((file) =>
      specifiersOf(readFileSync(join(root, file), "utf8")).flatMap((specifier) => {
        const why = forbidden(file, specifier);
        return why ? [`${file} imports "${specifier}": ${why}`] : [];
      }),
    );
    expect(violations).toEqual([]);
  });

  it("would catch each kind of forbidden import", () => {
    expect(forbidden("web-client/platform/x.ts", "node:fs")).not.toBeNull();
    expect(forbidden("web-client/platform/x.ts", "ws")).not.toBeNull();
    expect(forbidden("web-client/platform/x.ts", "@inquirer/password")).not.toBeNull();
    expect(forbidden("web-client/platform/x.ts", "../../cli-client/platform/index.js")).not.toBeNull();
    expect(forbidden("web-client/platform/x.ts", "../../worker/index.js")).not.toBeNull();
    expect(forbidden("web-client/platform/x.ts", "../../client/platform.js")).toBeNull();
    expect(forbidden("web-client/platform/x.ts", "@noble/hashes/sha2.js")).toBeNull();
  });
});
