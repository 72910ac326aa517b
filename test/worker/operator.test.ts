// GET /v1/stats is the operator's: refused without the OPERATOR_TOKEN secret, with a wrong one, and on a
// deployment that has none configured; answered with the right one.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ErrorResponse, StatsResponse } from "../../protocol/http.js";
import worker from "../../worker/index.js";
import { LOCAL_OPERATOR_TOKEN } from "../support/operator-token.js";
import { BASE, api, online, signup, uniqueName } from "./helpers.js";

async function errorCode(response: Response): Promise<string> {
  return ((await response.json()) as ErrorResponse).error.code;
}

describe("GET /v1/stats", () => {
  it("refuses a request without a token (401)", async () => {
    const response = await api("/v1/stats");
    expect(response.status).toBe(401);
    expect(await errorCode(response)).toBe("unauthorized");
  });

  it("refuses a wrong token, a user's session token among them (403)", async () => {
    for (const token of ["wrong", `${LOCAL_OPERATOR_TOKEN}x`, LOCAL_OPERATOR_TOKEN.slice(0, -1)]) {
      const response = await api("/v1/stats", { token });
      expect(response.status, token).toBe(403);
      expect(await errorCode(response)).toBe("forbidden");
    }
  });

  it("answers the operator's token with the load per shard and balancer, and the policy", async () => {
    const session = await signup(uniqueName("stats"));
    const socket = await online(session.token);
    const shard = String((await socket.waitForJson("welcome")).shard);
    const response = await api("/v1/stats", { token: LOCAL_OPERATOR_TOKEN });
    expect(response.status).toBe(200);
    const stats = (await response.json()) as StatsResponse;
    expect(stats.connections[shard]).toBeGreaterThanOrEqual(1);
    expect(stats.shards).toBe(Object.keys(stats.connections).length);
    const holder = stats.balancers.find(({ shards }) => shards.some((entry) => entry.shard === shard));
    expect(holder?.balancer).toBe(shard.replace(/^shard:(.*):\d+$/, "balancer:$1"));
    expect(stats.policy).toEqual({
      min: Number(env.SHARDS_MIN),
      max: Number(env.SHARDS_MAX),
      connections: Number(env.SHARD_TARGET_CONNECTIONS),
      framesPerSecond: Number(env.SHARD_TARGET_FRAMES_PER_SECOND),
    });
    socket.close();
    // Every region's balancers were asked; one that never had a connect made no schema, so stores nothing.
    const untouched = await runInDurableObject(env.BALANCER.getByName("balancer:sam:1"), (_, state) =>
      state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'").toArray(),
    );
    expect(untouched).toEqual([]);
  });

  it("stays closed on a deployment with no token configured, whatever is sent", async () => {
    const unset = { ...env, OPERATOR_TOKEN: undefined } as Env;
    const context = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
    for (const authorization of [
      undefined,
      "Bearer ",
      `Bearer ${LOCAL_OPERATOR_TOKEN}`,
      "Bearer undefined",
    ]) {
      const headers: Record<string, string> =
        authorization === undefined ? {} : { Authorization: authorization };
      const response = await worker.fetch(new Request(`${BASE}/v1/stats`, { headers }), unset, context);
      expect(response.status, String(authorization)).toBe(403);
      expect(await errorCode(response)).toBe("forbidden");
    }
  });
});
