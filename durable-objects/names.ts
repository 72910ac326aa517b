// How every Durable Object is named and reached. A user's home and a shard are addressed by name, so
// any Worker or object can reach them without a directory lookup. Stubs are typed by the generated Env
// (worker-configuration.d.ts names each binding's class), so this file imports no class.

import { placedIn } from "./regions.js";
import { stableHash } from "./stable-hash.js";

/** The Durable Object that holds `username`'s account, sessions and offline queue. */
export function homeStub(env: Env, username: string) {
  return env.HOMES.getByName(`user:${username}`);
}

/**
 * A shard is named after the balancer that opened it, `shard:<region>:<slice>:<index>`, so it knows whom to
 * report to and is placed in its balancer's region. Names are reused: a closed shard's index is opened again
 * before a higher one.
 */
export function shardNameOf(balancer: string, index: number): string {
  return `${balancer.replace(/^balancer:/, "shard:")}:${index}`;
}

/** The balancer a shard reports to, or null for a name no balancer gave (such as a shard of an old layout). */
export function balancerOfShard(shard: string): string | null {
  const match = /^shard:([a-z]+):(\d+):\d+$/.exec(shard);
  return match ? balancerName(match[1]!, Number(match[2])) : null;
}

/** A shard that holds sockets, so exists already: a location hint would act only on its creation. */
export function shardStub(env: Env, name: string) {
  return env.SHARDS.getByName(name);
}

/** A shard that may not exist yet (one its balancer just opened): created in its balancer's region. */
export function newShardStub(env: Env, name: string) {
  return env.SHARDS.getByName(name, placedIn(/^shard:([a-z]+):/.exec(name)?.[1] ?? ""));
}

/** The Durable Object that holds group `name`: its members, admin, epoch, and message fan-out. */
export function groupStub(env: Env, name: string) {
  return env.GROUPS.getByName(`group:${name}`);
}

/** One of a large group's relays (group-relay.ts), `bucket` from group/fanout.ts relayBucketOf. */
export function relayStub(env: Env, group: string, bucket: number) {
  return env.RELAYS.getByName(`relay:${group}:${bucket}`);
}

/** The balancer of one region's slice: connects are spread over regions × slices of these (worker/placement.ts). */
export function balancerName(region: string, slice: number): string {
  return `balancer:${region}:${slice}`;
}

/** Balancers sit on the connect path only, never on the path of a message; each lives in its region. */
export function balancerStub(env: Env, name: string) {
  return env.BALANCER.getByName(name, placedIn(/^balancer:([a-z]+):/.exec(name)?.[1] ?? ""));
}

/**
 * How many throttle objects share the abuse counters. Fixed, so a client inventing addresses or names
 * spreads over these few objects instead of waking (and, in SQLite-backed namespaces, creating) one each.
 */
export const THROTTLE_OBJECTS = 64;

/** The throttle object that holds `counter`. */
export function throttleStub(env: Env, counter: string) {
  return env.THROTTLE.getByName(`throttle-${stableHash(counter) % THROTTLE_OBJECTS}`);
}

/** How many directory objects hold the registered names (directory.ts); fixed, like the throttle pool. */
export const DIRECTORY_OBJECTS = 16;

export function directoryIndex(name: string): number {
  return stableHash(name) % DIRECTORY_OBJECTS;
}

/** The directory object that knows whether `name` (a user or a group) exists. */
export function directoryStub(env: Env, name: string) {
  return env.DIRECTORY.getByName(`directory-${directoryIndex(name)}`);
}
