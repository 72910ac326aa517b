// Starts the real system locally for end-to-end tests and benchmarks: `wrangler dev` (workerd) on a free
// loopback port with its state persisted in a folder of our choosing, so a test can stop it, start it
// again on the same state, and look inside that state afterwards.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LOCAL_OPERATOR_TOKEN } from "./operator-token.js";
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

// Ports are picked below the kernel's ephemeral range (32768 and up on Linux): a port the kernel hands
// out for listen(0) is free only until the next outgoing connection of any process takes it as its local
// port, and with several servers and hundreds of client sockets in one test run that happened.
const PORT_RANGE = { low: 20_000, high: 32_000 } as const;

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const candidate = PORT_RANGE.low + Math.floor(Math.random() * (PORT_RANGE.high - PORT_RANGE.low));
    if (await canListen(candidate)) return candidate;
  }
  throw new Error(`no free loopback port between ${PORT_RANGE.low} and ${PORT_RANGE.high}`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** How often a start that lost a race for its port (or its inspector's) is tried again. */
const BIND_ATTEMPTS = 4;

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
  let port = await freePort();
  let output = "";
  let child: ChildProcess | undefined;

  const startOnce = async (): Promise<void> => {
    const inspectorPort = await freePort();
    const vars = {
      // The secret GET /v1/stats wants: a fresh clone has no .dev.vars to give it.
      OPERATOR_TOKEN: LOCAL_OPERATOR_TOKEN,
      // Four shards kept open under one balancer: a handful of test users then spread over several
      // shards (least load), so every test crosses shards. test/e2e/shard-growth.test.ts sets its own.
      SHARDS_MIN: "4",
      BALANCER_SLICES: "1",
      ...options.vars,
    };
    const varArgs = Object.entries(vars).flatMap(([key, value]) => ["--var", `${key}:${value}`]);
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
    await waitUntilHealthy(`http://127.0.0.1:${port}`, child, () => output);
  };

  // A port found free can still be taken before workerd binds it; then workerd exits "Address already in
  // use" and the start is tried again: on a new port the first time (nobody holds the URL yet), on the
  // same port after a pause for a restart (the caller's clients keep the URL).
  const start = async (firstStart = false): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const logged = output.length;
      try {
        await startOnce();
        return;
      } catch (error) {
        const lostBindRace = output.slice(logged).includes("Address already in use");
        if (!lostBindRace || attempt >= BIND_ATTEMPTS) throw error;
        if (firstStart) port = await freePort();
        else await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
      }
    }
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

  await start(true);
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    persistDir,
    log: () => output,
    stop,
    start: () => start(),
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
