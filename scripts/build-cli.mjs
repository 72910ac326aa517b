// Bundles the CLI (cli-client/main.ts) into dist/: dist/telepound.mjs is the entry and the package's "bin"
// (ESM for Node 20, with a shebang), and dist/chunks/ holds the code it loads with import() only when a
// command needs it, so `telepound --version` reads one small file.
//
// Dependencies are bundled too: Node resolving, reading and compiling hundreds of small package files
// (zod alone has hundreds) took most of a command's start-up, where one file per chunk takes a fraction.
// What cannot be bundled stays in node_modules: better-sqlite3 loads a native addon from its own folder,
// and ws asks for the optional native bufferutil and utf-8-validate, falling back when they are absent.
// Whitespace is left out too (names are kept, for readable stack traces; the source maps map them back):
// Node parses all of a file before running any of it, so its size is start-up time.

import { chmod, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = join(root, "dist");

/**
 * zod's namespace re-exports its error messages in every language it has (a third of zod's size); the
 * CLI never switches zod's language, so only English, the default zod sets for itself, is bundled.
 */
const zodEnglishOnly = {
  name: "zod-english-only",
  setup(plugin) {
    plugin.onResolve({ filter: /\/locales\/index\.js$/ }, ({ importer, resolveDir }) =>
      importer.includes("/node_modules/zod/")
        ? { path: join(resolveDir, "..", "locales", "index.js"), namespace: "zod-english-only" }
        : undefined,
    );
    plugin.onLoad({ filter: /.*/, namespace: "zod-english-only" }, ({ path }) => ({
      contents: `export { default as en } from ${JSON.stringify(join(dirname(path), "en.js"))};`,
      resolveDir: dirname(path),
    }));
  },
};

// A previous build's chunks have other hashes; leave only this build's files.
await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: { telepound: join(root, "cli-client", "main.ts") },
  outdir,
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["better-sqlite3", "bufferutil", "utf-8-validate"],
  plugins: [zodEnglishOnly],
  minifyWhitespace: true,
  minifySyntax: true,
  // Bundled CommonJS packages (commander, ws, tweetnacl, …) call require() for Node's own modules; ESM
  // has no require, so each file makes its own. The entry's shebang comes from main.ts.
  banner: {
    js: 'import { createRequire as createRequireForBundledPackages } from "node:module";\nconst require = createRequireForBundledPackages(import.meta.url);',
  },
  sourcemap: "linked",
  logLevel: "warning",
});
// npm links the bin on install, but `node scripts/build-cli.mjs` alone must leave a runnable file too.
await chmod(join(outdir, "telepound.mjs"), 0o755);
