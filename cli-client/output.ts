// The one printer every command writes through: human lines, or with --json one JSON object per line on
// stdout; warnings and errors always go to stderr so stdout stays parseable.

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
  to: string;
  text: string;
  /** The sender's clock, milliseconds since the Unix epoch. */
  sentAt: number;
}

/**
 * Lets chat keep its input line intact: `before` clears the line being typed, `after` redraws it, so a
 * message that arrives mid-typing prints above the prompt instead of through it.
 */
export interface LineGuard {
  before(): void;
  after(): void;
}

export class Printer {
  private guard: LineGuard | null = null;

  constructor(
    readonly json: boolean,
    private readonly streams: OutputStreams = { stdout: process.stdout, stderr: process.stderr },
  ) {}

  /** A command's outcome: `human` for people, `data` as one JSON line with --json. */
  result(human: string, data: Record<string, unknown>): void {
    this.write("stdout", this.json ? JSON.stringify(data) : human);
  }

  /** A received message; --json shows exactly {"id","from","to","text","sentAt"} with sentAt in ISO 8601. */
  message(message: ShownMessage): void {
    if (this.json) {
      const { id, from, to, text } = message;
      this.write("stdout", JSON.stringify({ id, from, to, text, sentAt: isoTime(message.sentAt) }));
      return;
    }
    // Continuation lines are indented so a multi-line message cannot pass itself off as another sender's.
    const body = sanitize(message.text).replace(/\n/g, "\n    ");
    this.write("stdout", `[${localTime(message.sentAt)}] ${message.from}: ${body}`);
  }

  /** Human-only chatter (chat's "now talking to bob"); nothing with --json, where it would only be noise. */
  info(human: string): void {
    if (!this.json) this.write("stdout", human);
  }

  warn(message: string): void {
    this.write("stderr", this.json ? JSON.stringify({ warning: message }) : `warning: ${message}`);
  }

  error(message: string, exitCode: number): void {
    this.write(
      "stderr",
      this.json ? JSON.stringify({ error: { message, exitCode } }) : `telepound: ${message}`,
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
