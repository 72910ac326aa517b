// Loads the CLI's bundle (dist/cli.cjs, everything but the entry) with the V8 code cache the build made
// for it (dist/cli.v8cache). Parsing and compiling the bundle is most of what a command costs before it
// does anything: Node 20 has no compile cache of its own for ES modules (22 has), so the bundle is one
// function expression compiled here through node:vm, which accepts a cache. V8 checks the cache against
// the source and its own version and flags and ignores one that does not fit (another Node, an edited
// bundle): then the bundle is compiled as if there were none, only slower.
//
// The cache is made once, by the build (scripts/build-cli.mjs), never at run time: a command writes
// nothing outside the home.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Script } from "node:vm";
import type * as Cli from "./cli.js";

/** What the bundle exports: the CLI's runner. */
export type CliModule = typeof Cli;

/** The bundle's file is one `(function (exports, require, module) { … })` expression (see the build). */
type BundleFunction = (exports: object, require: NodeRequire, module: { exports: object }) => void;

export function loadCli(bundle: URL, cache: URL): CliModule {
  const source = readFileSync(bundle, "utf8");
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cache);
  } catch {
    // No cache (a build that could not make one): compile without.
  }
  const filename = bundle.pathname;
  const script = new Script(source, { filename, ...(cachedData ? { cachedData } : {}) });
  const module = { exports: {} };
  (script.runInThisContext() as BundleFunction)(module.exports, createRequire(filename), module);
  return module.exports as CliModule;
}
