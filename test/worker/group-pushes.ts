// What the group tests watch on the way from a room to its members: the pushes each shard receives (one
// call per batch, from the room or from a relay), the relays' calls, and the room's audience.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, onTestFinished } from "vitest";
import type {
  GroupDelivery,
  GroupPushOutcome,
  RelayOutcome,
  RelayedDelivery,
} from "../../durable-objects/contracts.js";
import { groupStub, relayStub, shardStub } from "../../durable-objects/names.js";
import type { SessionResponse } from "../../protocol/http.js";
import { createGroup, writeTo } from "./group-changes.js";
import { uniqueName } from "./helpers.js";

export type PushGroup = (
  group: string,
  deliveries: GroupDelivery[],
  ackWindowMs?: number,
) => GroupPushOutcome[];

type PushHandler = (
  own: PushGroup,
  group: string,
  deliveries: GroupDelivery[],
) => Promise<GroupPushOutcome[]>;

/** A shard of its own for a test, so no other test's sockets are on it. */
export function freshShard(label: string): string {
  return `shard-${uniqueName(label)}`;
}

/** What the counted shards do with a push; every other shard does what it always does. */
const countedShards = new Map<string, (own: PushGroup, args: Parameters<PushGroup>) => unknown>();

/**
 * Counts the group pushes `shard` receives until the test ends, and the acknowledgement window each asked
 * for; `instead` replaces what the shard does with them. RPC calls the class's method, not an instance's
 * own property, so the class is wrapped once, passing through for every shard not counted.
 */
export async function countPushes(
  shard: string,
  instead?: PushHandler,
): Promise<{ calls: number; ackWindows: Array<number | undefined> }> {
  const counter = { calls: 0, ackWindows: [] as Array<number | undefined> };
  await runInDurableObject(shardStub(env, shard), (instance) => {
    const prototype = Object.getPrototypeOf(instance) as { pushGroup: PushGroup & { counted?: true } };
    if (!prototype.pushGroup.counted) {
      const original = prototype.pushGroup;
      const wrapped = function (this: { ctx: DurableObjectState }, ...args: Parameters<PushGroup>) {
        const own: PushGroup = original.bind(this);
        const handler = countedShards.get(this.ctx.id.name ?? "");
        return (handler ? handler(own, args) : own(...args)) as GroupPushOutcome[];
      };
      prototype.pushGroup = Object.assign(wrapped, { counted: true as const });
    }
  });
  countedShards.set(shard, (own, [group, deliveries, ackWindowMs]) => {
    counter.calls++;
    counter.ackWindows.push(ackWindowMs);
    const withWindow: PushGroup = (g, d) => own(g, d, ackWindowMs);
    // An RPC method may answer with a promise: the room awaits what it gets.
    return instead ? instead(withWindow, group, deliveries) : withWindow(group, deliveries);
  });
  onTestFinished(() => void countedShards.delete(shard));
  return counter;
}

type Relay = (ackWindowMs: number, deliveries: RelayedDelivery[]) => Promise<RelayOutcome[]>;
const countedRelays = new Map<string, { calls: number; relays: Set<string> }>();

/** Counts the calls `group`'s relays receive until the test ends, and which relays they went to. */
export async function countRelayCalls(group: string): Promise<{ calls: number; relays: Set<string> }> {
  const counter = { calls: 0, relays: new Set<string>() };
  await runInDurableObject(relayStub(env, group, 0), (instance) => {
    const prototype = Object.getPrototypeOf(instance) as { relay: Relay & { counted?: true } };
    if (prototype.relay.counted) return;
    const original = prototype.relay;
    const wrapped = function (this: { ctx: DurableObjectState }, ...args: Parameters<Relay>) {
      const name = this.ctx.id.name ?? "";
      const counted = countedRelays.get(name.replace(/:\d+$/, ""));
      if (counted) {
        counted.calls++;
        counted.relays.add(name);
      }
      return original.apply(this, args);
    };
    prototype.relay = Object.assign(wrapped, { counted: true as const });
  });
  countedRelays.set(`relay:${group}`, counter);
  onTestFinished(() => void countedRelays.delete(`relay:${group}`));
  return counter;
}

export async function audienceRows(group: string): Promise<string[]> {
  return runInDurableObject(groupStub(env, group), (_, state) =>
    state.storage.sql
      .exec<{ shard: string }>("SELECT shard FROM audience ORDER BY shard")
      .toArray()
      .map((row) => row.shard),
  );
}

/** A group of `members` made by the first, who has been written to by the others (consent). */
export async function groupOf(members: SessionResponse[]): Promise<string> {
  const [owner, ...others] = members;
  const name = uniqueName("aud");
  await writeTo(owner!, others);
  expect((await createGroup(owner!, name, others)).status).toBe(201);
  return name;
}

export const names = (members: SessionResponse[]) => members.map((member) => member.username);
