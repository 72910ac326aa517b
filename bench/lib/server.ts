// Starts Telepound and the engine floor (bench/workerd-floor/) for the benchmark with startLocalServer, from
// a copy of the sources taken at the start of the run, so colleagues editing the tree meanwhile cannot make
// wrangler reload them mid-run.
//
// wrangler dev watches every file it bundled and restarts the Worker when one changes (dropping every
// WebSocket). The copy is the working tree as it was, packages linked in; the commit is recorded.
//
// Both run quiet (startLocalServer's `quiet`): no request log and no local explorer, work that only wrangler
// dev does and that cost Telepound and the floor alike CPU on every request or object wake.

import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { LocalServer, startLocalServer } from "../../test/support/local-server.js";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** What the Worker's build reads, and the launcher itself (which finds the tree relative to its file). */
const SOURCES = [
  "wrangler.toml",
  "package.json",
  "tsconfig.json",
  "tsconfig.worker.json",
  "worker-configuration.d.ts",
  "worker",
  "durable-objects",
  "protocol",
  "test/support/local-server.ts",
  "test/support/privacy.ts",
  "test/support/operator-token.ts",
  "bench/workerd-floor",
  // wrangler.toml's [assets] directory: wrangler dev will not start without it (`npm run build` writes it).
  "dist/web",
];

export interface BenchServer {
  server: LocalServer;
  /** The engine floor (bench/workerd-floor/) under its own wrangler dev, from the same copy. */
  floor: LocalServer;
  /** HEAD when the copy was taken, and whether the copied files differed from it. */
  commit: string;
  dirty: boolean;
  stop(): Promise<void>;
}

export async function startBenchServer(vars: Record<string, string>): Promise<BenchServer> {
  const copy = mkdtempSync(join(tmpdir(), "telepound-bench-src-"));
  for (const path of SOURCES) cpSync(join(REPO_ROOT, path), join(copy, path), { recursive: true });
  // Packages are linked one by one: esbuild's watcher also watches the node_modules listing it resolved
  // through, and test runners create and delete temp folders in the real one.
  mkdirSync(join(copy, "node_modules"));
  for (const entry of readdirSync(join(REPO_ROOT, "node_modules"))) {
    if (!entry.startsWith("."))
      symlinkSync(join(REPO_ROOT, "node_modules", entry), join(copy, "node_modules", entry));
  }
  const git = (...args: string[]) => execFileSync("git", args, { cwd: REPO_ROOT, encoding: "utf8" }).trim();
  const commit = git("rev-parse", "HEAD");
  const dirty = git("status", "--porcelain", "--", ...SOURCES) !== "";
  const launcher = (await import(join(copy, "test/support/local-server.ts"))) as {
    startLocalServer: typeof startLocalServer;
  };
  const [server, floor] = await Promise.all([
    launcher.startLocalServer({ vars, quiet: true }),
    launcher.startLocalServer({ config: "bench/workerd-floor/wrangler.toml", quiet: true }),
  ]);
  return {
    server,
    floor,
    commit,
    dirty,
    stop: async () => {
      await Promise.all([server.stop(), floor.stop()]);
      rmSync(copy, { recursive: true, force: true });
    },
  };
}
