// Which balancer a connect goes to: the one of the request's region (so a shard it opens is placed near
// the users it serves) and of the user's slice of that region (so no balancer sees every connect of a
// region). The slice is a hash of the username: a user's connects go to the same balancer.
//
// The region comes from the platform only (request.cf, which a client cannot set), except under
// `wrangler dev` with TEST_LOCATION_HEADER = "1", where a test names it in X-Telepound-Test-Location.

import { ANYWHERE, type Region, isRegion } from "../durable-objects/regions.js";
import { balancerName } from "../durable-objects/names.js";
import { stableHash } from "../durable-objects/stable-hash.js";

export const TEST_LOCATION_HEADER = "X-Telepound-Test-Location";

/** Countries of Asia that Cloudflare's "me" location hint serves. */
const MIDDLE_EAST = new Set([
  "AE",
  "BH",
  "IL",
  "IQ",
  "IR",
  "JO",
  "KW",
  "LB",
  "OM",
  "PS",
  "QA",
  "SA",
  "SY",
  "TR",
  "YE",
]);

/** The region of a request's location as the platform gives it. */
export function regionOfLocation(
  cf: { continent?: string; country?: string; longitude?: string } | undefined,
): Region {
  const longitude = Number(cf?.longitude);
  switch (cf?.continent) {
    case "NA":
      return Number.isFinite(longitude) && longitude < -100 ? "wnam" : "enam";
    case "SA":
      return "sam";
    case "EU":
      return Number.isFinite(longitude) && longitude >= 20 ? "eeur" : "weur";
    case "AF":
      return "afr";
    case "AS":
      return MIDDLE_EAST.has(cf.country ?? "") ? "me" : "apac";
    case "OC":
      return "oc";
    default:
      return ANYWHERE;
  }
}

export function regionOf(request: Request, env: Env): Region {
  if (env.TEST_LOCATION_HEADER === "1") {
    const named = request.headers.get(TEST_LOCATION_HEADER);
    if (named !== null && isRegion(named)) return named;
  }
  return regionOfLocation(
    request.cf as { continent?: string; country?: string; longitude?: string } | undefined,
  );
}

/** Balancers per region (wrangler.toml [vars] BALANCER_SLICES), 1–64. */
export function balancerSlices(env: Env): number {
  return boundedSetting(env.BALANCER_SLICES, 2, 1, 64);
}

export function balancerFor(request: Request, env: Env, username: string): string {
  return balancerName(regionOf(request, env), stableHash(username) % balancerSlices(env));
}

/** An integer setting clamped to [low, high], or its default when unset or not a number. */
export function boundedSetting(
  value: string | undefined,
  fallback: number,
  low: number,
  high: number,
): number {
  const parsed = Number.parseInt(String(value ?? ""), 10);
  return Number.isFinite(parsed) ? Math.min(high, Math.max(low, parsed)) : fallback;
}
