// Names as a person types them into the page, checked by the protocol's own rule (as the CLI's args.ts
// does): "Bob" is bob; anything else is refused with what a valid name looks like.

import { UsageError } from "../../client/errors.js";
import { GROUP_NAME_PATTERN, normalizeName } from "../../protocol/limits.js";

export function parseUsername(raw: string): string {
  const name = normalizeName(raw.trim());
  if (!name) throw new UsageError(`"${raw.trim()}" is not a valid username: use 3–32 of a-z 0-9 _ -`);
  return name;
}

/** Usernames separated by commas or spaces, each checked, without repeats. */
export function parseUsernames(raw: string): string[] {
  const words = raw.split(/[\s,]+/).filter((word) => word !== "");
  return [...new Set(words.map(parseUsername))];
}

export function parseGroupName(raw: string): string {
  const name = normalizeName(raw.trim(), GROUP_NAME_PATTERN);
  if (!name) throw new UsageError(`"${raw.trim()}" is not a valid group name: use 3–32 of a-z 0-9 _ -`);
  return name;
}
