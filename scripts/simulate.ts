// `npm run simulate`: the capacity and cost model (scripts/simulate/model.ts) for 10 thousand, 1 million
// and 100 million registered users, the elastic layout (built) beside the fixed one it replaced. Flags
// override assumptions.

import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import {
  DEFAULT_ASSUMPTIONS,
  costs,
  measuredCpu,
  simulate,
  type Assumptions,
  type Verdict,
} from "./simulate/model.js";

const program = new Command("simulate")
  .description("Capacity and cost model: shards, balancers, each object's share of each limit, dollars")
  .option("--json", "print JSON instead of tables")
  .option("--users <list>", "registered users to model, comma separated", "10000,1000000,100000000")
  .option("--results <path>", "bench results to take measured CPU from", "bench/results.json");
for (const [name, value] of Object.entries(DEFAULT_ASSUMPTIONS)) {
  const flag = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  program.addOption(new Option(`--${flag} <n>`, `assumption ${name}`).default(value).argParser(Number));
}
program.parse();
const options = program.opts<Record<string, unknown>>();

const assumptions = Object.fromEntries(
  Object.keys(DEFAULT_ASSUMPTIONS).map((name) => [name, options[name] as number]),
) as unknown as Assumptions;
const cpu = measuredCpu(JSON.parse(readFileSync(String(options.results), "utf8")));
const sizes = String(options.users).split(",").map(Number);

const runs = sizes.flatMap((registeredUsers) =>
  (["fixed", "elastic"] as const).map((design) => simulate({ ...assumptions, registeredUsers }, cpu, design)),
);
const largest = runs.filter((run) => run.design === "elastic").at(-1)!;
const dollars = costs({ ...assumptions, registeredUsers: largest.registeredUsers }, cpu, largest.shards);

if (options.json) {
  console.log(JSON.stringify({ assumptions, measuredCpu: cpu, runs, costs: dollars }, null, 2));
} else {
  const percent = (share: number | undefined) => (share === undefined ? "–" : `${(share * 100).toFixed(1)}%`);
  const limits = [
    "requestsPerSecond",
    "cpuMicrosPerSecond",
    "webSockets",
    "memoryBytes",
    "storageBytes",
    "outgoingConnections",
    "rpcBytes",
  ] as const;
  const title = (run: Verdict) =>
    `${run.registeredUsers.toLocaleString("en")} registered, ${run.concurrentUsers.toLocaleString("en")} concurrent — ${run.design}: ${run.shards} shards, ${run.balancers} balancer(s) (BALANCER_SLICES ${run.balancerSlices})`;
  for (const run of runs) {
    console.log(`\n${title(run)}`);
    console.log(`| object | ${limits.join(" | ")} |`);
    console.log(`|---|${limits.map(() => "---").join("|")}|`);
    for (const object of run.objects)
      console.log(`| ${object.kind} | ${limits.map((l) => percent(object.shares[l])).join(" | ")} |`);
    const { kind, limit, share } = run.firstLimit;
    console.log(
      `first limit: ${kind} ${limit} at ${percent(share)}; goal (≤ 50% everywhere) ${run.goalHolds ? "holds" : "fails"}`,
    );
  }
  const usd = (n: number) => `$${n.toPrecision(3)}`;
  console.log(`\ncosts (list prices, ${largest.shards} shards)`);
  console.log(`| what | Telepound | Ably |`);
  console.log(`|---|---|---|`);
  console.log(
    `| per million delivered 1:1 messages | ${usd(dollars.perMillionDirectMessages)} | ${usd(dollars.ably.perMillionDirectMessages)} |`,
  );
  console.log(
    `| per 1,000-member group message | ${usd(dollars.perThousandMemberGroupMessage)} | ${usd(dollars.ably.perThousandMemberGroupMessage)} |`,
  );
  console.log(
    `| per idle connected user-month | ${usd(dollars.perIdleConnectedUserMonth)} | ${usd(dollars.ably.perIdleConnectedUserMonth)} |`,
  );
}
