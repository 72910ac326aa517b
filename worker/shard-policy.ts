// The bounds and targets each balancer opens and drains shards by (durable-objects/balancer/shard-pool.ts),
// from wrangler.toml [vars]. The defaults keep a shard at about half of Cloudflare's per-object limits:
// 32,768 hibernated WebSockets and about 1,000 requests per second (docs/SCALING.md).

import type { ShardPolicy } from "../durable-objects/contracts.js";
import { boundedSetting } from "./placement.js";

export function shardPolicy(env: Env): ShardPolicy {
  const min = boundedSetting(env.SHARDS_MIN, 1, 1, 1024);
  return {
    min,
    max: Math.max(min, boundedSetting(env.SHARDS_MAX, 64, 1, 1024)),
    connections: boundedSetting(env.SHARD_TARGET_CONNECTIONS, 8_000, 1, 32_768),
    framesPerSecond: boundedSetting(env.SHARD_TARGET_FRAMES_PER_SECOND, 500, 1, 100_000),
  };
}
