// How every Durable Object is named and reached. A user's home and a shard are addressed by name, so
// any Worker or object can reach them without a directory lookup.

/** The Durable Object that holds `username`'s account, sessions and offline queue. */
export function homeStub(env: Env, username: string): DurableObjectStub<import("./user-home.js").UserHome> {
  return env.HOMES.get(env.HOMES.idFromName(`user:${username}`));
}

export function shardName(index: number): string {
  return `shard-${index}`;
}

export function shardStub(
  env: Env,
  name: string,
): DurableObjectStub<import("./server-shard.js").ServerShard> {
  return env.SHARDS.get(env.SHARDS.idFromName(name));
}

/** The Durable Object that holds group `name`: its members, admin, epoch, and message fan-out. */
export function groupStub(env: Env, name: string): DurableObjectStub<import("./group-room.js").GroupRoom> {
  return env.GROUPS.get(env.GROUPS.idFromName(`group:${name}`));
}

/** The single load table. It sits on the connect path only, never on the path of a message. */
export function balancerStub(env: Env): DurableObjectStub<import("./load-balancer.js").LoadBalancer> {
  return env.BALANCER.get(env.BALANCER.idFromName("balancer"));
}

/** The configured shard count (wrangler.toml [vars] SHARD_COUNT), at least 1. */
export function shardCount(env: Env): number {
  const count = Number.parseInt(String(env.SHARD_COUNT ?? "4"), 10);
  return Number.isFinite(count) && count >= 1 ? Math.min(count, 1024) : 4;
}
