// The regions connections are balanced in: Cloudflare's Durable Object location hints, and "any" for a
// request the platform gave no location (a balancer and shards there get no hint and live where first used).

export const REGIONS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"] as const;
export type LocationHint = (typeof REGIONS)[number];
export const ANYWHERE = "any";
export type Region = LocationHint | typeof ANYWHERE;

export const ALL_REGIONS: readonly Region[] = [...REGIONS, ANYWHERE];

export function isRegion(value: string): value is Region {
  return (ALL_REGIONS as readonly string[]).includes(value);
}

/** The options that place a new object in `region`. */
export function placedIn(region: string): { locationHint?: LocationHint } {
  return (REGIONS as readonly string[]).includes(region) ? { locationHint: region as LocationHint } : {};
}
