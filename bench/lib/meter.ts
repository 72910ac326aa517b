// Who used the CPU and memory during a scenario: this load generator (process.cpuUsage), the workerd
// processes wrangler started, the bare relay, and everything else on the machine, all read from /proc.
//
// wrangler dev runs two workerd processes: a proxy on the public port that forwards every request and
// WebSocket frame, and the runtime that runs the Worker and its Durable Objects. They are told apart by
// the public port on the proxy's command line; the runtime is the proxy's sibling (same wrangler parent).
// The bench runs two wrangler devs, Telepound's and the engine floor's (bench/workerd-floor/).

import { readFileSync, readdirSync } from "node:fs";
import { availableParallelism } from "node:os";

/** Linux reports process CPU in clock ticks; 100 per second on every kernel config we run on. */
const TICKS_PER_SECOND = 100;

export type Role =
  "generator" | "workerd-runtime" | "workerd-proxy" | "floor-runtime" | "floor-proxy" | "wrangler" | "relay";

export interface WatchedProcess {
  role: Role;
  pid: number;
}

interface ProcStat {
  ppid: number;
  comm: string;
  cpuMs: number;
  rssBytes: number;
}

function readStat(pid: number): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm is in parentheses and may contain spaces: split after the last ")".
    const close = text.lastIndexOf(")");
    const comm = text.slice(text.indexOf("(") + 1, close);
    const fields = text.slice(close + 2).split(" ");
    // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15, rss (pages) 24.
    const ppid = Number(fields[1]);
    const ticks = Number(fields[11]) + Number(fields[12]);
    const rssPages = Number(fields[21]);
    return { ppid, comm, cpuMs: (ticks * 1000) / TICKS_PER_SECOND, rssBytes: rssPages * 4096 };
  } catch {
    return null;
  }
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

/** Every live process descended from `root`, found by walking parent links in /proc. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(name));
    children.set(stat.ppid, list);
  }
  const found: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    for (const child of children.get(stack.pop()!) ?? []) {
      found.push(child);
      stack.push(child);
    }
  }
  return found;
}

/**
 * The processes that make up the system under test, the engine floor and the baseline. Only descendants
 * of this process are considered, so concurrent test runs on the same machine are never mistaken for ours.
 */
export function discoverProcesses(
  publicPort: number,
  floorPort: number,
  relayPid: number | undefined,
): WatchedProcess[] {
  const found: WatchedProcess[] = [{ role: "generator", pid: process.pid }];
  const workerds: Array<{ pid: number; ppid: number; port: number | null }> = [];
  for (const pid of descendants(process.pid)) {
    const stat = readStat(pid);
    if (!stat) continue;
    if (pid === relayPid) found.push({ role: "relay", pid });
    else if (stat.comm === "workerd") {
      const port = /entry=127\.0\.0\.1:(\d+)/.exec(cmdline(pid))?.[1];
      workerds.push({ pid, ppid: stat.ppid, port: port === undefined ? null : Number(port) });
    } else if (stat.comm === "node" && cmdline(pid).includes("wrangler")) {
      found.push({ role: "wrangler", pid });
    }
  }
  const parentOf = (port: number) => workerds.find((w) => w.port === port)?.ppid;
  const [systemParent, floorParent] = [parentOf(publicPort), parentOf(floorPort)];
  for (const { pid, ppid, port } of workerds) {
    if (port === publicPort) found.push({ role: "workerd-proxy", pid });
    else if (port === floorPort) found.push({ role: "floor-proxy", pid });
    else if (ppid === floorParent) found.push({ role: "floor-runtime", pid });
    else if (ppid === systemParent) found.push({ role: "workerd-runtime", pid });
  }
  return found;
}

export function rssBytes(pid: number): number {
  return readStat(pid)?.rssBytes ?? 0;
}

/** Machine-wide busy and total time from /proc/stat (all cores), in ms; steal counts as busy elsewhere. */
function machineTimes(): { busyMs: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = ticks;
  const busy = user + nice + system + irq + softirq + steal;
  return { busyMs: (busy * 1000) / TICKS_PER_SECOND };
}

export interface Usage {
  wallMs: number;
  /** CPU ms per role over the interval (summed if a role has several processes). */
  cpuMs: Partial<Record<Role, number>>;
  /** CPU ms used by every other process on the machine (other test runs, the kernel, the hypervisor). */
  othersMs: number;
  /** Generator CPU as a fraction of one core (process.cpuUsage: all of this process's threads). */
  generatorCores: number;
}

interface Mark {
  at: number;
  generator: NodeJS.CpuUsage;
  procs: Map<number, number>;
  machine: { busyMs: number };
}

export class Meter {
  constructor(private readonly processes: () => WatchedProcess[]) {}

  static readonly cores = availableParallelism();

  start(): Mark {
    const procs = new Map<number, number>();
    for (const { pid } of this.processes())
      if (pid !== process.pid) procs.set(pid, readStat(pid)?.cpuMs ?? 0);
    return { at: performance.now(), generator: process.cpuUsage(), procs, machine: machineTimes() };
  }

  stop(mark: Mark): Usage {
    const generator = process.cpuUsage(mark.generator);
    const machine = machineTimes();
    const wallMs = performance.now() - mark.at;
    const generatorMs = (generator.user + generator.system) / 1000;
    const cpuMs: Partial<Record<Role, number>> = { generator: generatorMs };
    let ours = generatorMs;
    for (const { role, pid } of this.processes()) {
      if (pid === process.pid) continue;
      const before = mark.procs.get(pid);
      const now = readStat(pid)?.cpuMs;
      if (before === undefined || now === undefined) continue;
      cpuMs[role] = (cpuMs[role] ?? 0) + (now - before);
      ours += now - before;
    }
    // /proc/stat ticks are coarse (10 ms); clamp so a short interval cannot report negative others.
    const othersMs = Math.max(0, machine.busyMs - mark.machine.busyMs - ours);
    return { wallMs, cpuMs, othersMs, generatorCores: generatorMs / wallMs };
  }

  /**
   * Waits (at most `maxMs`) until the system and the relay are idle, so work left over from the previous
   * measurement (acks, closes, evictions) does not land in the next one.
   */
  async settle(maxMs = 10_000, idleCores = 0.05, windowMs = 250): Promise<void> {
    const deadline = performance.now() + maxMs;
    const busy = () =>
      this.processes()
        .filter(({ role }) => role !== "generator" && role !== "wrangler")
        .reduce((sum, { pid }) => sum + (readStat(pid)?.cpuMs ?? 0), 0);
    while (performance.now() < deadline) {
      const before = busy();
      await new Promise((resolve) => setTimeout(resolve, windowMs));
      if ((busy() - before) / windowMs < idleCores) return;
    }
  }

  /** Runs `work` between a start and a stop mark. */
  async measure<T>(work: () => Promise<T>): Promise<{ result: T; usage: Usage }> {
    const mark = this.start();
    const result = await work();
    return { result, usage: this.stop(mark) };
  }
}

/** A generator at or above this share of one core is the bottleneck, not the system under test. */
export const GENERATOR_BOUND_CORES = 0.9;
