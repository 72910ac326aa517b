// The words the core itself keeps: the history stores a group change as the line people read
// (summarizeEvent), and every face shows text from the network through the same sanitising. Nothing here
// knows of a terminal's colours; the printer (cli-client/output.ts) adds those.

import type { ShownEvent } from "./events.js";

/**
 * Characters a terminal acts on rather than shows, or that disguise text: C0 controls (ESC starts CSI and
 * OSC sequences, BEL rings, CR rewrites the line), DEL, C1 controls (U+009B is CSI by itself on some
 * terminals), and the bidirectional marks and overrides. Tab and line feed are left to each caller.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text that came over the network (message text, names, the server's error words) could rewrite what
 * is already on screen or disguise itself: every unsafe character becomes U+FFFD; tabs and newlines stay.
 */
export function sanitize(text: string): string {
  return text.replace(UNSAFE, "\ufffd");
}

/** `sanitize` for a field that must stay on one line (a name, an error): tabs and newlines go too. */
export function sanitizeLine(text: string): string {
  return sanitize(text).replace(/[\t\n\u2028\u2029]/g, "\ufffd");
}

/** What an invitee types to answer: "`telepound group join team` or `telepound group decline team`". */
export function answerHint(group: string): string {
  const name = sanitizeLine(group);
  return `\`telepound group join ${name}\` or \`telepound group decline ${name}\``;
}

export function namesLine(names: readonly string[]): string {
  return names.map(sanitizeLine).join(", ");
}

/**
 * What happened, without the time: "group team: alice added bob (members: alice, bob) [signed by alice]".
 * An invitation of the viewer says how to answer it: "alice invited you to team: `telepound group join
 * team` or `telepound group decline team` (…)".
 */
export function summarizeEvent(raw: Omit<ShownEvent, "at">): string {
  // Every field came from the server: each is kept to one line, so the summary is one line.
  const by = sanitizeLine(raw.by);
  const group = sanitizeLine(raw.group);
  const you = raw.viewer === raw.user;
  const user = you ? "you" : sanitizeLine(raw.user);
  const invitesYou =
    (raw.event === "invited" && you) || (raw.event === "created" && raw.invited.includes(raw.viewer));
  const what = {
    created: `${by} created the group`,
    added: `${by} added ${user}`,
    removed: `${by} removed ${user}`,
    left: `${user} left`,
    invited: `${by} invited ${user}`,
    joined: `${user} joined`,
    declined: `${user} declined the invitation`,
    uninvited: `${by} withdrew the invitation of ${user}`,
  }[raw.event];
  const members = namesLine(raw.members) || "none";
  const invited = raw.invited.length > 0 ? `; invited: ${namesLine(raw.invited)}` : "";
  // A leaving admin hands over: worth saying, since the next add or remove depends on it.
  const admin = raw.event === "left" && raw.admin !== null ? `; admin: ${sanitizeLine(raw.admin)}` : "";
  const lists = `(members: ${members}${invited}${admin}) [signed by ${sanitizeLine(raw.signedBy)}]`;
  if (invitesYou) return `${by} invited you to ${group}: ${answerHint(raw.group)} ${lists}`;
  return `group ${group}: ${what} ${lists}`;
}

/** 1536 → "1.5 KiB": for people reading about a file. */
export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function isoTime(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? new Date(0).toISOString() : date.toISOString();
}

/** YYYY-MM-DD HH:MM:SS in the local time zone: what a person reading their inbox expects. */
export function localTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
