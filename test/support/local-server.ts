// Starts the real system locally for end-to-end tests and benchmarks: `wrangler dev` (workerd) on a free
// loopback port with its state persisted in a folder of our choosing, so a test can stop it, start it
// again on the same state, and look inside that state afterwards.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rememberStateDir } from "./privacy.js";

/** The same offline switches `npm start` uses: no telemetry, no cf fetch, no banner or update check. */
export const OFFLINE_ENV = {
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_SEND_ERROR_REPORTS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_HIDE_BANNER: "true",
} as const;

const REPO_ROOT = new URL("../../", import.meta.url).pathname;

export interface LocalServer {
  readonly url: string;
  readonly persistDir: string;
  /** Everything wrangler printed, for diagnosing a failed test. */
  readonly log: () => string;
  stop(): Promise<void>;
  /** Starts it again after `stop`, on the same port and state; resolves once it answers /v1/health. */
  start(): Promise<void>;
  /** Stops workerd and starts it again on the same port and state. */
  restart(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export async function startLocalServer(
  options: {
    persistDir?: string;
    vars?: Record<string, string>;
    /** Another wrangler config, relative to the repository (the bench's engine floor); wrangler.toml if unset. */
    config?: string;
    /**
     * Leaves out work that only `wrangler dev` does and a deployed Worker never does, for the benchmark:
     * the request log (at info level, every request's log line is POSTed to wrangler's Node process over
     * loopback) and the local explorer (it makes every SQLite Durable Object write its name on each wake).
     * Warnings and errors are still printed.
     */
    quiet?: boolean;
  } = {},
): Promise<LocalServer> {
  const persistDir = options.persistDir ?? mkdtempSync(join(tmpdir(), "telepound-state-"));
  rememberStateDir(persistDir);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = "";
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    const inspectorPort = await freePort();
    const varArgs = Object.entries(options.vars ?? {}).flatMap(([key, value]) => [
      "--var",
      `${key}:${value}`,
    ]);
    child = spawn(
      process.execPath,
      [
        join(REPO_ROOT, "node_modules/wrangler/bin/wrangler.js"),
        "dev",
        "--ip",
        "127.0.0.1",
        "--port",
        String(port),
        "--inspector-port",
        String(inspectorPort),
        "--persist-to",
        persistDir,
        "--show-interactive-dev-session=false",
        ...(options.quiet ? ["--log-level", "warn"] : []),
        ...(options.config ? ["--config", options.config] : []),
        ...varArgs,
      ],
      {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          ...OFFLINE_ENV,
          CI: "true",
          ...(options.quiet ? { X_LOCAL_EXPLORER: "false" } : {}),
        },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      },
    );
    child.stdout!.on("data", (chunk) => (output += chunk));
    child.stderr!.on("data", (chunk) => (output += chunk));
    await waitUntilHealthy(url, child, () => output);
  };

  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()));
    // wrangler starts workerd as a child of its own: signal the whole process group.
    try {
      process.kill(-running.pid!, "SIGTERM");
    } catch {
      running.kill("SIGTERM");
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-running.pid!, "SIGKILL");
      } catch {
        // Already gone.
      }
    }, 5000);
    await exited;
    clearTimeout(timer);
    await waitUntilPortFree(port);
  };

  await start();
  return {
    url,
    persistDir,
    log: () => output,
    stop,
    start,
    restart: async () => {
      await stop();
      await start();
    },
  };
}

async function waitUntilHealthy(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${log()}`);
    try {
      const response = await fetch(`${url}/v1/health`);
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`wrangler dev did not become healthy within 60 s:\n${log()}`);
}

async function waitUntilPortFree(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      await fetch(`http://127.0.0.1:${port}/v1/health`);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
