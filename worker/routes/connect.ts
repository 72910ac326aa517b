// The load balancer (the seed's serverAssign): a logged-in user's WebSocket upgrade is handed to the
// least-loaded shard. The shard learns who the user is from headers only the Worker can set.

import { Hono } from "hono";
import { balancerStub, shardCount, shardStub } from "../../durable-objects/names.js";
import { ShardHeaders } from "../../durable-objects/server-shard.js";
import { requireSession } from "../auth.js";
import type { AppEnv } from "../env.js";
import { ApiError } from "../errors.js";

export const connect = new Hono<AppEnv>();

connect.get("/connect", requireSession, async (c) => {
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError("bad_request", "GET /v1/connect expects a WebSocket upgrade");
  }
  const shard = await balancerStub(c.env).assign(shardCount(c.env));
  const headers = new Headers(c.req.raw.headers);
  headers.delete("Authorization");
  headers.set(ShardHeaders.user, c.var.user);
  headers.set(ShardHeaders.session, c.var.sessionId);
  headers.set(ShardHeaders.shard, shard);
  headers.set(ShardHeaders.receive, c.req.query("receive") === "0" ? "0" : "1");
  headers.set(ShardHeaders.expiresAt, String(c.var.expiresAt));
  return shardStub(c.env, shard).fetch(new Request(c.req.raw, { headers }));
});

connect.get("/stats", async (c) => {
  return c.json({
    shards: shardCount(c.env),
    connections: await balancerStub(c.env).snapshot(shardCount(c.env)),
  });
});
