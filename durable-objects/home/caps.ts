// How many groups one user may be in and how many group invitations may wait for them at once, read from
// the deployment's settings (wrangler.toml [vars], docs/SECURITY.md). Both are checked in the user's home:
// the one place that knows every group and invitation of theirs.

/** Default for [vars] MAX_GROUPS_PER_USER when it is missing or not a whole number ≥ 1. */
export const DEFAULT_MAX_GROUPS = 200;
/** Default for [vars] MAX_PENDING_INVITATIONS_PER_USER when it is missing or not a whole number ≥ 1. */
export const DEFAULT_MAX_PENDING_INVITATIONS = 20;

export function maxGroups(env: Env): number {
  return wholeSetting(env.MAX_GROUPS_PER_USER, DEFAULT_MAX_GROUPS);
}

export function maxPendingInvitations(env: Env): number {
  return wholeSetting(env.MAX_PENDING_INVITATIONS_PER_USER, DEFAULT_MAX_PENDING_INVITATIONS);
}

function wholeSetting(value: string | undefined, fallback: number): number {
  const configured = Number(value);
  return Number.isSafeInteger(configured) && configured >= 1 ? configured : fallback;
}
