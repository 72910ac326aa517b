// The capacity and cost model behind `npm run simulate` (docs/SCALING.md): from stated assumptions, the
// measured CPU per operation (bench/results.json), the counted calls and rows per operation
// (operations.ts) and Cloudflare's limits and prices (platform.ts), each kind of object's peak share of
// each limit, the first limit hit, and what a message costs.

import {
  CONNECT,
  DIRECT_MESSAGE,
  LOGIN,
  groupMessage,
  type ObjectKind,
  type OperationCost,
} from "./operations.js";
import { ABLY, LIMITS, PRICES, type LimitName } from "./platform.js";
import {
  PUSHES_IN_FLIGHT,
  RELAY_ABOVE_SHARDS,
  RELAY_BUCKETS,
  ackWindowMs,
} from "../../durable-objects/group/fanout.js";

export interface Assumptions {
  registeredUsers: number;
  /** Share of registered users connected at the peak hour's average. */
  concurrentFraction: number;
  /** Messages each registered user sends per day (1:1 and group). */
  messagesPerUserPerDay: number;
  /** Share of sent messages that go to a group. */
  groupShare: number;
  /** Members of a typical group. */
  groupSize: number;
  /** Members of the largest group (its fan-out sizes the biggest call). */
  largestGroupSize: number;
  /** Messages per second in the busiest group room. */
  busiestGroupMessagesPerSecond: number;
  /** WebSocket connects (and so closes) per registered user per day: app opens, network changes. */
  reconnectsPerUserPerDay: number;
  /** Logins (new sessions) per registered user per day. */
  loginsPerUserPerDay: number;
  /** Peak rate over the day's average rate. */
  peakToAverage: number;
  /** Live connections a shard is filled to before another opens (SHARD_TARGET_CONNECTIONS). */
  usersPerShard: number;
  /** Regions with users, each with BALANCER_SLICES balancers (worker/placement.ts: nine location hints). */
  regions: number;
  /** Share of name lookups an isolate has not remembered (known-names.ts) and so asks the directory. */
  directoryMissRate: number;
  /** Memory a shard keeps per live socket (attachment, flood counters, home stub cache). Not measured. */
  shardBytesPerSocket: number;
  /** Bytes a shard may hold back for slow sockets in all (HELD_BYTES_PER_SHARD default). */
  shardHeldBytes: number;
  /** Bytes one directory object stores per registered name. */
  directoryBytesPerName: number;
}

export const DEFAULT_ASSUMPTIONS: Assumptions = {
  registeredUsers: 1_000_000,
  concurrentFraction: 0.1,
  messagesPerUserPerDay: 40,
  groupShare: 0.3,
  groupSize: 20,
  largestGroupSize: 1000,
  busiestGroupMessagesPerSecond: 2,
  reconnectsPerUserPerDay: 10,
  loginsPerUserPerDay: 0.05,
  peakToAverage: 3,
  usersPerShard: 8_000,
  regions: 9,
  directoryMissRate: 0.2,
  shardBytesPerSocket: 4 * 1024,
  shardHeldBytes: 16 * 1024 * 1024,
  directoryBytesPerName: 100,
};

/** CPU per operation in the engine, from the bench (workerd runtime process, µs). */
export interface MeasuredCpu {
  perDirectMessageUs: number;
  perGroupDeliveryUs: number;
  perLoginUs: number;
  perCallUs: number;
  largestGroupFrameBytes: number;
}

type BenchScenario = { id: string; details: Record<string, unknown> };

/** Reads the figures the model uses from bench/results.json (`npm run bench` writes it). */
export function measuredCpu(results: { scenarios: BenchScenario[] }): MeasuredCpu {
  const scenario = (id: string) => {
    const found = results.scenarios.find((s) => s.id === id);
    if (!found) throw new Error(`bench/results.json has no scenario ${id}`);
    return found.details as Record<string, any>;
  };
  const runtime = "workerd-runtime";
  const fanout = scenario("fanout")["fanout-1000"];
  return {
    perDirectMessageUs: scenario("throughput").telepound.usage.cpuUsPerMessage[runtime],
    perGroupDeliveryUs: fanout.telepound.usage.cpuUsPerDelivery[runtime],
    perLoginUs: scenario("login-storm").telepound.usage.cpuUsPerLogin[runtime],
    perCallUs: scenario("engine-costs").operations[0].cpuUs,
    largestGroupFrameBytes: fanout.frameBytes,
  };
}

