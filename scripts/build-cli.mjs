// Bundles the CLI (cli-client/main.ts) into dist/telepound.mjs, the package's "bin": one ESM file for
// Node 20 with a shebang; dependencies stay in node_modules (packages: "external").

import { chmod } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outfile = join(root, "dist", "telepound.mjs");

await build({
  entryPoints: [join(root, "cli-client", "main.ts")],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  banner: { js: "#!/usr/bin/env node" },
  sourcemap: "linked",
  logLevel: "warning",
});
// npm links the bin on install, but `node scripts/build-cli.mjs` alone must leave a runnable file too.
await chmod(outfile, 0o755);
