// The page's words for what the core reports: group changes, times and sizes. Every name here came from
// the network; it is cleaned of characters that disguise text (client/describe.ts) and then shown as a
// text node, never parsed as HTML.

import { formatBytes, sanitize, sanitizeLine } from "../../client/describe.js";
import type { ShownEvent } from "../../client/events.js";

export { formatBytes };

/** A name, a group or a file name: one line, no bidirectional overrides or controls. */
export function name(text: string): string {
  return sanitizeLine(text);
}

/** Message text: its lines kept, disguising characters replaced. */
export function messageText(text: string): string {
  return sanitize(text);
}

type Change = Pick<ShownEvent, "event" | "by" | "user" | "members" | "invited" | "admin">;

/** "alice added bob", "you left": a group change as one line, "you" for the viewer. */
export function describeChange(change: Change, me: string): string {
  const who = (user: string) => (user === me ? "you" : name(user));
  const by = who(change.by);
  const user = who(change.user);
  switch (change.event) {
    case "created":
      return `${by} created the group`;
    case "added":
      return `${by} added ${user}`;
    case "removed":
      return `${by} removed ${user}`;
    case "left":
      return `${user} left` + (change.admin ? `; ${who(change.admin)} is now the admin` : "");
    case "invited":
      return `${by} invited ${user}`;
    case "joined":
      return `${user} joined`;
    case "declined":
      return `${user} declined the invitation`;
    case "uninvited":
      return `${by} withdrew the invitation of ${user}`;
  }
}

/** "14:05" today, "3 Dec 14:05" otherwise: the local time a person expects. */
export function shortTime(ms: number, now = Date.now()): string {
  if (!ms) return "";
  const date = new Date(ms);
  const time = date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (new Date(now).toDateString() === date.toDateString()) return time;
  return `${date.toLocaleDateString(undefined, { day: "numeric", month: "short" })} ${time}`;
}

export function fullTime(ms: number): string {
  return new Date(ms).toLocaleString();
}