/**
 * "fixed": the layout before shards followed load: one balancer, four shards set by hand, rooms pushing to
 * every shard. "elastic": the layout built now: balancers per region and slice, shards opened per target.
 */
export type Design = "fixed" | "elastic";

export interface ObjectLoad {
  kind: ObjectKind;
  /** How many objects of this kind share the load. */
  count: number;
  /** Peak share of each limit for the busiest object of the kind (0..1+). */
  shares: Partial<Record<LimitName, number>>;
}

export interface Verdict {
  design: Design;
  registeredUsers: number;
  concurrentUsers: number;
  shards: number;
  balancers: number;
  /** BALANCER_SLICES the elastic layout needs (balancers per region); 1 for the fixed one. */
  balancerSlices: number;
  objects: ObjectLoad[];
  /** The highest share over every object and limit: what is hit first. */
  firstLimit: { kind: ObjectKind; limit: LimitName; share: number };
  /** No object above half of any limit. */
  goalHolds: boolean;
}

const DAY = 86_400;
const DIRECTORIES = 16;
const THROTTLES = 64;
const FIXED_SHARDS = 4;
/** The goal: no object above half of any limit. */
const GOAL = 0.5;

/** Peak events per second of something that happens `perUserPerDay` times per registered user. */
function peakRate(a: Assumptions, perUserPerDay: number): number {
  return ((a.registeredUsers * perUserPerDay) / DAY) * a.peakToAverage;
}

function requestsOf(cost: OperationCost, kind: ObjectKind): number {
  return (cost.calls[kind] ?? 0) + (cost.webSocketMessages[kind] ?? 0);
}

