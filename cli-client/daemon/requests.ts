// Runs a CLI command inside the daemon, on the daemon's client: what a method call and a forwarded
// `telepound …` both come down to. The command table is the CLI's own, with `inbox` and `listen` reading
// the daemon's feed (the daemon is the home's one receiver) and the commands that change the session or
// need a terminal refused. Calls that use the client run one at a time, in the order they came.

import { Readable, Writable } from "node:stream";
import { UsageError } from "../../client/errors.js";
import type { TelepoundClient } from "../../client/telepound-client.js";
import { type ContextHost, runCli } from "../cli.js";
import { COMMANDS } from "../commands/index.js";
import type { CommandInput, CommandSpec } from "../commands/command.js";
import { inbox } from "../commands/inbox.js";
import { listen } from "../commands/listen.js";
import { parseSeconds } from "../commands/args.js";
import { type CliIo, type Context, normalizeServer } from "../context.js";
import { Printer, historyData } from "../output.js";
import { passwordSource } from "../password.js";
import type { HistoryEntry } from "../../client/store/history.js";
import type { ShownEvent, ShownMessage } from "../../client/events.js";
import type { Feed, FeedEntry } from "./feed.js";

/** Commands that do not go through a daemon: they change the session it uses, or need a terminal. */
export const NOT_THROUGH_DAEMON = new Set(["signup", "login", "logout", "chat", "daemon"]);

export interface DaemonState {
  client: TelepoundClient;
  feed: Feed;
}

/** One run of a command: where its output goes and what ends it early (the caller went away). */
export interface CommandRun {
  argv: readonly string[];
  printer: (json: boolean, io: CliIo) => Printer;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** The text a `send -` reads as its standard input. */
  stdin?: string;
  /** The server the caller named (--server or $TELEPOUND_SERVER): it must be the daemon's. */
  server?: string;
  signal: AbortSignal;
}

export class CommandRunner {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly state: DaemonState) {}

  /** Runs the command to its end and returns its exit code; its output went to `run.stdout`/`stderr`. */
  async run(run: CommandRun): Promise<number> {
    const io: CliIo = {
      stdin: Readable.from(run.stdin === undefined ? [] : [Buffer.from(run.stdin)]),
      stdout: sink(run.stdout),
      stderr: sink(run.stderr),
      env: {},
    };
    const { client } = this.state;
    const host: ContextHost = {
      create: async (options) => {
        const chosen = run.server;
        if (chosen !== undefined && normalizeServer(chosen) !== client.server) {
          throw new UsageError(`the daemon for this home uses ${client.server}, not ${chosen}`);
        }
        return {
          printer: run.printer(options.json === true, io),
          client,
          home: client.home,
          server: client.server,
          serverChosen: true,
          passwords: passwordSource(io),
          io,
        };
      },
      // The client is the daemon's, and stays open.
      release: async () => undefined,
    };
    return runCli(run.argv, io, this.commands(run.signal), host);
  }

  private commands(signal: AbortSignal): CommandSpec[] {
    return COMMANDS.map((spec): CommandSpec => {
      if (NOT_THROUGH_DAEMON.has(spec.name)) {
        return {
          ...spec,
          run: async () => {
            throw new UsageError(`"telepound ${spec.name}" does not go through the daemon`);
          },
        };
      }
      if (spec.name === inbox.name) return { ...spec, run: (ctx, input) => this.inbox(ctx, input, signal) };
      if (spec.name === listen.name) return { ...spec, run: (ctx) => this.listen(ctx, signal) };
      return {
        ...spec,
        run: (ctx, input) => this.exclusive(() => this.withEvents(ctx, () => spec.run(ctx, input))),
      };
    });
  }

  /** One call on the client at a time: a group change or a send never races another. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const turn = this.queue.then(work);
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  /** While a command runs, what the core reports is shown to its caller, as the CLI would show it. */
  private async withEvents(ctx: Context, work: () => Promise<void>): Promise<void> {
    const { events } = ctx.client;
    const off = [
      events.on("groupEvent", (event) => ctx.printer.event(event)),
      events.on("warning", ({ message }) => ctx.printer.warn(message)),
      events.on("keyChange", ({ message }) => ctx.printer.warn(message)),
    ];
    try {
      await work();
    } finally {
      for (const unsubscribe of off) unsubscribe();
    }
  }

  /** What came since the previous `inbox` through the daemon, then what comes within --wait seconds. */
  private async inbox(ctx: Context, { options }: CommandInput, signal: AbortSignal): Promise<void> {
    if (typeof options.out === "string") {
      throw new UsageError(
        `inbox --out does not go through the daemon: it saves files in ${ctx.client.home.downloads} (or its own --out)`,
      );
    }
    const waitSeconds = parseSeconds(String(options.wait ?? "0"), "--wait");
    const { feed } = this.state;
    const { entries, dropped } = feed.since(feed.inboxCursor);
    if (dropped > 0) {
      ctx.printer.warn(
        `${dropped} older message(s) and event(s) are only in the history (see "telepound history")`,
      );
    }
    let shown = 0;
    const show = (entry: FeedEntry) => {
      printItem(ctx.printer, entry);
      feed.inboxCursor = Math.max(feed.inboxCursor, entry.seq);
      if (entry.item.kind !== "warning") shown += 1;
    };
    entries.forEach(show);
    if (waitSeconds > 0) {
      const deadline = AbortSignal.any([signal, AbortSignal.timeout(waitSeconds * 1000)]);
      while (!deadline.aborted) {
        await feed.whenPushed(deadline);
        feed.since(feed.inboxCursor).entries.forEach(show);
      }
    }
    if (shown === 0) ctx.printer.info("no new messages");
  }

  /** Everything the daemon receives from now on, until the caller goes away. */
  private async listen(ctx: Context, signal: AbortSignal): Promise<void> {
    const { feed } = this.state;
    let cursor = feed.next - 1;
    while (!signal.aborted) {
      await feed.whenPushed(signal);
      for (const entry of feed.since(cursor).entries) {
        printItem(ctx.printer, entry);
        cursor = entry.seq;
      }
    }
  }
}

function printItem(printer: Printer, { item }: FeedEntry): void {
  if (item.kind === "message") printer.message(item.message);
  else if (item.kind === "event") printer.event(item.event);
  else printer.warn(item.warning.message);
}

/** A stream that hands every write to `write` as text. */
function sink(write: (text: string) => void): Writable {
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      write(typeof chunk === "string" ? chunk : chunk.toString("utf8"));
      done();
    },
  });
}

/**
 * The printer of a method call: it keeps what the command reports (`result`, history entries) and its
 * failure instead of printing them. Messages and events are left out: every client gets those as
 * notifications anyway.
 */
export class RecordingPrinter extends Printer {
  readonly results: Record<string, unknown>[] = [];
  readonly warnings: string[] = [];
  failure: { exitCode: number; message: string } | null = null;

  constructor() {
    super(true, { stdout: { write: () => undefined }, stderr: { write: () => undefined } });
  }

  override result(_human: unknown, data: Record<string, unknown>): void {
    this.results.push(data);
  }

  override historyEntry(entry: HistoryEntry): void {
    this.results.push(historyData(entry));
  }

  override message(_message: ShownMessage): void {}

  override event(_event: ShownEvent): void {}

  override info(): void {}

  override warn(message: unknown): void {
    this.warnings.push(String(message));
  }

  override error(message: string, exitCode: number): void {
    this.failure = { exitCode, message };
  }
}
