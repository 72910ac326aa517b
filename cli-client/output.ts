// The one printer every command writes through: human lines, or with --json one JSON object per line on
// stdout; warnings and errors always go to stderr so stdout stays parseable.

import pc from "picocolors";
import type { GroupInfo } from "../protocol/http.js";
import { sha256 } from "../protocol/bytes.js";
import type { HistoryEntry } from "./history.js";
import type { VerifiedEpoch } from "./groups.js";

/** Anything with a string `write`: process streams in use, plain collectors in tests. */
export interface TextSink {
  write(text: string): unknown;
}

export interface OutputStreams {
  stdout: TextSink;
  stderr: TextSink;
}

/** A decrypted, verified message, as inbox and chat show it. */
export interface ShownMessage {
  id: string;
  from: string;
  /** The recipient (direct) or the group's name (group). */
  to: string;
  /** Group messages only: the group's name. */
  group?: string;
  text: string;
  /** The sender's clock, milliseconds since the Unix epoch. */
  sentAt: number;
  /** A received file, saved and verified. */
  file?: ShownFile;
  /** A file that came with the message but could not be received (the reason); the text still stands. */
  fileError?: string;
}

export interface ShownFile {
  /** The sender's name for it, made safe; the saved file may carry a " (1)" suffix. */
  name: string;
  /** Where it was saved. */
  path: string;
  /** Plaintext bytes. */
  size: number;
  /** SHA-256 of the plaintext, hex. */
  sha256: string;
}

/** A group membership change, as its signed statement (verified by groups.ts) says. */
export interface ShownEvent {
  event: string;
  group: string;
  by: string;
  user: string;
  epoch: number;
  members: string[];
  admin: string | null;
  /** The signer's clock, ms. */
  at: number;
  /** Whose signature made the change (verified under their pinned key): always `by`, said explicitly. */
  signedBy: string;
}

const EVENT_OF_ACTION = { create: "created", add: "added", remove: "removed", leave: "left" } as const;

/** How a verified change is shown: the fields come from the signed statement, never the server's summary. */
export function eventOfEpoch(group: string, epoch: VerifiedEpoch): ShownEvent {
  return {
    event: EVENT_OF_ACTION[epoch.action],
    group,
    by: epoch.by,
    user: epoch.user,
    epoch: epoch.epoch,
    members: epoch.members ?? [],
    admin: epoch.admin === "" ? null : epoch.admin,
    at: epoch.at,
    signedBy: epoch.by,
  };
}

/**
 * Lets chat keep its input line intact: `before` clears the line being typed, `after` redraws it, so a
 * message that arrives mid-typing prints above the prompt instead of through it.
 */
export interface LineGuard {
  before(): void;
  after(): void;
}

/** Colours for people: off with --json, when stdout is not a terminal, or with NO_COLOR set. */
export type Colors = ReturnType<typeof pc.createColors>;

/**
 * Whether human output gets colours: a terminal, unless NO_COLOR (https://no-color.org) says otherwise;
 * FORCE_COLOR turns them on anywhere.
 */
export function wantsColors(stdout: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR && env.FORCE_COLOR !== "0") return true;
  return stdout.isTTY === true && env.TERM !== "dumb";
}

/** Sender names get one of these, always the same one for the same name, on every device. */
const NAME_COLORS = [
  "cyan",
  "green",
  "magenta",
  "blue",
  "yellow",
  "cyanBright",
  "greenBright",
  "magentaBright",
] as const;

export class Printer {
  private guard: LineGuard | null = null;
  readonly colors: Colors;

  constructor(
    readonly json: boolean,
    private readonly streams: OutputStreams = { stdout: process.stdout, stderr: process.stderr },
    colors: boolean = false,
  ) {
    this.colors = pc.createColors(colors && !json);
  }

  /** The name in its own colour: a hash of the name picks it, so it is stable across runs and devices. */
  name(username: string): string {
    const color = NAME_COLORS[sha256(new TextEncoder().encode(username))[0]! % NAME_COLORS.length]!;
    return this.colors.bold(this.colors[color](username));
  }
  /** A command's outcome: `human` for people, `data` as one JSON line with --json. */
  result(human: string, data: Record<string, unknown>): void {
    this.write("stdout", this.json ? JSON.stringify(data) : human);
  }

  /**
   * A received message; --json shows {"id","from","to","text","sentAt"} with sentAt in ISO 8601, plus
   * "group" for a group message and "file" ({"name","path","size","sha256"}) for a received file.
   */
  message(message: ShownMessage): void {
    if (this.json) {
      const { id, from, to, group, text, file, fileError } = message;
      this.write(
        "stdout",
        JSON.stringify({ id, from, to, group, text, sentAt: isoTime(message.sentAt), file, fileError }),
      );
      return;
    }
    this.write("stdout", this.formatMessage(message, this.name(message.from)));
  }

