// `npm run bench`: starts Telepound under wrangler dev (fresh temp state, abuse limits raised), the engine
// floor under a second wrangler dev (bench/workerd-floor/) and the bare relay, signs the load users up, runs
// every scenario against Telepound and the relay (the 1:1 and login scenarios against the floor too), and
// writes results.json and RESULTS.md.
//
// BENCH_ONLY=latency,throughput runs a subset (ids as in bench/scenarios; the crowd scenarios need
// login-storm). A scenario that fails is reported as failed and the run exits non-zero.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { type Target, mapLimit, proxyRetries, seedFloorSessions, signup } from "./lib/api.js";
import { type BenchContext, loadUser } from "./lib/context.js";
import { makeSharedIdentity } from "./lib/identity.js";
import { Meter, type WatchedProcess, discoverProcesses, rssBytes } from "./lib/meter.js";
import { startRelay } from "./lib/relay.js";
import { startBenchServer } from "./lib/server.js";
import {
  type ProfileSummary,
  WorkerdProfiler,
  findInspectorPort,
  summarizeProfile,
} from "./lib/workerd-profiler.js";
import {
  type ScenarioResult,
  floorGoalsTable,
  markdownTable,
  serverCpuTable,
  usageReport,
} from "./lib/report.js";
import { round } from "./lib/stats.js";
import { installCryptoBackend } from "../client/crypto/backend.js";
import { nodeCrypto } from "../cli-client/platform/node-crypto.js";
import { backlog } from "./scenarios/backlog.js";
import { commands } from "./scenarios/commands.js";
import { type EngineOperation, engineCosts } from "./scenarios/engine-costs.js";
import { fanout } from "./scenarios/fanout.js";
import { fileTransfer } from "./scenarios/file-transfer.js";
import { latency } from "./scenarios/latency.js";
import { type Crowd, type FloorStateRun, closeCrowd, loginStorm } from "./scenarios/login-storm.js";
import { memory } from "./scenarios/memory.js";
import { senderCpu } from "./scenarios/sender-cpu.js";
import { throughput } from "./scenarios/throughput.js";

// The bench seals and opens with the client's own crypto module, on Node's backend as the CLI does.
installCryptoBackend(nodeCrypto);

const CROWD_USERS = 1000;
const SIGNUP_CONCURRENCY = 16;
const PAIR_USERS = ["lat-a", "lat-b", "tp-a", "tp-b", "bl-a", "bl-b", "file-a", "file-b"];

/** Raised so the run measures the system, not its abuse limits (wrangler.toml [vars]). */
const VARS = {
  SIGNUPS_PER_IP_PER_HOUR: "1000000",
  LOGINS_PER_IP_PER_MINUTE: "1000000",
  UPLOADS_PER_USER_PER_MINUTE: "1000000",
  LOOKUPS_PER_USER_PER_MINUTE: "1000000",
  MESSAGES_PER_USER_PER_SECOND: "1000000",
  // The fan-out scenario creates a group of 1,000: 999 users added by one creator at once.
  GROUP_CREATES_PER_USER_PER_HOUR: "1000000",
  GROUP_ADDS_PER_USER_PER_HOUR: "1000000",
  // The backlog scenario queues 10,000 messages from one sender for an offline user.
  QUEUE_ITEMS_PER_RECIPIENT: "1000000",
  QUEUE_BYTES_PER_RECIPIENT: "10000000000",
  QUEUE_ITEMS_PER_SENDER: "1000000",
  QUEUE_BYTES_PER_SENDER: "10000000000",
  // Four shards under one balancer, as the layout earlier runs measured: on one engine thread the shard
  // count changes little, and the login storm's spread over shards stays comparable from run to run.
  SHARDS_MIN: "4",
  BALANCER_SLICES: "1",
};

