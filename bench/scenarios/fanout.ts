// Group fan-out: u0000 sends to a group of 100 and of 1,000 members (created with POST /v1/groups, keys
// from POST /v1/users/lookup), sealed for every member; the clock runs until the last member has it.
//
// Members are the login storm's crowd. One member (u0001) verifies and opens every group message against
// the group's members and epoch; the rest timestamp and ack. The bare relay and the engine floor get the very
// same frames, and so does the durable group floor: the engine floor's members, with the sender on a socket
// whose group messages are stored once in a room object before they are pushed, and deleted there once
// acknowledged (bench/workerd-floor/worker.ts FloorRoom).

import { createGroup, lookupUsers } from "../lib/api.js";
import type { BenchContext } from "../lib/context.js";
import { BenchClient } from "../lib/client.js";
import { Opener, Sender, type Sealed, benchText, recipientsFrom } from "../lib/identity.js";
import { type Usage } from "../lib/meter.js";
import {
  type FloorGoal,
  type ScenarioResult,
  floorGoal,
  summaryMs,
  usageReport,
  cpuColumns,
  serverCpu,
} from "../lib/report.js";
import { type Summary, round, roundSummary, summarize } from "../lib/stats.js";
import type { Crowd } from "./login-storm.js";

const WARMUP = 3;
const PAUSE_MS = 20;
const TEXT_BYTES = 100;

interface GroupPlan {
  name: string;
  size: number;
  messages: number;
}

// A p99 needs about a hundred samples to be more than the single slowest message.
const PLANS: GroupPlan[] = [
  { name: "fanout-100", size: 100, messages: 100 },
  { name: "fanout-1000", size: 1000, messages: 100 },
];

interface Run {
  /** Send → last member (not the sender) has it. */
  last: Summary;
  /** Send → half the members have it. */
  median: Summary;
  usage: Usage;
}

/**
 * Sends each frame in turn, waiting until every member but the sender has it, then pausing. The sender is
 * the crowd's first member unless another socket of theirs is given.
 */
async function fanOut(
  ctx: BenchContext,
  crowd: Crowd,
  size: number,
  frames: Sealed[],
  sender: BenchClient = crowd.clients[0]!,
  label = `fanout-${size}`,
): Promise<Run> {
  const members = crowd.clients.slice(0, size);
  let current = "";
  let sentAt = 0;
  let arrived = 0;
  let halfAt = 0;
  let lastAt = 0;
  let complete: () => void = () => undefined;
  members.forEach((client, index) => {
    const previous = client.onDelivery;
    client.onDelivery = (frame, id, at) => {
      previous?.(frame, id, at);
      if (index === 0 || id !== current) return;
      arrived++;
      if (arrived === Math.ceil((size - 1) / 2)) halfAt = at;
      if (arrived === size - 1) {
        lastAt = at;
        complete();
      }
    };
  });
  const last: number[] = [];
  const median: number[] = [];
  const mark = ctx.reloadMark();
  const { usage } = await ctx.measure(label, crowd.target, async () => {
    for (const [i, { frame, id }] of frames.entries()) {
      const done = new Promise<void>((resolve) => (complete = resolve));
      current = id;
      arrived = 0;
      sentAt = performance.now();
      const status = sender.upload(frame, id);
      await crowd.watch.race(Promise.all([done, status]), 60_000, `group message ${i} to ${size} members`);
      if (i >= WARMUP) {
        last.push(lastAt - sentAt);
        median.push(halfAt - sentAt);
      }
      await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
    }
  });
  ctx.checkNoReload(mark, "fan-out");
  members.forEach((client) => (client.onDelivery = undefined));
  return { last: summarize(last), median: summarize(median), usage };
}

/**
 * Messages still stored in the durable group floor's room once every ack had time to land: 0 unless acks
 * are lost. Nobody waits on the acks, so this polls briefly.
 */
