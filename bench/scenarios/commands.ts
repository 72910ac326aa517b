// How long a one-shot command takes from the shell: wall time from spawning `node` to its exit, for a bare
// `node -e 0` (what no Node CLI can beat), `telepound --version` and `telepound send USER TEXT` to a
// pinned contact on the warm local server. The three are spawned in turn, round after round, so a busy
// moment on this shared machine lands on all of them alike.
//
// The CLI is the built one (dist/telepound.mjs, rebuilt first from the current sources). Two users are
// signed up with it into temporary homes (TELEPOUND_PASSWORD, TELEPOUND_SERVER), and one message is sent
// before the clock runs, so the contact's key is pinned, the home's files exist and the server is warm.

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchContext } from "../lib/context.js";
import { type Row, type ScenarioResult, cpuColumns, usageReport } from "../lib/report.js";
import { roundSummary, summarize } from "../lib/stats.js";

const ROUNDS = 20;
const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CLI = join(REPO_ROOT, "dist", "telepound.mjs");
const A = "cmd-a";
const B = "cmd-b";
const PASSWORD = "bench commands password";

interface Timed {
  ms: number;
  /** The child's CPU (user + system), to 10 ms: robust to a busy machine, unlike wall time. */
  cpuMs: number;
  stdout: string;
}

/** CPU ms used by this process's finished children (cutime + cstime in /proc/self/stat, 100 ticks a second). */
function childrenCpuMs(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  // Fields after the parenthesised command name, which may itself hold spaces: state is field 3.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/**
 * Runs node with `args` to its exit and returns its wall and CPU time; a non-zero exit fails the scenario.
 * One at a time: the CPU is read from this process's finished children.
 */
function timeNode(args: string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const cpuBefore = childrenCpuMs();
    const start = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      const ms = performance.now() - start;
      if (code === 0) resolve({ ms, cpuMs: childrenCpuMs() - cpuBefore, stdout });
      else reject(new Error(`node ${args.join(" ")} exited ${code}: ${stderr.trim()}`));
    });
  });
}