export function simulate(a: Assumptions, cpu: MeasuredCpu, design: Design): Verdict {
  const concurrentUsers = a.registeredUsers * a.concurrentFraction;
  const directRate = peakRate(a, a.messagesPerUserPerDay * (1 - a.groupShare));
  const groupRate = peakRate(a, a.messagesPerUserPerDay * a.groupShare);
  const connectRate = peakRate(a, a.reconnectsPerUserPerDay);
  const loginRate = peakRate(a, a.loginsPerUserPerDay);
  // Per shard, for `shards` shards: a group message reaches min(shards, members) of them.
  const shardLoad = (shards: number) => {
    const group = groupMessage(a.groupSize, Math.min(shards, a.groupSize));
    const requests =
      (directRate * requestsOf(DIRECT_MESSAGE, "shard") +
        groupRate * requestsOf(group, "shard") +
        connectRate * requestsOf(CONNECT, "shard")) /
      shards;
    const cpuUs =
      (directRate * cpu.perDirectMessageUs +
        groupRate * a.groupSize * cpu.perGroupDeliveryUs +
        connectRate * cpu.perCallUs * requestsOf(CONNECT, "shard")) /
      shards;
    return { requests, cpuUs };
  };
  // Fixed: 4 shards set by hand. Elastic: balancers open shards until each is under its connection target
  // and under half of the request and CPU limits (balancer/shard-pool.ts opens on sockets or frames/s).
  let shards = FIXED_SHARDS;
  if (design === "elastic") {
    shards = Math.max(1, Math.ceil(concurrentUsers / a.usersPerShard));
    for (let round = 0; round < 20; round++) {
      const { requests, cpuUs } = shardLoad(shards);
      const needed = Math.ceil(
        shards *
          Math.max(
            1,
            requests / (GOAL * LIMITS.requestsPerSecond),
            cpuUs / (GOAL * LIMITS.cpuMicrosPerSecond),
          ),
      );
      if (needed <= shards) break;
      shards = needed;
    }
  }
  const { requests: shardRequests, cpuUs: shardCpuUs } = shardLoad(shards);

  // Balancer: assign + report per connect, a report per close. Elastic: BALANCER_SLICES per region, as
  // many as keep each under half its request limit (users spread evenly over regions: an assumption).
  // Elastic shards also report their frame rate at most once a second while frames flow
  // (server-shard.ts LOAD_REPORT_INTERVAL_MS): one request per second per shard, at most.
  const balancerDemand = connectRate * requestsOf(CONNECT, "balancer") + (design === "elastic" ? shards : 0);
  const balancerSlices =
    design === "fixed"
      ? 1
      : Math.max(1, Math.ceil(balancerDemand / (LIMITS.requestsPerSecond * GOAL) / a.regions));
  const balancers = design === "fixed" ? 1 : a.regions * balancerSlices;

  const socketsPerShard = concurrentUsers / shards;
  // A room pushes only to its audience, the shards holding its members' receiving sockets (group-room.ts
  // storeAndPush → group/audience.ts). Assumed: members spread over the shards, so a group reaches
  // min(shards, members) of them. Fixed: every shard at once, a post, a push and an acknowledgement per
  // shard per message. Elastic (group/fanout.ts): PUSHES_IN_FLIGHT calls at once; past
  // RELAY_ABOVE_SHARDS shards one call per relay instead of one per shard; and each shard gathers its
  // acknowledgements over the window the room asks for, at most one call per message.
  const memberShards = Math.min(shards, a.largestGroupSize);
  const busiestRate = a.busiestGroupMessagesPerSecond;
  const relays =
    design === "elastic" && memberShards > RELAY_ABOVE_SHARDS ? Math.min(RELAY_BUCKETS, memberShards) : 0;
  const roomParallelCalls = design === "fixed" ? memberShards : Math.min(memberShards, PUSHES_IN_FLIGHT);
  const ackCallsPerSecond =
    design === "fixed"
      ? busiestRate * memberShards
      : memberShards * Math.min(busiestRate, 1000 / ackWindowMs(memberShards));
  // Calls the room makes count against it as well as those it receives: each is its CPU and its turn.
  const roomRequests = busiestRate * (1 + (relays > 0 ? relays : memberShards)) + ackCallsPerSecond;
  // The busiest relay: a hash spreads the shards, and the busiest bucket is taken at twice the average
  // (test/node/server/fanout.test.ts checks 1,000 shards stay under it). Each message is one call in
  // and one push out per shard of its bucket.
  const shardsPerRelay = relays > 0 ? Math.ceil((2 * memberShards) / relays) : 0;
  const relayRequests = busiestRate * (1 + shardsPerRelay);

  const directoryRequests =
    ((connectRate * (CONNECT.calls.directory ?? 0) + loginRate * (LOGIN.calls.directory ?? 0)) *
      a.directoryMissRate) /
    DIRECTORIES;

  const objects: ObjectLoad[] = [
    {
      kind: "worker",
      count: Number.POSITIVE_INFINITY,
      // Stateless: one request's calls run one after another on the connect and login paths.
      shares: { outgoingConnections: 1 / LIMITS.outgoingConnections },
    },
    {
      kind: "balancer",
      count: balancers,
      shares: {
        requestsPerSecond: balancerDemand / balancers / LIMITS.requestsPerSecond,
        cpuMicrosPerSecond: ((balancerDemand / balancers) * cpu.perCallUs) / LIMITS.cpuMicrosPerSecond,
      },
    },
    {
      kind: "shard",
      count: shards,
      shares: {
        requestsPerSecond: shardRequests / LIMITS.requestsPerSecond,
        cpuMicrosPerSecond: shardCpuUs / LIMITS.cpuMicrosPerSecond,
        webSockets: socketsPerShard / LIMITS.webSockets,
        memoryBytes: (socketsPerShard * a.shardBytesPerSocket + a.shardHeldBytes) / LIMITS.memoryBytes,
        rpcBytes: cpu.largestGroupFrameBytes / LIMITS.rpcBytes,
      },
    },
    {
      kind: "home",
      count: a.registeredUsers,
      // The busiest home: a user receiving from many at once, bounded by the per-user flood control.
      shares: {
        requestsPerSecond: 20 / LIMITS.requestsPerSecond,
        outgoingConnections: 2 / LIMITS.outgoingConnections,
      },
    },
    {
      kind: "room",
      count: Number.NaN,
      shares: {
        requestsPerSecond: roomRequests / LIMITS.requestsPerSecond,
        cpuMicrosPerSecond:
          (a.busiestGroupMessagesPerSecond * a.largestGroupSize * cpu.perGroupDeliveryUs) /
          LIMITS.cpuMicrosPerSecond,
        outgoingConnections: roomParallelCalls / LIMITS.outgoingConnections,
        rpcBytes: cpu.largestGroupFrameBytes / LIMITS.rpcBytes,
      },
    },
    ...(relays > 0
      ? [
          {
            kind: "relay" as const,
            count: relays,
            shares: {
              requestsPerSecond: relayRequests / LIMITS.requestsPerSecond,
              cpuMicrosPerSecond: (relayRequests * cpu.perCallUs) / LIMITS.cpuMicrosPerSecond,
              outgoingConnections: PUSHES_IN_FLIGHT / LIMITS.outgoingConnections,
              rpcBytes: cpu.largestGroupFrameBytes / LIMITS.rpcBytes,
            },
          },
        ]
      : []),
    {
      kind: "directory",
      count: DIRECTORIES,
      shares: {
        requestsPerSecond: directoryRequests / LIMITS.requestsPerSecond,
        storageBytes: ((a.registeredUsers / DIRECTORIES) * a.directoryBytesPerName) / LIMITS.storageBytes,
      },
    },
    {
      kind: "throttle",
      count: THROTTLES,
      shares: {
        requestsPerSecond: (loginRate * (LOGIN.calls.throttle ?? 0)) / THROTTLES / LIMITS.requestsPerSecond,
      },
    },
  ];

  let firstLimit: Verdict["firstLimit"] = { kind: "worker", limit: "requestsPerSecond", share: 0 };
  for (const object of objects) {
    for (const [limit, share] of Object.entries(object.shares) as [LimitName, number][]) {
      if (share > firstLimit.share) firstLimit = { kind: object.kind, limit, share };
    }
  }
  return {
    design,
    registeredUsers: a.registeredUsers,
    concurrentUsers,
    shards,
    balancers,
    balancerSlices,
    objects,
    firstLimit,
    goalHolds: firstLimit.share <= GOAL,
  };
}