  /**
   * One history entry: messages as `message` shows them (direct ones as "from → to", since history mixes
   * both directions and conversations), events as `event` does. --json: the entry with ISO times.
   */
  historyEntry(entry: HistoryEntry): void {
    if (this.json) {
      const { sentAt, recordedAt, ...rest } = entry;
      this.write(
        "stdout",
        JSON.stringify({ ...rest, sentAt: isoTime(sentAt), recordedAt: isoTime(recordedAt) }),
      );
      return;
    }
    if (entry.kind === "event") {
      this.write("stdout", `${this.colors.dim(`[${localTime(entry.sentAt)}]`)} ${sanitize(entry.text)}`);
      return;
    }
    const who =
      entry.group === undefined ? `${this.name(entry.from)} → ${this.name(entry.to)}` : this.name(entry.from);
    const file = entry.file && { name: entry.file.name, size: entry.file.size, path: entry.file.path };
    this.write("stdout", this.formatMessage({ ...entry, ...(file ? { file } : {}) }, who));
  }

  private formatMessage(
    message: Pick<ShownMessage, "text" | "sentAt" | "group"> & {
      file?: Pick<ShownFile, "name" | "size"> & { path?: string | undefined };
    },
    who: string,
  ): string {
    // Continuation lines are indented so a multi-line message cannot pass itself off as another sender's.
    const body = sanitize(message.text).replace(/\n/g, "\n    ");
    const where = message.group === undefined ? "" : `${this.colors.bold(`#${sanitize(message.group)}`)} `;
    const lines = [body].filter((line) => line !== "" || !message.file);
    if (message.file) {
      const { file } = message;
      const saved = file.path === undefined ? "" : `, saved to ${sanitize(file.path)}`;
      lines.push(this.colors.italic(`[file ${sanitize(file.name)}, ${formatBytes(file.size)}${saved}]`));
    }
    const time = this.colors.dim(`[${localTime(message.sentAt)}]`);
    return `${time} ${where}${who}: ${lines.join("\n    ")}`;
  }

  /** A membership change: {"event","group","by","user","epoch","members","admin","signedBy"} with --json. */
  event(event: ShownEvent): void {
    if (this.json) {
      const { group, by, user, epoch, members, admin, signedBy } = event;
      this.write(
        "stdout",
        JSON.stringify({ event: event.event, group, by, user, epoch, members, admin, signedBy }),
      );
      return;
    }
    this.write("stdout", `${this.colors.dim(`[${localTime(event.at)}]`)} ${summarizeEvent(event)}`);
  }

  /** Human-only chatter (chat's "now talking to bob"); nothing with --json, where it would only be noise. */
  info(human: string): void {
    if (!this.json) this.write("stdout", human);
  }

  warn(message: string): void {
    this.write(
      "stderr",
      this.json ? JSON.stringify({ warning: message }) : this.colors.yellow(`warning: ${message}`),
    );
  }

  error(message: string, exitCode: number): void {
    this.write(
      "stderr",
      this.json ? JSON.stringify({ error: { message, exitCode } }) : this.colors.red(`telepound: ${message}`),
    );
  }

  setLineGuard(guard: LineGuard | null): void {
    this.guard = guard;
  }

  private write(stream: keyof OutputStreams, line: string): void {
    this.guard?.before();
    this.streams[stream].write(`${line}\n`);
    this.guard?.after();
  }
}

/**
 * Message text comes from other people: control characters (terminal escapes, carriage returns) and
 * bidirectional overrides could rewrite what is already on screen or disguise text, so they are replaced.
 */
export function sanitize(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    "\ufffd",
  );
}

/** A group as `group info` and the other group commands report it: --json gets the same fields. */
export function groupData(info: GroupInfo): Record<string, unknown> {
  return {
    name: info.name,
    admin: info.admin,
    epoch: info.epoch,
    members: info.members.map((member) => member.username),
    createdAt: isoTime(info.createdAt),
  };
}

export function describeGroup(info: GroupInfo): string {
  const members = info.members
    .map((member) => (member.username === info.admin ? `${member.username} (admin)` : member.username))
    .join(", ");
  return sanitize(
    `group ${info.name}: admin ${info.admin}, epoch ${info.epoch}\nmembers, oldest first: ${members}`,
  );
}

/** What happened, without the time: "group team: alice added bob (members: alice, bob)". */
export function summarizeEvent(event: Omit<ShownEvent, "at">): string {
  const what =
    event.event === "created"
      ? `${event.by} created the group`
      : event.event === "added"
        ? `${event.by} added ${event.user}`
        : event.event === "removed"
          ? `${event.by} removed ${event.user}`
          : `${event.user} left`;
  const members = event.members.join(", ") || "none";
  // A leaving admin hands over: worth saying, since the next add or remove depends on it.
  const admin = event.event === "left" && event.admin !== null ? `; admin: ${event.admin}` : "";
  return sanitize(
    `group ${event.group}: ${what} (members: ${members}${admin}) [signed by ${event.signedBy}]`,
  );
}

/**
 * Resolves once everything written to `stream` so far has been handed to the operating system (a
 * write's callback runs after the earlier ones): what "printed" means before a message is acknowledged.
 */
export function whenFlushed(stream: NodeJS.WritableStream): Promise<void> {
  // A failed write (the reader of a pipe is gone) rejects: what was not printed must not be acknowledged.
  return new Promise((done, fail) =>
    stream.write("", (error?: Error | null) => (error ? fail(error) : done())),
  );
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
