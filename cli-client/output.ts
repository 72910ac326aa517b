// The one printer every command writes through: human lines, or with --json one JSON object per line on
// stdout; warnings and errors always go to stderr so stdout stays parseable.

import pc from "picocolors";
import type { GroupEventKind } from "../protocol/frames.js";
import type { GroupInfo, GroupInvitation } from "../protocol/http.js";
import { sha256 } from "../protocol/bytes.js";
import type { ClientEmitter, ShownEvent, ShownFile, ShownMessage } from "../client/events.js";
import {
  answerHint,
  formatBytes,
  isoTime,
  localTime,
  namesLine,
  sanitize,
  sanitizeLine,
  summarizeEvent,
} from "../client/describe.js";
import type { HistoryEntry } from "../client/store/history.js";

export { type ShownEvent, type ShownFile, type ShownMessage, eventOfEpoch } from "../client/events.js";
export {
  answerHint,
  formatBytes,
  isoTime,
  localTime,
  namesLine,
  sanitize,
  sanitizeLine,
  summarizeEvent,
} from "../client/describe.js";

/** Anything with a string `write`: process streams in use, plain collectors in tests. */
export interface TextSink {
  write(text: string): unknown;
}

export interface OutputStreams {
  stdout: TextSink;
  stderr: TextSink;
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
 * Human text the printer may write as it is: every untrusted piece in it was sanitised and the only
 * escapes in it are the printer's own colours. Made only by `shown` and the printer's colour methods.
 */
export class Shown {
  /** `token` is this module's own: no other module can wrap a raw string by mistake. */
  constructor(
    token: typeof SHOWN_TOKEN,
    readonly text: string,
  ) {
    if (token !== SHOWN_TOKEN) throw new TypeError("Shown is made by shown`…` and the Printer only");
  }
  toString(): string {
    return this.text;
  }
}

const SHOWN_TOKEN: unique symbol = Symbol("Shown");

function trusted(text: string): Shown {
  return new Shown(SHOWN_TOKEN, text);
}

/** What human-output methods take: a plain string is untrusted as a whole and sanitised; a Shown is kept. */
export type HumanText = string | Shown;

/**
 * A template for human lines that mix colours with untrusted fields: the literal parts are the program's
 * own, every interpolated value that is not already Shown is sanitised as one line (so a name from the
 * server cannot start a line that poses as the CLI's own).
 */
export function shown(literals: TemplateStringsArray, ...values: unknown[]): Shown {
  let text = literals[0] ?? "";
  values.forEach((value, index) => {
    text += value instanceof Shown ? value.text : sanitizeLine(String(value));
    text += literals[index + 1] ?? "";
  });
  return trusted(text);
}

/** Several lines of human text, each sanitised as one line: the line breaks are the program's own. */
export function shownLines(lines: readonly string[]): Shown {
  return trusted(lines.map(sanitizeLine).join("\n"));
}

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
  /** A mark put before a message's line (chat's unread count for another conversation), or none. */
  private tag: ((message: ShownMessage) => Shown | null) | null = null;
  /** While holding: messages and changes kept back, with their times, to be shown in time order. */
  private held: Array<{ at: number; line: string }> | null = null;
  /** Private: a colour applied to a raw string would bypass sanitising; name() and groupName() are safe. */
  private readonly colors: Colors;

  constructor(
    readonly json: boolean,
    private readonly streams: OutputStreams = { stdout: process.stdout, stderr: process.stderr },
    colors: boolean = false,
  ) {
    this.colors = pc.createColors(colors && !json);
  }

  /** The name in its own colour: a hash of the name picks it, so it is stable across runs and devices. */
  name(username: string): Shown {
    const color = NAME_COLORS[sha256(new TextEncoder().encode(username))[0]! % NAME_COLORS.length]!;
    return trusted(this.colors.bold(this.colors[color](sanitizeLine(username))));
  }

  /** A group's name as chat's prompt and message lines show it: "#team", bold. */
  groupName(group: string): Shown {
    return trusted(this.colors.bold(`#${sanitizeLine(group)}`));
  }

  /** A command's outcome: `human` for people, `data` as one JSON line with --json. */
  result(human: HumanText, data: Record<string, unknown>): void {
    this.write("stdout", this.json ? jsonLine(data) : humanText(human));
  }