export async function commands(ctx: BenchContext): Promise<ScenarioResult> {
  ctx.log("commands: building dist/telepound.mjs from the current sources");
  execFileSync(process.execPath, [join(REPO_ROOT, "scripts", "build-cli.mjs")], { stdio: "inherit" });

  const homes: Record<string, string> = {};
  for (const user of [A, B]) homes[user] = mkdtempSync(join(tmpdir(), `telepound-bench-${user}-`));
  try {
    // The CLI as a user's shell would run it: nothing from the bench's own environment that it reads.
    const base: NodeJS.ProcessEnv = { ...process.env };
    for (const name of Object.keys(base)) if (name.startsWith("TELEPOUND_")) delete base[name];
    const envFor = (user: string): NodeJS.ProcessEnv => ({
      ...base,
      TELEPOUND_SERVER: ctx.system.origin,
      TELEPOUND_HOME: homes[user],
      TELEPOUND_PASSWORD: PASSWORD,
    });
    ctx.log("commands: signing up two users with the CLI and sending the first message");
    await Promise.all([A, B].map((user) => timeNode([CLI, "signup", user], envFor(user))));
    const first = await timeNode([CLI, "--json", "send", B, "first contact"], envFor(A));
    if (!first.stdout.includes('"status"')) throw new Error(`the first send printed ${first.stdout}`);

    const version = (await timeNode([CLI, "--version"], base)).stdout.trim();
    const runs = { bare: [] as Timed[], version: [] as Timed[], send: [] as Timed[] };
    ctx.log(`commands: ${ROUNDS} rounds of node -e 0, telepound --version and telepound send`);
    await ctx.meter.settle();
    const childrenBefore = childrenCpuMs();
    const { usage: measured } = await ctx.meter.measure(async () => {
      for (let round = 0; round < ROUNDS; round++) {
        runs.bare.push(await timeNode(["-e", "0"], base));
        const shown = await timeNode([CLI, "--version"], base);
        if (shown.stdout.trim() !== version) throw new Error(`--version printed ${shown.stdout}`);
        runs.version.push(shown);
        runs.send.push(await timeNode([CLI, "send", B, `message ${round}`], envFor(A)));
      }
    });
    // The commands' own CPU is what is being measured, not load from elsewhere on the machine.
    const commandsCpuMs = childrenCpuMs() - childrenBefore;

    // Then the same send while a daemon runs for the home: the command goes through its socket. Its own
    // node -e 0 rounds are interleaved with it, as above.
    ctx.log(`commands: ${ROUNDS} rounds of node -e 0 and telepound send through a running daemon`);
    const daemon = spawn(process.execPath, [CLI, "daemon"], {
      env: envFor(A),
      stdio: ["pipe", "ignore", "pipe"],
    });
    const viaDaemon = { bare: [] as Timed[], send: [] as Timed[] };
    try {
      await new Promise<void>((ready, fail) => {
        let said = "";
        daemon.stderr.on("data", (chunk: Buffer) => {
          said += chunk;
          if (said.includes("receiving for")) ready();
        });
        daemon.once("exit", (code) => fail(new Error(`the daemon exited ${code}: ${said}`)));
      });
      for (let round = 0; round < ROUNDS; round++) {
        viaDaemon.bare.push(await timeNode(["-e", "0"], base));
        viaDaemon.send.push(await timeNode([CLI, "send", B, `through the daemon ${round}`], envFor(A)));
      }
    } finally {
      daemon.kill("SIGTERM");
    }
    const usage = { ...measured, othersMs: Math.max(0, measured.othersMs - commandsCpuMs) };

    const wall = (timed: Timed[]) => summarize(timed.map(({ ms }) => ms));
    const cpu = (timed: Timed[]) => summarize(timed.map(({ cpuMs }) => cpuMs));
    const row = (metric: string, timed: Timed[], goalRatio: number, bareRuns = runs.bare): Row => {
      const summary = wall(timed);
      const bare = wall(bareRuns);
      const bareCpu = cpu(bareRuns);
      return {
        scenario: `command wall time: ${metric}`,
        metric: "median, spawn to exit",
        unit: "ms",
        telepound: summary.p50,
        baseline: bare.p50,
        baselineLabel: "node -e 0",
        goal: `≤ ${goalRatio}× node -e 0`,
        met: summary.p50 <= goalRatio * bare.p50,
        ...cpuColumns(usage),
        note: `p90 ${Math.round(summary.p90)} ms (node -e 0: p50 ${Math.round(bare.p50)}, p90 ${Math.round(bare.p90)} ms); its own CPU p50 ${Math.round(cpu(timed).p50)} ms (node -e 0: ${Math.round(bareCpu.p50)} ms); ${ROUNDS} runs`,
      };
    };
    return {
      id: "commands",
      title: "One-shot command wall time",
      rows: [
        row("telepound --version", runs.version, 1.5),
        row("telepound send USER TEXT (pinned contact)", runs.send, 3),
        row("send through a running daemon", viaDaemon.send, 1.5, viaDaemon.bare),
      ],
      details: {
        rounds: ROUNDS,
        version,
        wallMs: Object.fromEntries(
          Object.entries({ ...runs, daemonBare: viaDaemon.bare, daemonSend: viaDaemon.send }).map(
            ([what, timed]) => [what, roundSummary(wall(timed))],
          ),
        ),
        cpuMs: Object.fromEntries(
          Object.entries(runs).map(([what, timed]) => [what, roundSummary(cpu(timed))]),
        ),
        usage: usageReport(usage, { count: ROUNDS * 3, per: "Run" }),
      },
    };
  } finally {
    for (const home of Object.values(homes)) rmSync(home, { recursive: true, force: true });
  }
}
