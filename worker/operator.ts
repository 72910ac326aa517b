// Routes only the operator may call (GET /v1/stats): the load per shard is no one else's business. The
// token is a Worker secret, OPERATOR_TOKEN (`wrangler secret put` in production, `.dev.vars` under
// `wrangler dev`); a deployment without one answers every such request 403, never openly.

import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./env.js";
import { ApiError } from "./errors.js";

declare global {
  namespace Cloudflare {
    interface Env {
      /** A secret, so not in wrangler.toml [vars]: absent until an operator sets it. */
      OPERATOR_TOKEN?: string;
    }
  }
}

const encoder = new TextEncoder();

/**
 * Compares the digests, not the tokens: timingSafeEqual needs equal lengths, and comparing lengths
 * first would tell a prober the token's length.
 */
async function sameToken(offered: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(offered)),
    crypto.subtle.digest("SHA-256", encoder.encode(expected)),
  ]);
  return crypto.subtle.timingSafeEqual(a, b);
}

export const requireOperator: MiddlewareHandler<AppEnv> = async (c, next) => {
  const expected = c.env.OPERATOR_TOKEN;
  if (!expected) throw new ApiError("forbidden", "operator routes are off: no OPERATOR_TOKEN is configured");
  const match = /^Bearer (\S+)$/.exec(c.req.header("Authorization") ?? "");
  if (!match) throw new ApiError("unauthorized", "missing operator token");
  if (!(await sameToken(match[1]!, expected))) throw new ApiError("forbidden", "wrong operator token");
  await next();
};