const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function main(): Promise<number> {
  const only = process.env.BENCH_ONLY?.split(",").map((id) => id.trim());
  const wanted = (id: string) => !only || only.includes(id);
  const started = Date.now();

  log(
    "starting wrangler dev twice (Telepound and the engine floor, on a copy of the sources) and the bare relay",
  );
  const [bench, relayProcess] = await Promise.all([startBenchServer(VARS), startRelay()]);
  const { server } = bench;
  const publicPort = Number(new URL(server.url).port);
  const floorPort = Number(new URL(bench.floor.url).port);
  let processes: WatchedProcess[] = [];
  const refresh = () => (processes = discoverProcesses(publicPort, floorPort, relayProcess.pid));
  refresh();
  log(`processes: ${processes.map((p) => `${p.role}=${p.pid}`).join(" ")}`);
  const meter = new Meter(refresh);
  const results: ScenarioResult[] = [];
  const failures: Array<{ id: string; error: string }> = [];
  const crowds: Crowd[] = [];
  const profiles: Record<string, ProfileSummary> = {};
  let profiler: WorkerdProfiler | null = null;
  mkdirSync(`${BENCH_DIR}out`, { recursive: true });

  try {
    log("generating the shared identity and password keys");
    const shared = await makeSharedIdentity();
    const users = [...PAIR_USERS, ...Array.from({ length: CROWD_USERS }, (_, i) => loadUser(i))];
    log(`signing up ${users.length} users (${SIGNUP_CONCURRENCY} at a time)`);
    const tokens = new Map<string, string>();
    const signupRun = await meter.measure(() =>
      mapLimit(users, SIGNUP_CONCURRENCY, async (user) => {
        tokens.set(user, (await signup(server.url, shared, user)).token);
      }),
    );
    const signupsPerSecond = users.length / (signupRun.usage.wallMs / 1000);
    log(`signed up at ${round(signupsPerSecond)} signups/s`);
    if (wanted("login-storm")) {
      log("giving the crowd sessions in the engine floor's state objects too");
      await seedFloorSessions(bench.floor.url, users.slice(PAIR_USERS.length));
    }

    const system: Target = {
      name: "telepound",
      origin: server.url,
      token: (user) => {
        const token = tokens.get(user);
        if (!token) throw new Error(`no session for ${user}`);
        return token;
      },
    };
    const relay: Target = {
      name: "relay",
      origin: relayProcess.origin,
      token: (user) => `${user}.relay.bench`,
    };
    const floor: Target = { name: "floor", origin: bench.floor.url, token: (user) => `${user}.floor.bench` };
    const durableFloor: Target = {
      name: "durable-floor",
      origin: bench.floor.url,
      token: (user) => `${user}.floor-durable.bench`,
    };
    const groupFloor: Target = {
      name: "group-floor",
      origin: bench.floor.url,
      token: (user) => `${user}.floor-room.bench`,
    };
    // wrangler reloads a Worker by starting a new runtime workerd (the quiet log level hides its message).
    const reloads = () =>
      refresh()
        .filter(({ role }) => role === "workerd-runtime" || role === "floor-runtime")
        .map(({ pid }) => pid)
        .sort()
        .join(",");
    const inspectorPort = process.env.BENCH_PROFILE ? findInspectorPort(publicPort) : null;
    if (process.env.BENCH_PROFILE && inspectorPort === null)
      throw new Error("BENCH_PROFILE: no inspector port found");
    if (inspectorPort !== null) profiler = await WorkerdProfiler.connect(inspectorPort);
    const activeProfiler = profiler;
    const ctx: BenchContext = {
      system,
      floor,
      durableFloor,
      groupFloor,
      relay,
      shared,
      meter,
      log,
      measure: async (label, target, work) => {
        await meter.settle();
        if (!activeProfiler || target.name !== "telepound") return meter.measure(work);
        await activeProfiler.start();
        const measured = await meter.measure(work);
        const profile = await activeProfiler.stop();
        writeFileSync(`${BENCH_DIR}out/workerd-${label}.cpuprofile`, JSON.stringify(profile));
        profiles[label] = summarizeProfile(profile);
        return measured;
      },
      rss: () => {
        const out: Record<string, number> = {};
        for (const { role, pid } of refresh()) out[role] = (out[role] ?? 0) + rssBytes(pid);
        return out;
      },
      reloadMark: reloads,
      checkNoReload: (mark, what) => {
        if (reloads() !== mark)
          throw new Error(`${what}: wrangler reloaded the Worker mid-scenario (a source file changed)`);
      },
    };

    const attempt = async (id: string, run: () => Promise<ScenarioResult>) => {
      if (!wanted(id)) return;
      const mark = reloads();
      try {
        results.push(await run());
      } catch (error) {
        let message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        if (reloads() !== mark) message = `wrangler reloaded the Worker during this scenario: ${message}`;
        log(`FAILED ${id}: ${message}`);
        log(
          `processes now: ${refresh()
            .map((p) => `${p.role}=${p.pid}`)
            .join(" ")}`,
        );
        failures.push({ id, error: message.split("\n")[0]! });
      }
    };

    await attempt("sender-cpu", () => senderCpu(ctx));
    await attempt("engine-costs", () => engineCosts(ctx));
    await attempt("latency", () => latency(ctx));
    await attempt("throughput", () => throughput(ctx));
    await attempt("backlog", () => backlog(ctx));
    if (wanted("login-storm")) {
      let storm: Awaited<ReturnType<typeof loginStorm>> | null = null;
      await attempt("login-storm", async () => {
        storm = await loginStorm(ctx, users.slice(PAIR_USERS.length));
        crowds.push(storm.system, storm.relay, storm.floor);
        return storm.result;
      });
      const crowd = storm as Awaited<ReturnType<typeof loginStorm>> | null;
      if (crowd) {
        await attempt("memory", () => memory(ctx, crowd.system, crowd.relay));
        await attempt("fanout", () => fanout(ctx, crowd.system, crowd.relay, crowd.floor));
      }
      for (const c of crowds.splice(0)) await closeCrowd(c);
    }
    await attempt("file-transfer", () => fileTransfer(ctx));
    await attempt("commands", () => commands(ctx));

    const environment = {
      date: new Date().toISOString(),
      commit: bench.commit,
      uncommittedServerChanges: bench.dirty,
      cpu: cpus()[0]?.model ?? "unknown",
      cores: Meter.cores,
      node: process.version,
      wrangler: packageVersion("wrangler"),
      workerd: packageVersion("workerd"),
      shards: 4,
      vars: VARS,
      crowdUsers: CROWD_USERS,
      signedUpUsers: users.length,
      signupsPerSecond: round(signupsPerSecond),
      signupUsage: usageReport(signupRun.usage, { count: users.length, per: "Signup" }),
      durationSeconds: Math.round((Date.now() - started) / 1000),
      proxyRetries,
    };
    // Only a full, unprofiled run replaces the committed results; anything else goes to bench/out/.
    const dir = only || profiler ? `${BENCH_DIR}out/` : BENCH_DIR;
    const json = {
      environment,
      failures,
      scenarios: results,
      ...(profiler ? { workerdProfiles: profiles } : {}),
    };
    writeFileSync(`${dir}results.json`, `${JSON.stringify(json, null, 2)}\n`);
    writeFileSync(`${dir}RESULTS.md`, renderMarkdown(environment, results, failures));
    log(`wrote ${dir}results.json and RESULTS.md in ${environment.durationSeconds} s`);
    process.stdout.write(`${floorGoalsTable(results)}\n\n${markdownTable(results)}\n`);
  } finally {
    for (const c of crowds) await closeCrowd(c).catch(() => undefined);
    profiler?.close();
    await Promise.all([bench.stop(), relayProcess.stop()]);
    // For diagnosing a failed scenario: everything wrangler printed (bench/out/ is not committed).
    writeFileSync(`${BENCH_DIR}out/wrangler.log`, server.log());
    writeFileSync(`${BENCH_DIR}out/wrangler-floor.log`, bench.floor.log());
  }
  return failures.length === 0 ? 0 : 1;
}

