// Checks for user-typed arguments shared by several commands; each failure is a UsageError (exit 2)
// that says what a valid value looks like.

import { hostname } from "node:os";
import { MAX_DEVICE_NAME_LENGTH, deviceName } from "../../protocol/http.js";
import { GROUP_NAME_PATTERN, normalizeName } from "../../protocol/limits.js";
import { UsageError } from "../../client/errors.js";

/** Usernames are compared without regard to case, so "Bob" is bob. */
export function parseUsername(raw: string): string {
  const name = normalizeName(raw);
  if (!name) throw new UsageError(`"${raw}" is not a valid username: use 3–32 of a-z 0-9 _ -`);
  return name;
}

/** Group names follow the username rule, in their own namespace; "Team" is team. */
export function parseGroupName(raw: string): string {
  const name = normalizeName(raw, GROUP_NAME_PATTERN);
  if (!name) throw new UsageError(`"${raw}" is not a valid group name: use 3–32 of a-z 0-9 _ -`);
  return name;
}

/** A number of seconds, 0 or more (fractions allowed), at most a day. */
export function parseSeconds(raw: string, option: string): number {
  const value = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(value) || value < 0 || value > 86_400) {
    throw new UsageError(`${option} takes a number of seconds between 0 and 86400, not "${raw}"`);
  }
  return value;
}

/** A count of entries to show: a whole number from 1 to 100,000. */
export function parseLimit(raw: string, option: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || value < 1 || value > 100_000) {
    throw new UsageError(`${option} takes a whole number from 1 to 100000, not "${raw}"`);
  }
  return value;
}

/**
 * The name a new session is shown under in `telepound devices`: --device-name as given (checked as the
 * server checks it), else this machine's host name, cut to fit; none when even that is unusable.
 */
export function parseDeviceName(
  raw: string | boolean | undefined,
  host: string = hostname(),
): string | undefined {
  if (typeof raw === "string") {
    const parsed = deviceName.safeParse(raw);
    if (!parsed.success) {
      throw new UsageError(
        `--device-name takes 1–${MAX_DEVICE_NAME_LENGTH} characters without control characters, not "${raw}"`,
      );
    }
    return parsed.data;
  }
  const fallback = deviceName.safeParse(host.slice(0, MAX_DEVICE_NAME_LENGTH));
  return fallback.success ? fallback.data : undefined;
}