  /**
   * A received message; --json shows {"id","from","to","text","sentAt"} with sentAt in ISO 8601, plus
   * "group" for a group message, "direction": "out" for one this user sent from another device, "file"
   * ({"name","path","size","sha256"}) for a received file, and "outOfOrder": true or "missedBefore": N
   * when its sender's sequence says so. People see a direct message sent from another device as
   * "you → bob".
   */
  message(message: ShownMessage): void {
    if (this.json) {
      this.write("stdout", jsonLine(messageData(message)));
      return;
    }
    const who =
      message.direction === "out" && message.group === undefined
        ? shown`${trusted(this.colors.bold("you"))} → ${this.name(message.to)}`
        : this.name(message.from);
    const tag = this.tag?.(message);
    const line = this.formatMessage(message, who);
    this.show(message.sentAt, tag ? `${this.colors.inverse(tag.text)} ${line}` : line);
  }

  /**
   * One history entry: messages as `message` shows them (direct ones as "from → to", since history mixes
   * both directions and conversations), events as `event` does. --json: the entry with ISO times.
   */
  historyEntry(entry: HistoryEntry): void {
    if (this.json) {
      this.write("stdout", jsonLine(historyData(entry)));
      return;
    }
    if (entry.kind === "event") {
      this.write("stdout", `${this.colors.dim(`[${localTime(entry.sentAt)}]`)} ${sanitize(entry.text)}`);
      return;
    }
    const who =
      entry.group === undefined
        ? shown`${this.name(entry.from)} → ${this.name(entry.to)}`
        : this.name(entry.from);
    const file = entry.file && { name: entry.file.name, size: entry.file.size, path: entry.file.path };
    this.write("stdout", this.formatMessage({ ...entry, ...(file ? { file } : {}) }, who));
  }

  private formatMessage(
    message: Pick<ShownMessage, "text" | "sentAt" | "group" | "outOfOrder"> & {
      file?: Pick<ShownFile, "name" | "size"> & { path?: string | undefined };
    },
    who: Shown,
  ): string {
    // Continuation lines are indented so a multi-line message cannot pass itself off as another sender's.
    const body = sanitize(message.text).replace(/\n/g, "\n    ");
    const where = message.group === undefined ? "" : `${this.groupName(message.group).text} `;
    const lines = [body].filter((line) => line !== "" || !message.file);
    if (message.file) {
      const { file } = message;
      const saved = file.path === undefined ? "" : `, saved to ${sanitizeLine(file.path)}`;
      lines.push(this.colors.italic(`[file ${sanitizeLine(file.name)}, ${formatBytes(file.size)}${saved}]`));
    }
    const time = this.colors.dim(`[${localTime(message.sentAt)}]`);
    const late = message.outOfOrder ? `${this.colors.yellow("(arrived out of order)")} ` : "";
    return `${time} ${late}${where}${who.text}: ${lines.join("\n    ")}`;
  }

  /**
   * A membership change: {"event","group","by","user","epoch","members","invited","admin","signedBy"}
   * with --json.
   */
  event(event: ShownEvent): void {
    if (this.json) {
      this.write("stdout", jsonLine(eventData(event)));
      return;
    }
    this.show(event.at, `${this.colors.dim(`[${localTime(event.at)}]`)} ${summarizeEvent(event)}`);
  }

  /** A message or change, now, or kept back while holding. */
  private show(at: number, line: string): void {
    if (this.held) this.held.push({ at, line });
    else this.write("stdout", line);
  }

  /**
   * Keeps messages and changes back until `release`: a backlog arrives in the order the server queued
   * it (a group change can come before an earlier message), and is shown in the order it happened.
   */
  hold(): void {
    this.held ??= [];
  }

  /** Shows what was held, oldest first (ties in arrival order), and stops holding. */
  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const { line } of held.sort((a, b) => a.at - b.at)) this.write("stdout", line);
  }

  setMessageTag(tag: ((message: ShownMessage) => Shown | null) | null): void {
    this.tag = tag;
  }

  /** Human-only chatter (chat's "now talking to bob"); nothing with --json, where it would only be noise. */
  info(human: HumanText): void {
    if (!this.json) this.write("stdout", humanText(human));
  }

  /**
   * A warning: one line, as server words (a stray error frame) often make it up; a warning that means to
   * span lines says so with `shownLines`.
   */
  warn(message: HumanText): void {
    const text = message instanceof Shown ? message.text : sanitizeLine(message);
    this.write(
      "stderr",
      this.json ? jsonLine({ warning: String(message) }) : this.colors.yellow(`warning: ${text}`),
    );
  }

  /**
   * The one line a failure gets. Its message often carries the server's own words (an HTTP error body,
   * a WebSocket error frame), so it is always sanitised, and kept to one line.
   */
  error(message: string, exitCode: number): void {
    this.write(
      "stderr",
      this.json
        ? jsonLine({ error: { message, exitCode } })
        : this.colors.red(`telepound: ${sanitizeLine(message)}`),
    );
  }

  setLineGuard(guard: LineGuard | null): void {
    this.guard = guard;
  }

  /** Writes a finished line: callers have sanitised (human) or escaped (JSON) everything in it. */
  private write(stream: keyof OutputStreams, line: string): void {
    this.guard?.before();
    this.streams[stream].write(`${line}\n`);
    this.guard?.after();
  }
}