function packageVersion(name: string): string {
  try {
    return (
      JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), "utf8")) as {
        version: string;
      }
    ).version;
  } catch {
    return "unknown";
  }
}

function renderMarkdown(
  environment: {
    date: string;
    commit: string;
    uncommittedServerChanges: boolean;
    cpu: string;
    cores: number;
    node: string;
    wrangler: string;
    workerd: string;
    durationSeconds: number;
    signupsPerSecond: number;
    signedUpUsers: number;
    proxyRetries: string[];
  },
  results: ScenarioResult[],
  failures: Array<{ id: string; error: string }>,
): string {
  const breakdown = results.find((result) => result.id === "sender-cpu")?.details.breakdownUs as
    Record<string, number> | undefined;
  const sealParts = breakdown
    ? `\nWhere a 1:1 seal's CPU goes, each primitive timed alone on inputs of the same size (µs per call):\n\n${Object.entries(
        breakdown,
      )
        .map(([what, us]) => `- ${what}: ${us}`)
        .join("\n")}\n`
    : "";
  const operations = results.find((result) => result.id === "engine-costs")?.details.operations as
    EngineOperation[] | undefined;
  const engineParts = operations
    ? `\nWhat the engine's own operations cost here, on the engine floor's objects (µs per call; wall time is the\nwhole run's over all calls, CPU the runtime's from /proc):\n\n| operation | wall | runtime CPU |\n|---|---|---|\n${operations
        .map((op) => `| ${op.what} | ${op.wallUs} µs | ${op.cpuUs} µs |`)
        .join("\n")}\n`
    : "";
  const floorLogins = results.find((result) => result.id === "login-storm")?.details.floorWithState as
    FloorStateRun[] | undefined;
  const loginParts = floorLogins
    ? `\nWhat a login's state costs on the engine floor (the same storm; before accepting the socket, the shard reads\nthe user's session and writes where the user is):\n\n| where the state lives | logins/s | runtime CPU per login | p99 time to synced |\n|---|---|---|---|\n${floorLogins
        .map(
          (run) =>
            `| ${run.what} | ${run.loginsPerSecond.toLocaleString("en-US")} | ${run.runtimeUsPerLogin.toLocaleString("en-US")} µs | ${run.connectMs.p99.toLocaleString("en-US")} ms |`,
        )
        .join("\n")}\n`
    : "";
  const notes = results.flatMap((result) =>
    result.rows.filter((row) => row.note).map((row) => `- **${row.scenario} (${row.metric})**: ${row.note}`),
  );
  return `<!-- Written by \`npm run bench\` (bench/run.ts); do not edit by hand. -->

# Telepound benchmark results

${environment.date.slice(0, 10)} · commit ${environment.commit.slice(0, 7)}${environment.uncommittedServerChanges ? " (with uncommitted server changes)" : ""} · ${environment.cores} × ${environment.cpu} · Node ${environment.node} · wrangler ${environment.wrangler} (workerd ${environment.workerd}) · ${environment.durationSeconds} s

Every scenario runs against Telepound under \`wrangler dev\` (4 shards, abuse limits raised through \`--var\`) and,
in the same run on the same machine, against a bare \`ws\` relay on loopback (\`bench/baseline-relay.ts\`) moving the
same frames between the same number of clients with no encryption, no persistence and no Workers runtime.
**ratio T÷B** is Telepound divided by the baseline: above 1 is better for rates, worse for times and sizes.
**engine floor** is the relay's job done inside the same engine under a second \`wrangler dev\`
(\`bench/workerd-floor/\`: four shard objects holding hibernated WebSockets, batched RPC between them, no
sessions, storage or acks), with its ratio to the bare relay: what the product's shape (sockets held by shard
objects, users on different shards) costs on this engine here before any of Telepound's own work.
**generator CPU** is the load generator's own CPU (process.cpuUsage) while Telepound was measured, as a share of
one core; at 90% or more the generator, not the system, limits the result and the row says so. **other load** is
CPU used meanwhile by unrelated processes on this shared machine (other test runs): high values inflate times.
**durable floor** is the engine floor that also commits each message in its recipient's own SQLite object
(\`FloorInbox\`) before pushing it and deletes it on the recipient's ack, with one commit per recipient object per
batch: the least a design that stores before it delivers can do on this engine. In the group fan-out rows the
same column is the **durable group floor**: the engine floor's fan-out where each group message is committed
once, as one row, in a room object (\`FloorRoom\`) before it is pushed to the members' shards, and deleted
once every socket it reached has acknowledged it.

The goals, as ratios to yardsticks measured in this same run:

${floorGoalsTable(results)}

Every figure, with the older goals set against the bare relay kept as context (**goal vs relay**):

${markdownTable(results)}

Server CPU per unit of work (from /proc, so a busy machine changes it far less than times and rates):

${serverCpuTable(results)}
${engineParts}${loginParts}${sealParts}${failures.length > 0 ? `\n**Failed scenarios:** ${failures.map((f) => `${f.id} (${f.error})`).join("; ")}\n` : ""}
## Notes

- All load users share one identity (one RSA-3072 + Ed25519 key set, one scrypt run under one template account):
  generating a thousand RSA keys would take minutes, and the server checks key format, not uniqueness. Each
  sender still keeps its own conversation keys and each receiver its own unwrap cache.
- Envelopes are real (sealMessage); 1:1 and group receivers verify and open them with openEnvelope (for groups,
  one member per group opens every message; the others timestamp and acknowledge). Sealing happens before the
  clock starts, and a receiver opens a message after timestamping it; the sender-CPU rows measure sealing.
- \`wrangler dev\` puts a proxy workerd in front of the runtime workerd: every request and frame crosses one more
  process than in production, and R2 and SQLite are local emulations (SQLite on disk, an fsync per write
  transaction). CPU and RSS are read for both workerd processes from /proc; results.json has the details.
- Both wrangler devs run with \`--log-level warn\` and \`X_LOCAL_EXPLORER=false\` (bench/lib/server.ts), leaving
  out dev-only work: at the default level every request's log line is POSTed to wrangler's Node process, and
  the local explorer makes every SQLite object write its name each time it wakes. What wrangler's Node
  process still does is its inspector's: workerd reports each subrequest (a connect's fetch to its shard,
  for one) to it, and it forwards each report to Node.
- wrangler runs on a copy of the server's sources taken when the run starts, so edits made meanwhile cannot
  restart the Worker mid-scenario; a scenario fails loudly if wrangler reloads anyway.
${
  environment.proxyRetries.length > 0
    ? `- wrangler's dev proxy answered 503 "restarted mid-request" to ${environment.proxyRetries.length} request(s), sent again: ${environment.proxyRetries.join(", ")}.\n`
    : ""
}- Signing up the ${environment.signedUpUsers.toLocaleString("en-US")} users ran at ${environment.signupsPerSecond} signups/s (16 at a time).
${notes.join("\n")}
`;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