async function floorRoomPending(ctx: BenchContext, group: string): Promise<number> {
  let pending = Number.NaN;
  for (let attempt = 0; attempt < 20; attempt++) {
    const response = await fetch(`${ctx.groupFloor.origin}/floor/room?group=${encodeURIComponent(group)}`);
    if (!response.ok) throw new Error(`durable group floor room: HTTP ${response.status}`);
    pending = ((await response.json()) as { pending: number }).pending;
    if (pending === 0) return 0;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return pending;
}

export async function fanout(
  ctx: BenchContext,
  system: Crowd,
  relay: Crowd,
  floor: Crowd,
): Promise<ScenarioResult> {
  const rows: ScenarioResult["rows"] = [];
  const cpuRows: NonNullable<ScenarioResult["serverCpu"]> = [];
  const goals: FloorGoal[] = [];
  const details: Record<string, unknown> = {};
  const owner = system.users[0]!;
  const sender = new Sender(ctx.shared, owner);
  for (const plan of PLANS) {
    const names = system.users.slice(0, plan.size);
    ctx.log(`fan-out: creating ${plan.name} with ${plan.size} members`);
    const info = await createGroup(
      ctx.system.origin,
      ctx.system.token(owner),
      ctx.shared,
      owner,
      plan.name,
      names.slice(1).map((username) => ({ username, token: ctx.system.token(username) })),
    );
    // Every member hears of the group (an event through its queue) before the first message.
    const deadline = Date.now() + 60_000;
    while (!system.clients.slice(0, plan.size).every((client) => client.events.includes(plan.name))) {
      if (Date.now() > deadline)
        throw new Error(`fan-out: not every member heard that ${plan.name} was created`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const memberNames = info.members.map((member) => member.username).sort();
    const recipients = await recipientsFrom(
      await lookupUsers(ctx.system.origin, ctx.system.token(owner), memberNames),
    );

    // Seal every message first: the first one pays an RSA wrap per member, the rest reuse the wraps.
    ctx.log(`fan-out: sealing ${WARMUP + plan.messages} messages for ${plan.size} members`);
    const frames: Sealed[] = [];
    const cpuBefore = process.cpuUsage();
    frames.push(await sender.group(plan.name, info.epoch, recipients, benchText(0, TEXT_BYTES)));
    const firstCpu = process.cpuUsage(cpuBefore);
    const restBefore = process.cpuUsage();
    for (let i = 1; i < WARMUP + plan.messages; i++) {
      frames.push(await sender.group(plan.name, info.epoch, recipients, benchText(i, TEXT_BYTES)));
    }
    const restCpu = process.cpuUsage(restBefore);
    const sealMs = (restCpu.user + restCpu.system) / 1000 / (frames.length - 1);

    // One member really verifies and opens each message against the group's members and epoch.
    const verifier = system.clients[1]!;
    const opener = new Opener(ctx.shared, system.users[1]!, (e) => system.watch.fail(e), {
      members: memberNames,
      epoch: info.epoch,
    });
    verifier.onDelivery = (frame) => opener.push(frame);

    ctx.log(`fan-out: ${frames.length} messages to ${plan.size} members through Telepound`);
    const systemRun = await fanOut(ctx, system, plan.size, frames);
    await system.watch.race(opener.drained(), 60_000, "opening the group messages");
    if (opener.opened !== frames.length)
      throw new Error(`fan-out: u0001 opened ${opener.opened} of ${frames.length}`);
    ctx.log(`fan-out ${plan.size}: Telepound last member ${summaryMs(systemRun.last)}`);
    ctx.log(`fan-out: the same ${frames.length} frames to ${plan.size} members through the bare relay`);
    const relayRun = await fanOut(ctx, relay, plan.size, frames);
    ctx.log(`fan-out ${plan.size}: relay last member ${summaryMs(relayRun.last)}`);
    // The engine floor does the relay's job in the same engine: what workerd here allows any design.
    ctx.log(`fan-out: the same ${frames.length} frames to ${plan.size} members through the engine floor`);
    const floorRun = await fanOut(ctx, floor, plan.size, frames);
    ctx.log(`fan-out ${plan.size}: engine floor last member ${summaryMs(floorRun.last)}`);
    // The least a design that stores before it delivers costs here: each message committed once first.
    ctx.log(
      `fan-out: the same ${frames.length} frames to ${plan.size} members through the durable group floor`,
    );
    const roomSender = await BenchClient.open({
      origin: ctx.groupFloor.origin,
      token: ctx.groupFloor.token(owner),
      watch: floor.watch,
    });
    const groupFloorRun = await fanOut(ctx, floor, plan.size, frames, roomSender, `fanout-${plan.size}-room`);
    await roomSender.close();
    ctx.log(`fan-out ${plan.size}: durable group floor last member ${summaryMs(groupFloorRun.last)}`);

    for (const [metric, key] of [
      ["p50 send → last member", "p50"],
      ["p99 send → last member", "p99"],
    ] as const) {
      rows.push({
        scenario: `group fan-out to ${plan.size} members`,
        metric,
        unit: "ms",
        telepound: systemRun.last[key],
        baseline: relayRun.last[key],
        floor: floorRun.last[key],
        durableFloor: groupFloorRun.last[key],
        goal: plan.size === 1000 && key === "p99" ? "≤ 50 ms" : "report",
        met: plan.size === 1000 && key === "p99" ? systemRun.last.p99 <= 50 : null,
        ...cpuColumns(systemRun.usage),
        note:
          key === "p50"
            ? `half the members had it after ${round(systemRun.median.p50)} ms (relay ${round(relayRun.median.p50)})`
            : undefined,
      });
    }
    // The goal stays set against the bare relay; the engine floor beside it says how much of that the
    // engine itself takes.
    if (plan.size === 1000)
      goals.push(
        floorGoal({
          scenario: "1000-member fan-out, last member, p99",
          unit: "ms",
          telepound: systemRun.last.p99,
          yardstick: relayRun.last.p99,
          against: "bare relay",
          direction: "at most",
          limit: 2,
          also: `engine floor ÷ bare relay ${round(floorRun.last.p99 / relayRun.last.p99, 3)}×, durable group floor ÷ bare relay ${round(groupFloorRun.last.p99 / relayRun.last.p99, 3)}×; ÷ engine floor ${round(systemRun.last.p99 / floorRun.last.p99, 3)}×, ÷ durable group floor ${round(systemRun.last.p99 / groupFloorRun.last.p99, 3)}×`,
        }),
      );
    const messages = frames.length * (plan.size - 1);
    cpuRows.push(
      serverCpu(
        `group fan-out to ${plan.size}`,
        "delivery",
        messages,
        systemRun.usage,
        relayRun.usage,
        floorRun.usage,
        groupFloorRun.usage,
      ),
    );
    details[plan.name] = {
      members: plan.size,
      messages: frames.length,
      warmup: WARMUP,
      frameBytes: frames[0]!.frame.length,
      sealCpuMsPerMessage: round(sealMs),
      firstSealCpuMs: round((firstCpu.user + firstCpu.system) / 1000),
      telepound: {
        lastMemberMs: roundSummary(systemRun.last),
        halfMembersMs: roundSummary(systemRun.median),
        usage: usageReport(systemRun.usage, { count: messages, per: "Delivery" }),
      },
      relay: {
        lastMemberMs: roundSummary(relayRun.last),
        halfMembersMs: roundSummary(relayRun.median),
        usage: usageReport(relayRun.usage, { count: messages, per: "Delivery" }),
      },
      engineFloor: {
        lastMemberMs: roundSummary(floorRun.last),
        halfMembersMs: roundSummary(floorRun.median),
        usage: usageReport(floorRun.usage, { count: messages, per: "Delivery" }),
      },
      durableGroupFloor: {
        lastMemberMs: roundSummary(groupFloorRun.last),
        halfMembersMs: roundSummary(groupFloorRun.median),
        usage: usageReport(groupFloorRun.usage, { count: messages, per: "Delivery" }),
        stillStored: await floorRoomPending(ctx, plan.name),
      },
    };
  }
  return { id: "fanout", title: "Group fan-out", rows, serverCpu: cpuRows, goals, details };
}
