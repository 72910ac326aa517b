// The load balancer (the seed's serverAssign): a logged-in user's WebSocket upgrade is handed to the
// least-loaded shard of their region's and slice's balancer (worker/placement.ts). The shard learns who the user is from headers only the Worker can set.

import { Hono } from "hono";
import { nameExists } from "../../durable-objects/known-names.js";
import { balancerName, balancerStub, newShardStub, shardStub } from "../../durable-objects/names.js";
import { ALL_REGIONS } from "../../durable-objects/regions.js";
import { ShardHeaders } from "../../durable-objects/contracts.js";
import type { StatsResponse } from "../../protocol/http.js";
import { bearerToken, sessionRefused } from "../auth.js";
import type { AppEnv } from "../env.js";
import { ApiError } from "../errors.js";
import { requireOperator } from "../operator.js";
import { balancerFor, balancerSlices } from "../placement.js";
import { shardPolicy } from "../shard-policy.js";

export const connect = new Hono<AppEnv>();

/**
 * A browser cannot set Authorization on a WebSocket, but it can offer subprotocols: it offers
 * `telepound` and `telepound.bearer.<token>` (a token is `[a-z0-9_-]+.<hex>.<hex>`, all characters a
 * subprotocol may hold), and the server selects `telepound`, never echoing the token. The token is in a
 * header, like Authorization, and never in the URL, where logs and history would keep it.
 */
export const BROWSER_SUBPROTOCOL = "telepound";
const TOKEN_SUBPROTOCOL_PREFIX = "telepound.bearer.";

/** The Authorization header's value, or the bearer token a browser offered as a subprotocol. */
function authorizationOf(headers: { header(name: string): string | undefined }): string | undefined {
  const authorization = headers.header("Authorization");
  if (authorization !== undefined) return authorization;
  const offered = (headers.header("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim());
  const token = offered.find((p) => p.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
  return token === undefined ? undefined : `Bearer ${token.slice(TOKEN_SUBPROTOCOL_PREFIX.length)}`;
}

/**
 * The session is not checked here but by the shard, which has the user's home check it and attach the
 * socket in one call: a login storm wakes each home once, not twice. A refused session still gets the
 * 401 every other route gives, before any WebSocket exists.
 */
connect.get("/connect", async (c) => {
  const token = await bearerToken(authorizationOf(c.req));
  const fromBrowser = c.req.header("Authorization") === undefined;
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError("bad_request", "GET /v1/connect expects a WebSocket upgrade");
  }
  // No account, no shard call: the shard would wake a home for the name to check the session.
  if (!(await nameExists(c.env, "user", token.username))) throw sessionRefused("unknown");
  const balancer = balancerStub(c.env, balancerFor(c.req.raw, c.env, token.username));
  const { shard, ticket, unreported } = await balancer.assign(shardPolicy(c.env), token.username);
  const headers = new Headers(c.req.raw.headers);
  headers.delete("Authorization");
  headers.delete("Sec-WebSocket-Protocol");
  headers.set(ShardHeaders.user, token.username);
  headers.set(ShardHeaders.session, token.sessionId);
  headers.set(ShardHeaders.secretHash, token.secretHash);
  headers.set(ShardHeaders.receive, c.req.query("receive") === "0" ? "0" : "1");
  headers.set(ShardHeaders.ticket, String(ticket));
  // Only a shard that may not exist yet needs its place: a hint acts on creation, and costs each call.
  const stub = (unreported ? newShardStub : shardStub)(c.env, shard);
  const response = await stub.fetch(new Request(c.req.raw, { headers }));
  const refusal = response.status === 401 ? response.headers.get(ShardHeaders.refusal) : null;
  if (refusal !== null) throw sessionRefused(refusal);
  if (!fromBrowser || response.status !== 101) return response;
  // A browser that offered subprotocols fails the handshake unless one is selected.
  return new Response(null, {
    status: 101,
    webSocket: response.webSocket,
    headers: { "Sec-WebSocket-Protocol": BROWSER_SUBPROTOCOL },
  });
});

/**
 * Every balancer's shards, their state and load. There is no list of balancers to read: each region's
 * slices are asked, and one that never had a connect answers with no shards (and stores nothing).
 */
connect.get("/stats", requireOperator, async (c) => {
  const names = ALL_REGIONS.flatMap((region) =>
    Array.from({ length: balancerSlices(c.env) }, (_, slice) => balancerName(region, slice)),
  );
  const snapshots = await Promise.all(names.map((name) => balancerStub(c.env, name).snapshot()));
  const balancers = names
    .map((name, i) => ({ balancer: name, shards: snapshots[i]!.shards }))
    .filter(({ shards }) => shards.length > 0);
  const connections = Object.fromEntries(
    balancers.flatMap(({ shards }) => shards.map(({ shard, connections }) => [shard, connections])),
  );
  return c.json({
    shards: Object.keys(connections).length,
    connections,
    balancers,
    policy: shardPolicy(c.env),
  } satisfies StatsResponse);
});
