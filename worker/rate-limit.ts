// Abuse limits on the HTTP API, counted per client address (signup, login) or per user (uploads, key
// lookups, names that do not exist). The
// numbers are [vars] in wrangler.toml so an operator (or a load test) can change them without a deploy
// of code; docs/SECURITY.md lists the defaults.

import { createMiddleware } from "hono/factory";
import type { Context } from "hono";
import { throttleStub } from "../durable-objects/names.js";
import { addressBucket } from "./client-address.js";
import type { AppEnv } from "./env.js";
import { ApiError } from "./errors.js";

export interface LimitSpec {
  /** Names the counter and the wrangler.toml variable that holds its limit. */
  name:
    | "SIGNUPS_PER_IP_PER_HOUR"
    | "LOGINS_PER_IP_PER_MINUTE"
    | "UPLOADS_PER_USER_PER_MINUTE"
    | "LOOKUPS_PER_USER_PER_MINUTE"
    | "UNKNOWN_NAMES_PER_USER_PER_MINUTE";
  windowMs: number;
  /** The key counted. Never skipped: a request without a client address is counted in a shared bucket. */
  key: (c: Context<AppEnv>) => string;
}

/** The client's address (IPv6 by /64), or the shared bucket of requests without one (client-address.ts). */
export const byClientAddress = (c: Context<AppEnv>): string =>
  `address:${addressBucket(c.req.header("CF-Connecting-IP"))}`;
export const byUser = (c: Context<AppEnv>): string => `user:${c.var.user}`;

export function rateLimit(spec: LimitSpec) {
  return createMiddleware<AppEnv>(async (c, next) => {
    await charge(c, spec);
    await next();
  });
}

/** Counts one request against `spec`; throws the 429 (with Retry-After) once it is over. */
export async function charge(c: Context<AppEnv>, spec: LimitSpec): Promise<void> {
  const limit = Number(c.env[spec.name]);
  if (!Number.isFinite(limit) || limit <= 0) return;
  const counter = `${spec.name}:${spec.key(c)}`;
  const result = await throttleStub(c.env, counter).hit(counter, limit, spec.windowMs);
  if (!result.ok) {
    const seconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
    throw new ApiError("rate_limited", `too many requests: try again in ${seconds} s`, {
      "Retry-After": String(seconds),
    });
  }
}

/**
 * Requests by a user that name a user or group that does not exist: honest clients make few (a typo),
 * a prober makes many. Counted after the miss, so lookups of names that exist never count.
 */
export const UNKNOWN_NAMES: LimitSpec = {
  name: "UNKNOWN_NAMES_PER_USER_PER_MINUTE",
  windowMs: 60_000,
  key: byUser,
};
