// Starts the bare relay (bench/baseline-relay.ts) as a child process on a free loopback port, so it has
// its own event loop and its CPU and memory can be read from /proc like workerd's.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export interface RelayProcess {
  origin: string;
  pid: number;
  stop(): Promise<void>;
}

const RELAY_ENTRY = fileURLToPath(new URL("../baseline-relay.ts", import.meta.url));

export async function startRelay(): Promise<RelayProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", RELAY_ENTRY], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`baseline relay exited with ${code} before listening`)));
    lines.once("line", (line) => resolve((JSON.parse(line) as { port: number }).port));
  });
  return {
    origin: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        // Closing stdin asks it to leave; the signal is the fallback.
        child.stdin!.end();
        setTimeout(() => child.kill("SIGTERM"), 2000).unref();
      }),
  };
}