export interface Costs {
  perMillionDirectMessages: number;
  perThousandMemberGroupMessage: number;
  perIdleConnectedUserMonth: number;
  ably: {
    perMillionDirectMessages: number;
    perThousandMemberGroupMessage: number;
    perIdleConnectedUserMonth: number;
  };
}

/** Dollars for one operation: Worker requests, object requests (WebSocket messages 20:1), rows, duration. */
export function operationDollars(cost: OperationCost, cpuUs: number): number {
  const sum = (counts: Partial<Record<ObjectKind, number>>) =>
    Object.values(counts).reduce((total, n) => total + (n ?? 0), 0);
  const objectRequests =
    sum(cost.calls) + sum(cost.webSocketMessages) / PRICES.webSocketMessagesPerBilledRequest;
  // Objects bill wall time while active; the CPU measured is the floor of it (I/O waits add).
  const activeSeconds = cpuUs / 1e6;
  return (
    cost.workerRequests * PRICES.workerRequest +
    objectRequests * PRICES.objectRequest +
    sum(cost.rowsWritten) * PRICES.rowWritten +
    sum(cost.rowsRead) * PRICES.rowRead +
    activeSeconds * PRICES.billedObjectGb * PRICES.gbSecond
  );
}

export function costs(a: Assumptions, cpu: MeasuredCpu, shards: number): Costs {
  const members = 1000;
  const group = groupMessage(members, Math.min(shards, members));
  // An idle user reconnects a.reconnectsPerUserPerDay times a day; pings are answered by the runtime
  // without waking the shard (setWebSocketAutoResponse), so hibernation leaves nothing else to bill.
  const connectCalls = Object.values(CONNECT.calls).reduce((total, n) => total + (n ?? 0), 0);
  const connectDollars = operationDollars(CONNECT, cpu.perCallUs * connectCalls);
  return {
    perMillionDirectMessages: 1e6 * operationDollars(DIRECT_MESSAGE, cpu.perDirectMessageUs),
    perThousandMemberGroupMessage: operationDollars(group, members * cpu.perGroupDeliveryUs),
    perIdleConnectedUserMonth: connectDollars * a.reconnectsPerUserPerDay * 30,
    ably: {
      perMillionDirectMessages: 1e6 * 2 * ABLY.perMessage,
      perThousandMemberGroupMessage: (1 + members) * ABLY.perMessage,
      perIdleConnectedUserMonth: ABLY.perPeakConnectionMonth,
    },
  };
}