/**
 * What the core reports, printed: messages and group changes on stdout, warnings and key changes on
 * stderr. Every command's client is shown through this one subscription.
 */
export function showEvents(printer: Printer, events: ClientEmitter): void {
  events.on("message", (message) => printer.message(message));
  events.on("groupEvent", (event) => printer.event(event));
  events.on("warning", ({ message }) => printer.warn(message));
  events.on("keyChange", ({ message }) => printer.warn(message));
}

/** A received message's --json fields (the daemon's `message` notification has the same). */
export function messageData(message: ShownMessage): Record<string, unknown> {
  const { id, from, to, group, direction, text, file, fileError, outOfOrder, missedBefore } = message;
  const sentAt = isoTime(message.sentAt);
  return { id, from, to, group, direction, text, sentAt, file, fileError, outOfOrder, missedBefore };
}

/** A group change's --json fields (the daemon's `event` notification has the same). */
export function eventData(event: ShownEvent): Record<string, unknown> {
  const { group, by, user, epoch, members, invited, admin, signedBy } = event;
  return { event: event.event, group, by, user, epoch, members, invited, admin, signedBy };
}

/** A history entry's --json fields: the entry with ISO times. */
export function historyData(entry: HistoryEntry): Record<string, unknown> {
  const { sentAt, recordedAt, ...rest } = entry;
  return { ...rest, sentAt: isoTime(sentAt), recordedAt: isoTime(recordedAt) };
}

/** Human text for the terminal: a Shown is already safe, anything else is sanitised as a whole. */
function humanText(text: HumanText): string {
  return text instanceof Shown ? text.text : sanitize(text);
}

/**
 * One JSON line whose consumer's terminal is safe too: JSON.stringify escapes C0 but leaves DEL, the C1
 * controls, the bidi marks and U+2028/U+2029 raw; they are written as \uXXXX escapes, which parse back to
 * the same string. Outside strings JSON has none of these characters, so escaping the whole text is safe.
 */
export function jsonLine(data: unknown): string {
  return JSON.stringify(data).replace(
    // eslint-disable-next-line no-control-regex
    /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** A group as `group info` and the other group commands report it: --json gets the same fields. */
export function groupData(info: GroupInfo): Record<string, unknown> {
  return {
    name: info.name,
    admin: info.admin,
    epoch: info.epoch,
    members: info.members.map((member) => member.username),
    invited: info.invited,
    createdAt: isoTime(info.createdAt),
  };
}

/**
 * "group team: admin alice, epoch 2", the members on a second line and, if any, the invited on a third;
 * every name sanitised as one line.
 */
export function describeGroup(info: GroupInfo): string {
  const members = info.members
    .map(({ username }) => sanitizeLine(username === info.admin ? `${username} (admin)` : username))
    .join(", ");
  const invited = info.invited.length > 0 ? `\ninvited, not yet members: ${namesLine(info.invited)}` : "";
  return `group ${sanitizeLine(info.name)}: admin ${sanitizeLine(info.admin)}, epoch ${info.epoch}\nmembers, oldest first: ${members}${invited}`;
}

/**
 * One pending invitation as `group list` shows it: "team: invited by alice at 2026-01-02 10:00:00
 * (`telepound group join team` or `telepound group decline team`)". The server's word (the join checks it).
 */
export function describeInvitation(invitation: GroupInvitation): string {
  const { group, by, at } = invitation;
  return `${sanitizeLine(group)}: invited by ${sanitizeLine(by)} at ${localTime(at)} (${answerHint(group)})`;
}

/** The JSON of one pending invitation: {"group","by","at"} with `at` in ISO 8601. */
export function invitationData(invitation: GroupInvitation): Record<string, unknown> {
  return { group: invitation.group, by: invitation.by, at: isoTime(invitation.at) };
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

/** A session's device name as `devices` and `login` show it: quoted, or "no device name". */
export function describeDevice(deviceName: string | null): string {
  return deviceName === null ? "no device name" : `"${deviceName}"`;
}
