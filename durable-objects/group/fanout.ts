// How a room's message travels to the shards of its audience (group/audience.ts), and how often those shards
// acknowledge back. Both are sized by the audience, because one room is one object: about 1,000 requests a
// second and a few outgoing connections in all, whatever the size of the group.
//
// - A small audience is pushed to directly, at most PUSHES_IN_FLIGHT shards at once.
// - Past `relayAbove` shards (GROUP_RELAY_ABOVE_SHARDS), each message goes to the group's relays instead
//   (group-relay.ts), RELAY_BUCKETS of them at most, and each relay pushes to its share of the shards. A
//   shard's relay is a hash of its name, so a shard always hears a group through the same relay and the
//   messages it gets stay in the order they were stored. A 1,000-shard audience then costs the room 32
//   calls per message, not 1,000.
// - Each shard gathers its members' acknowledgements for the room over a window that grows with the
//   audience, so that all the shards together call the room at most ROOM_ACK_CALLS_PER_SECOND times a
//   second, however many messages it sends.

import { stableHash } from "../stable-hash.js";

/**
 * Pushes of one message in flight at once, from a room or from a relay: half of the 6 simultaneous outgoing
 * connections an object may have (docs/SCALING.md), leaving the other half to its other calls.
 */
export const PUSHES_IN_FLIGHT = 3;

/** Relays one group may use: 32 relays of 32 shards each reach a 1,000-shard audience in two hops. */
export const RELAY_BUCKETS = 32;

/** The default GROUP_RELAY_ABOVE_SHARDS: up to this many shards, a room pushes to each itself. */
export const RELAY_ABOVE_SHARDS = 32;

/** Acknowledgement calls a room's whole audience may make per second: a fifth of its request budget. */
export const ROOM_ACK_CALLS_PER_SECOND = 200;

/** The shortest window: a shard's acknowledgements gather this long even for a group on one shard. */
export const MIN_ACK_WINDOW_MS = 10;

/** The longest: a member's acknowledged message then waits at most this long to leave the room's queue. */
export const MAX_ACK_WINDOW_MS = 10_000;

/** Which relay of a group carries its messages to `shard`. */
export function relayBucketOf(shard: string): number {
  return stableHash(shard) % RELAY_BUCKETS;
}

/** Where one message goes: `Target` is a shard and what it is sent (group/audience.ts PushTarget). */
export type FanoutPlan<Target extends { shard: string }> =
  | { route: "direct"; targets: Target[] }
  | { route: "relayed"; relays: Array<{ bucket: number; targets: Target[] }> };

/** Direct up to `relayAbove` shards, else one entry per relay that has shards to reach, by bucket. */
export function planFanout<Target extends { shard: string }>(
  targets: Target[],
  relayAbove: number,
): FanoutPlan<Target> {
  if (targets.length <= relayAbove) return { route: "direct", targets };
  const byBucket = new Map<number, Target[]>();
  for (const target of targets) {
    const bucket = relayBucketOf(target.shard);
    const list = byBucket.get(bucket);
    if (list) list.push(target);
    else byBucket.set(bucket, [target]);
  }
  const relays = [...byBucket].sort(([a], [b]) => a - b).map(([bucket, list]) => ({ bucket, targets: list }));
  return { route: "relayed", relays };
}

/** How long each of `audienceShards` shards gathers acknowledgements before it calls the room. */
export function ackWindowMs(audienceShards: number): number {
  return Math.round(boundedAckWindowMs((audienceShards * 1000) / ROOM_ACK_CALLS_PER_SECOND));
}

/** A window a shard was asked for, held to the bounds above (the room is trusted; the bound is cheap). */
export function boundedAckWindowMs(asked: number | undefined): number {
  if (asked === undefined || !Number.isFinite(asked)) return MIN_ACK_WINDOW_MS;
  return Math.min(MAX_ACK_WINDOW_MS, Math.max(MIN_ACK_WINDOW_MS, asked));
}
