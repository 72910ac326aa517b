// The load balancer (the seed's serverAssign): a logged-in user's WebSocket upgrade is handed to the
// least-loaded shard. The shard learns who the user is from headers only the Worker can set.

import { Hono } from "hono";
import { nameExists } from "../../durable-objects/known-names.js";
import { balancerStub, shardCount, shardStub } from "../../durable-objects/names.js";
import { ShardHeaders } from "../../durable-objects/server-shard.js";
import { bearerToken, sessionRefused } from "../auth.js";
import type { AppEnv } from "../env.js";
import { ApiError } from "../errors.js";

export const connect = new Hono<AppEnv>();

/**
 * The session is not checked here but by the shard, which has the user's home check it and attach the
 * socket in one call: a login storm wakes each home once, not twice. A refused session still gets the
 * 401 every other route gives, before any WebSocket exists.
 */
connect.get("/connect", async (c) => {
  const token = await bearerToken(c.req.header("Authorization"));
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError("bad_request", "GET /v1/connect expects a WebSocket upgrade");
  }
  // No account, no shard call: the shard would wake a home for the name to check the session.
  if (!(await nameExists(c.env, "user", token.username))) throw sessionRefused("unknown");
  const shard = await balancerStub(c.env).assign(shardCount(c.env));
  const headers = new Headers(c.req.raw.headers);
  headers.delete("Authorization");
  headers.set(ShardHeaders.user, token.username);
  headers.set(ShardHeaders.session, token.sessionId);
  headers.set(ShardHeaders.secretHash, token.secretHash);
  headers.set(ShardHeaders.shard, shard);
  headers.set(ShardHeaders.receive, c.req.query("receive") === "0" ? "0" : "1");
  const response = await shardStub(c.env, shard).fetch(new Request(c.req.raw, { headers }));
  const refusal = response.status === 401 ? response.headers.get(ShardHeaders.refusal) : null;
  if (refusal !== null) throw sessionRefused(refusal);
  return response;
});

connect.get("/stats", async (c) => {
  return c.json({
    shards: shardCount(c.env),
    connections: await balancerStub(c.env).snapshot(shardCount(c.env)),
  });
});
