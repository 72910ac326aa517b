// Abuse limits on the HTTP API, counted per client address (signup, login) or per user (uploads, key
// lookups, names that do not exist, groups created, users added to groups). The numbers are [vars] in
// wrangler.toml so an operator (or a load test) can change them without a deploy of code;
// docs/SECURITY.md lists the defaults.

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
    | "UNKNOWN_NAMES_PER_USER_PER_MINUTE"
    | "GROUP_CREATES_PER_USER_PER_HOUR"
    | "GROUP_ADDS_PER_USER_PER_HOUR";
  windowMs: number;
  /** What is counted when it is not requests, for the 429's message: "groups created". */
  counts?: string;
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

/**
 * Counts `cost` (one request unless told) against `spec`; throws the 429 (with Retry-After) once it would
 * be over, counting nothing.
 */
export async function charge(c: Context<AppEnv>, spec: LimitSpec, cost = 1): Promise<void> {
  const limit = Number(c.env[spec.name]);
  if (!Number.isFinite(limit) || limit <= 0 || cost <= 0) return;
  const what = spec.counts ?? "requests";
  const window = spec.windowMs >= 3_600_000 ? "an hour" : "a minute";
  if (cost > limit) {
    // No wait helps: say so rather than name a time after which it fails again.
    throw new ApiError("rate_limited", `too many ${what} at once: ${cost}, and at most ${limit} ${window}`);
  }
  const counter = counterName(c, spec);
  const result = await throttleStub(c.env, counter).hit(counter, limit, spec.windowMs, cost);
  if (!result.ok) {
    const seconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
    const message = spec.counts
      ? `too many ${what}: at most ${limit} ${window}; try again in ${seconds} s`
      : `too many requests: try again in ${seconds} s`;
    throw new ApiError("rate_limited", message, { "Retry-After": String(seconds) });
  }
}

/** Gives back what charge() counted, for a request that changed nothing and will be made again. */
export async function refund(c: Context<AppEnv>, spec: LimitSpec, cost = 1): Promise<void> {
  const limit = Number(c.env[spec.name]);
  if (!Number.isFinite(limit) || limit <= 0 || cost <= 0 || cost > limit) return;
  const counter = counterName(c, spec);
  await throttleStub(c.env, counter).refund(counter, cost);
}

function counterName(c: Context<AppEnv>, spec: LimitSpec): string {
  return `${spec.name}:${spec.key(c)}`;
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

/** Groups a user creates: each create is a room and a name in the directory. */
export const GROUP_CREATES: LimitSpec = {
  name: "GROUP_CREATES_PER_USER_PER_HOUR",
  windowMs: 3_600_000,
  key: byUser,
  counts: "groups created",
};

/**
 * Users a user adds to or invites into groups: each is an event in someone's queue and, for an invitation,
 * a place in their pending invitations. A create counts everyone it names but its creator.
 */
export const GROUP_ADDS: LimitSpec = {
  name: "GROUP_ADDS_PER_USER_PER_HOUR",
  windowMs: 3_600_000,
  key: byUser,
  counts: "users added to or invited into groups",
};
