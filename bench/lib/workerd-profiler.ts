// Optional (BENCH_PROFILE=1): a V8 CPU profile of the Worker's isolate in workerd while Telepound is
// measured, taken through wrangler's inspector proxy, saved to bench/out/ and summarised by function.
//
// Sampling slows workerd down, so a profiled run's rates are not comparable with an unprofiled one: use
// it to see where the time goes, not to report numbers.

import WebSocket from "ws";
import { cmdline, descendants } from "./meter.js";

export interface ProfileSummary {
  sampledMs: number;
  /** Share of sampled time, by function (self time), highest first. */
  selfTime: Array<{ fn: string; percent: number }>;
  /** Share of sampled time spent in a function or anything it called, highest first. */
  inclusiveTime: Array<{ fn: string; percent: number }>;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; lineNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The inspector port wrangler dev was given (its command line), or null. */
export function findInspectorPort(publicPort: number): number | null {
  for (const pid of descendants(process.pid)) {
    const line = cmdline(pid);
    if (!line.includes(`--port ${publicPort}`)) continue;
    const match = /--inspector-port (\d+)/.exec(line);
    if (match) return Number(match[1]);
  }
  return null;
}

export class WorkerdProfiler {
  private nextId = 0;
  private readonly waiting = new Map<number, (result: unknown) => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data: Buffer) => {
      const message = JSON.parse(data.toString("utf8")) as { id?: number; result?: unknown; error?: unknown };
      if (message.id === undefined) return;
      this.waiting.get(message.id)?.(message.result ?? message.error);
      this.waiting.delete(message.id);
    });
  }

  static async connect(inspectorPort: number): Promise<WorkerdProfiler> {
    const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as Array<{
      webSocketDebuggerUrl: string;
    }>;
    const url = targets[0]?.webSocketDebuggerUrl;
    if (!url) throw new Error("wrangler's inspector lists no Worker to profile");
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1024 * 1024 * 1024 });
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    const profiler = new WorkerdProfiler(ws);
    await profiler.call("Profiler.enable");
    await profiler.call("Profiler.setSamplingInterval", { interval: 500 });
    return profiler;
  }

  start(): Promise<unknown> {
    return this.call("Profiler.start");
  }

  async stop(): Promise<CpuProfile> {
    const result = (await this.call("Profiler.stop")) as { profile: CpuProfile };
    return result.profile;
  }

  close(): void {
    this.ws.close();
  }

  private call(method: string, params: object = {}): Promise<unknown> {
    const id = ++this.nextId;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }
}

/** Self and inclusive time by function name (bundle line numbers do not map back to sources). */
export function summarizeProfile(profile: CpuProfile, top = 25): ProfileSummary {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const timeByNode = new Map<number, number>();
  profile.samples.forEach((id, i) =>
    timeByNode.set(id, (timeByNode.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)),
  );
  const name = (node: ProfileNode) =>
    `${node.callFrame.functionName || "(anonymous)"}:${node.callFrame.lineNumber}`;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  for (const [id, time] of timeByNode) {
    total += time;
    const node = nodes.get(id)!;
    self.set(name(node), (self.get(name(node)) ?? 0) + time);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const key = name(nodes.get(at)!);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + time);
    }
  }
  const ranked = (map: Map<string, number>) =>
    [...map]
      .filter(([fn]) => !fn.startsWith("(root)"))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, time]) => ({ fn, percent: Math.round((time / total) * 1000) / 10 }));
  return { sampledMs: Math.round(total / 1000), selfTime: ranked(self), inclusiveTime: ranked(inclusive) };
}
