// No import circles among the client's modules (the core, client/; the CLI, cli-client/; the shared formats,
// protocol/) nor the server's (worker/, durable-objects/), type-only imports included (a type circle still
// ties two files' meanings together). protocol/ is imported by both sides and imports neither.

import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const FOLDERS = ["client", "cli-client", "protocol", "worker", "durable-objects"];

/** Every .ts file under `folder`, relative to the repository. */
function sources(folder: string): string[] {
  return readdirSync(join(root, folder), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => relative(root, join(entry.parentPath, entry.name)));
}

/**
 * The repository files a module imports (relative specifiers only; `.js` names the `.ts` file), also
 * through an inline type import, `import("./x.js").T`.
 */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  const specifiers = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+"(\.[^"]+)"/g),
    ...text.matchAll(/\bimport\("(\.[^"]+)"\)\./g),
  ].map((match) => match[1]!);
  return specifiers.map((specifier) =>
    relative(root, resolve(root, dirname(file), specifier.replace(/\.js$/, ".ts"))),
  );
}

/** One import cycle, as the files around it, or null. */
function findCycle(graph: Map<string, string[]>): string[] | null {
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (file: string): string[] | null => {
    if (state.get(file) === "done") return null;
    if (state.get(file) === "open") return [...path.slice(path.indexOf(file)), file];
    state.set(file, "open");
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(file, "done");
    return null;
  };
  for (const file of graph.keys()) {
    const cycle = visit(file);
    if (cycle) return cycle;
  }
  return null;
}

const graph = new Map(FOLDERS.flatMap(sources).map((file) => [file, importsOf(file)] as const));

describe("the client's module graph", () => {
  it("reads real imports (the check would pass vacuously otherwise)", () => {
    expect(graph.get("cli-client/cli.ts")).toContain("cli-client/commands/index.ts");
    expect(graph.get("client/crypto/message.ts")).toContain("protocol/envelope.ts");
    expect(graph.get("durable-objects/server-shard.ts")).toContain("durable-objects/contracts.ts");
  });

  it("finds a cycle where there is one", () => {
    const looped = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts"]],
    ]);
    expect(findCycle(looped)).toEqual(["a.ts", "b.ts", "c.ts", "a.ts"]);
  });

  it("has no import cycle among client/, cli-client/, protocol/, worker/ and durable-objects/", () => {
    expect(findCycle(graph)).toBeNull();
  });

  it("keeps protocol/ free of both sides", () => {
    const crossing = [...graph]
      .filter(([file]) => file.startsWith("protocol/"))
      .flatMap(([file, imports]) =>
        imports.filter((target) => !target.startsWith("protocol/")).map((target) => `${file} → ${target}`),
      );
    expect(crossing).toEqual([]);
  });
});
