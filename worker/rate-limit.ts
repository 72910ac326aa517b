// Abuse limits on the HTTP API, counted per client address (signup, login) or per user (uploads). The
// numbers are [vars] in wrangler.toml so an operator (or a load test) can change them without a deploy
// of code; docs/SECURITY.md lists the defaults.

import { createMiddleware } from "hono/factory";
import type { Context } from "hono";
import type { AppEnv } from "./env.js";
import { ApiError } from "./errors.js";

export interface LimitSpec {
  /** Names the counter and the wrangler.toml variable that holds its limit. */
  name: "SIGNUPS_PER_IP_PER_HOUR" | "LOGINS_PER_IP_PER_MINUTE" | "UPLOADS_PER_USER_PER_MINUTE";
  windowMs: number;
  /** The key counted; null skips the limit (no client address: a direct call inside the runtime). */
  key: (c: Context<AppEnv>) => string | null;
}

export const byClientAddress = (c: Context<AppEnv>): string | null =>
  c.req.header("CF-Connecting-IP") ?? null;
export const byUser = (c: Context<AppEnv>): string | null => c.var.user ?? null;

export function rateLimit(spec: LimitSpec) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const key = spec.key(c);
    const limit = Number(c.env[spec.name]);
    if (key !== null && Number.isFinite(limit) && limit > 0) {
      const counter = `${spec.name}:${key}`;
      const result = await c.env.THROTTLE.get(c.env.THROTTLE.idFromName(counter)).hit(
        counter,
        limit,
        spec.windowMs,
      );
      if (!result.ok) {
        const seconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
        throw new ApiError("rate_limited", `too many requests: try again in ${seconds} s`, {
          "Retry-After": String(seconds),
        });
      }
    }
    await next();
  });
}
