// Bundles the CLI into dist/:
//   dist/telepound.mjs   the entry and the package's "bin" (cli-client/main.ts; ESM for Node 20, with a
//                        shebang), with dist/chunks/ for what it loads with import() only when needed, so
//                        `telepound --version` and a command through a daemon read a few small files;
//   dist/cli.cjs         the CLI itself (cli-client/cli.ts), one function expression that
//                        cli-client/load-cli.ts compiles through node:vm with
//   dist/cli.v8cache     its V8 code cache, made here by loading the bundle once and running `--help`: a
//                        command then starts without parsing and compiling the bundle (Node 20 caches no
//                        compiled ES modules). Code loaded with import() inside the CLI (the chat session,
//                        the daemon, prompts, progress bars) stays in the bundle but runs only when used.
//
// Dependencies are bundled too: Node resolving, reading and compiling hundreds of small package files
// (zod alone has hundreds) took most of a command's start-up, where one file per chunk takes a fraction.
// What cannot be bundled stays in node_modules: better-sqlite3 loads a native addon from its own folder,
// and ws asks for the optional native bufferutil and utf-8-validate, falling back when they are absent.
// Whitespace is left out too (names are kept, for readable stack traces; the source maps map them back):
// Node parses all of a file before running any of it, so its size is start-up time.

import { execFileSync } from "node:child_process";
import { chmod, readdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { zodEnglishOnly } from "./zod-english-only.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = join(root, "dist");

// A previous build's chunks have other hashes; leave only this build's files. dist/web is the web
// client's build (scripts/build-web.mjs), which a running `wrangler dev` serves: it stays.
for (const entry of await readdir(outdir).catch(() => [])) {
  if (entry !== "web") await rm(join(outdir, entry), { recursive: true, force: true });
}

const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  external: ["better-sqlite3", "bufferutil", "utf-8-validate"],
  plugins: [zodEnglishOnly],
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: "linked",
  logLevel: "warning",
};

await build({
  ...common,
  entryPoints: { telepound: join(root, "cli-client", "main.ts") },
  outdir,
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  splitting: true,
  format: "esm",
});

await build({
  ...common,
  entryPoints: { cli: join(root, "cli-client", "cli.ts") },
  outdir,
  outExtension: { ".js": ".cjs" },
  format: "cjs",
  // import() of the CLI's own modules becomes a deferred require: their code is in this one file (one
  // code cache) but runs only when first imported. Packages outside (better-sqlite3) are required too.
  supported: { "dynamic-import": false },
  // The file is one function expression, called by load-cli.ts with CommonJS's exports, require, module.
  banner: { js: "(function (exports, require, module) {" },
  footer: { js: "})" },
});

// The code cache, made in a process of its own so that no flag of this one is baked in (V8 would reject
// the cache in a command that runs without it). `--help` runs what every command runs first.
execFileSync(
  process.execPath,
  [
    "--input-type=module",
    "-e",
    `
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Writable } from "node:stream";
import { Script } from "node:vm";
const filename = ${JSON.stringify(join(outdir, "cli.cjs"))};
const script = new Script(readFileSync(filename, "utf8"), { filename });
const module = { exports: {} };
script.runInThisContext()(module.exports, createRequire(filename), module);
const sink = new Writable({ write: (chunk, encoding, done) => done() });
await module.exports.runCli(["--help"], { stdin: process.stdin, stdout: sink, stderr: sink, env: {} });
writeFileSync(${JSON.stringify(join(outdir, "cli.v8cache"))}, script.createCachedData());
`,
  ],
  { stdio: ["ignore", "inherit", "inherit"] },
);

// npm links the bin on install, but `node scripts/build-cli.mjs` alone must leave a runnable file too.
await chmod(join(outdir, "telepound.mjs"), 0o755);
