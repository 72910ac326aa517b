// telepound chat: an interactive session that stays connected. `/msg USER` or `/group G` switches
// conversation (with TEXT, sends one message), plain lines go to the current conversation, `/file PATH`
// sends a file, `/create`, `/add`, `/remove`, `/join`, `/decline`, `/leave` and `/members` manage groups,
// `/history` shows the conversation so far, `/verify USER` the safety number, `/quit` ends it. Incoming
// messages (and files, saved to the downloads folder) print above the line being typed; a dropped
// connection is reconnected with back-off.

import { basename } from "node:path";
import { createInterface, clearLine, cursorTo, type Interface } from "node:readline";
import type { Connection, UploadStatus } from "../connection.js";
import { Contacts } from "../contacts.js";
import type { Context } from "../context.js";
import { AuthError, UsageError, describeError } from "../errors.js";
import {
  type GroupChanger,
  changeMember,
  createGroup,
  declineGroup,
  joinGroup,
  leaveGroup,
} from "../group-changes.js";
import {
  type Report,
  createdReport,
  declinedReport,
  joinedReport,
  memberChangeReport,
} from "../group-reports.js";
import { GroupDirectory } from "../groups.js";
import { History } from "../history.js";
import { Receiver } from "../incoming.js";
import { type FileDescriptor, checkSendable, downloadsFolder, uploadFile } from "../files.js";
import { LiveConnection } from "../live-connection.js";
import { AWAY_AFTER_MS, NOTIFY_MODES, type NotifyMode, Notifier } from "../notify.js";
import { type Outbox, type SentMessage, groupToSealFor, sendDirect, sendToGroup } from "../outgoing.js";
import { describeGroup, formatBytes, groupData, isoTime, shown, shownLines } from "../output.js";
import { noProgress } from "../progress.js";
import { PersistedSeen } from "../seen.js";
import { type LoggedIn, loadSession } from "../session.js";
import { describeSafetyNumber, markVerified, safetyReport, safetyReportData } from "../trust.js";
import { parseGroupName, parseLimit, parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

const HELP = [
  "/msg USER           talk to USER (plain lines then go to them)",
  "/msg USER TEXT      send one message to USER",
  "/group G            talk to group G",
  "/group G TEXT       send one message to group G",
  "/create G [USER…]   create group G with you as admin, and talk to it",
  "                    (USERs who have not written to you are invited)",
  "/add USER           add USER to the current group, or invite them (admin only)",
  "/remove USER        remove USER from the current group, or withdraw their invitation",
  "/join G             accept the invitation to group G, and talk to it",
  "/decline G          decline the invitation to group G",
  "/leave              leave the current group",
  "/members            the current group's admin and members",
  "/file PATH          send a file (encrypted) to the current conversation",
  "/history [N]        the last N messages (default 20) of the current conversation",
  "/verify USER        the safety number to compare with USER",
  "/verify USER yes    mark USER verified, once USER sees the same number",
  "/help               this list",
  "/quit               leave (Ctrl-D works too)",
].join("\n");

/** Who plain lines go to. */
type Conversation = { kind: "user"; name: string } | { kind: "group"; name: string };

const HISTORY_DEFAULT = 20;

export const chat: CommandSpec = {
  name: "chat",
  summary: "interactive chat: /msg USER [TEXT], /group G [TEXT], plain lines to the current one, /quit",
  options: [
    {
      flags: "--notify <how>",
      description: `tell you of messages while you are away (no key pressed for ${AWAY_AFTER_MS / 1000} s): ${NOTIFY_MODES.join(", ")}`,
      defaultValue: "none",
    },
  ],
  examples: [
    "telepound chat  # then /msg bob or /group team, and type",
    "telepound chat --notify desktop  # a desktop notification for messages while you are away",
    "telepound chat --home ~/.telepound-bob  # a second user on the same machine",
  ],
  async run(ctx, { options }) {
    const notify = String(options.notify ?? "none") as NotifyMode;
    if (!NOTIFY_MODES.includes(notify)) {
      throw new UsageError(`--notify must be one of ${NOTIFY_MODES.join(", ")}, not "${notify}"`);
    }
    const me = await loadSession(ctx);
    const claim = await ctx.home.claimReceiver("chat");
    const history = await History.open(ctx.home, me.username);
    try {
      await new ChatSession(ctx, me, history, new Notifier(notify, ctx.io.stdout)).run();
    } finally {
      history.close();
      await claim.release();
    }
  },
};

class ChatSession {
  private readonly contacts: Contacts;
  private readonly terminal: boolean;
  private rl!: Interface;
  private live: LiveConnection | null = null;
  private receiver!: Receiver;
  private groups!: GroupDirectory;
  /** Shared by the receiver and group sends: our own group messages come back and must not show. */
  private seen!: PersistedSeen;
  private current: Conversation | null = null;
  private readonly lastStatus = new Map<string, UploadStatus>();
  /** Lines are handled one at a time, in order, even while a send waits for the server. */
  private lines: Promise<void> = Promise.resolve();
  private finished = false;
  /** Input has ended (/quit, Ctrl-D, end of piped input): no more prompts. */
  private closing = false;
  private finish: (error: unknown) => void = () => undefined;
  /** Lines typed and not yet handled (a send waiting for the connection holds up the rest, in order). */
  private readonly unhandled: string[] = [];
  /** Whether this outage's "not connected" notice was shown; once per outage is enough. */
  private offlineNoticeShown = false;

  constructor(
    private readonly ctx: Context,
    private readonly me: LoggedIn,
    private readonly history: History,
    private readonly notifier: Notifier,
  ) {
    this.contacts = new Contacts(ctx.home, me);
    const { stdin, stdout } = ctx.io;
    this.terminal = Boolean(stdin.isTTY && stdout.isTTY);
  }

  async run(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      this.finish = (error) => {
        if (this.finished) return;
        this.finished = true;
        if (error) reject(error);
        else resolve();
      };
    });
    const { printer } = this.ctx;
    this.groups = await GroupDirectory.load(this.ctx.home, this.me, this.contacts);
    this.seen = await PersistedSeen.load(this.ctx.home, this.me.username);
    this.receiver = await Receiver.create({
      home: this.ctx.home,
      me: this.me,
      contacts: this.contacts,
      printer,
      groups: this.groups,
      seen: this.seen,
      history: this.history,
      // Received files go to the downloads folder and are announced with the message; no progress bar.
      files: { outDir: downloadsFolder(this.ctx.home), progress: noProgress },
      show: (message) => {
        printer.message(message);
        if (message.from !== this.me.username) this.notifier.messageArrived(message.from, message.group);
      },
      ack: (id) => this.live?.ack(id),
      onFatal: (error) => this.finish(error),
    });
    this.live = await LiveConnection.open({
      me: this.me,
      onDelivery: (frame) => this.receiver.push(frame),
      onEvent: (event) => this.receiver.pushEvent(event),
      onServerError: (error) => printer.warn(error.message),
      onLost: (cause, retryInMs) =>
        printer.warn(`connection lost (${cause.message}); reconnecting in ${Math.ceil(retryInMs / 1000)} s…`),
      onReconnected: () => {
        this.offlineNoticeShown = false;
        printer.info("reconnected");
      },
      onFatal: (error) => this.finish(error),
    });
    // Created only now, with its handlers attached at once: readline starts reading immediately, and
    // piped input would otherwise be consumed (even closed) while the connection was still opening.
    const { stdin, stdout } = this.ctx.io;
    this.rl = createInterface({ input: stdin, output: stdout, terminal: this.terminal });
    if (this.terminal) {
      // Redraw the prompt and the half-typed line around everything printed while the user types.
      printer.setLineGuard({
        before: () => {
          clearLine(this.ctx.io.stdout as NodeJS.WriteStream, 0);
          cursorTo(this.ctx.io.stdout as NodeJS.WriteStream, 0);
        },
        after: () => this.rl.prompt(true),
      });
      stdin.on("keypress", () => this.notifier.active());
    }
    printer.info(
      shown`logged in as ${printer.name(this.me.username)}; /msg USER or /group G to start a conversation, /help for more`,
    );
    this.rl.on("line", (line) => {
      this.notifier.active();
      this.unhandled.push(line);
      this.lines = this.lines
        .then(() => this.handleLine(line.trim()))
        .finally(() => this.unhandled.shift())
        .catch((error: unknown) => this.finish(error));
    });
    this.rl.on("close", () => {
      this.closing = true;
      // Ctrl-C or Ctrl-D leave the cursor after the prompt; the shell's prompt belongs on a line of its own.
      if (this.terminal) this.ctx.io.stdout.write("\n");
      // Quitting while offline: whatever still waits for the connection is shown, not silently dropped.
      if (this.unhandled.length > 0 && !this.live?.current) {
        const unsent = shownLines(this.unhandled.map((line) => `  ${line}`));
        printer.warn(shown`not connected; these lines were not sent:\n${unsent}`);
        this.finish(null);
        return;
      }
      // Ctrl-D, end of piped input, or /quit: let queued lines finish sending first.
      void this.lines.then(() => this.finish(null));
    });
    this.rl.on("SIGINT", () => this.rl.close());
    this.prompt();
    try {
      await done;
      await this.receiver.drain();
    } finally {
      printer.setLineGuard(null);
      this.rl.close();
      await this.live.close();
    }
  }

  private async handleLine(line: string): Promise<void> {
    try {
      await this.dispatch(line);
    } catch (error) {
      // The session itself is gone: nothing typed next could work either.
      if (error instanceof AuthError) throw error;
      const { message, exitCode } = describeError(error);
      if (exitCode === 1) throw error;
      this.ctx.printer.error(message, exitCode);
    }
    this.prompt();
  }

  private async dispatch(line: string): Promise<void> {
    if (line === "") return;
    if (!line.startsWith("/")) {
      if (!this.current) throw new UsageError("no conversation yet: type /msg USER or /group G first");
      return this.send(this.current, line);
    }
    const [command = "", ...rest] = line.split(/\s+/);
    // The text after the command and its first argument, spacing kept as typed.
    const textAfterFirst = () => line.replace(/^\S+\s+\S+\s+/, "");
    switch (command) {
      case "/quit":
      case "/exit":
        this.rl.close();
        return;
      case "/help":
        this.ctx.printer.info(HELP);
        return;
      case "/msg": {
        const [raw, ...words] = rest;
        if (!raw) throw new UsageError("usage: /msg USER [TEXT]");
        const user = parseUsername(raw);
        const contact = await this.contacts.resolve(user);
        if (words.length > 0) return this.send({ kind: "user", name: user }, textAfterFirst());
        this.current = { kind: "user", name: user };
        this.ctx.printer.info(`now talking to ${user} (key fingerprint ${contact.fingerprint})`);
        return;
      }
      case "/group": {
        const [raw, ...words] = rest;
        if (!raw) throw new UsageError("usage: /group G [TEXT]");
        const name = parseGroupName(raw);
        if (words.length > 0) return this.send({ kind: "group", name }, textAfterFirst());
        // Asked now, so a group that does not exist or is not ours fails here, not at the first line.
        const { info } = await this.groups.catchUp(name);
        this.current = { kind: "group", name };
        this.ctx.printer.info(`now talking to the ${describeGroup(info)}`);
        return;
      }
      case "/create": {
        const [raw, ...users] = rest;
        if (!raw) throw new UsageError("usage: /create G [USER…]");
        const name = parseGroupName(raw);
        const members = [...new Set(users.map(parseUsername))].filter((user) => user !== this.me.username);
        const created = await createGroup(this.changer(), name, members);
        this.current = { kind: "group", name };
        this.report(createdReport(created));
        return;
      }
      case "/join":
      case "/decline": {
        const [raw] = rest;
        if (!raw || rest.length !== 1) throw new UsageError(`usage: ${command} G`);
        const name = parseGroupName(raw);
        if (command === "/decline") {
          await declineGroup(this.changer(), name);
          this.report(declinedReport(name));
          return;
        }
        const info = await joinGroup(this.changer(), name);
        this.current = { kind: "group", name };
        this.report(joinedReport(info));
        return;
      }
      case "/add":
      case "/remove": {
        const [raw] = rest;
        if (!raw || rest.length !== 1) throw new UsageError(`usage: ${command} USER`);
        const user = parseUsername(raw);
        const group = this.currentGroup(command);
        const change = await changeMember(this.changer(), group, command === "/add" ? "add" : "remove", user);
        this.report(memberChangeReport(change, user));
        return;
      }
      case "/leave": {
        const group = this.currentGroup(command);
        await leaveGroup(this.changer(), group);
        this.current = null;
        this.ctx.printer.result(`you left the group ${group}`, { group, left: true });
        return;
      }
      case "/members": {
        const { info } = await this.groups.catchUp(this.currentGroup(command));
        this.ctx.printer.result(describeGroup(info), groupData(info));
        return;
      }
      case "/verify": {
        const [raw, answer] = rest;
        if (!raw || rest.length > 2 || (answer !== undefined && answer !== "yes"))
          throw new UsageError("usage: /verify USER, then /verify USER yes once the numbers match");
        const user = parseUsername(raw);
        const report = await safetyReport(this.contacts, this.me, user);
        const { printer } = this.ctx;
        if (answer === "yes" && !report.keyChange) await markVerified(this.contacts, report);
        const lines = describeSafetyNumber(report);
        if (!report.keyChange && report.verifiedAt === null)
          lines.push(`once ${user} sees the same number, type /verify ${user} yes`);
        printer.result(lines.join("\n"), safetyReportData(report));
        // Refused, not silently ignored: the number covers keys not accepted yet.
        if (answer === "yes" && report.keyChange) await markVerified(this.contacts, report);
        return;
      }
      case "/history": {
        const [raw] = rest;
        const limit = raw === undefined ? HISTORY_DEFAULT : parseLimit(raw, "/history N");
        if (!this.current) throw new UsageError("no conversation yet: type /msg USER or /group G first");
        const query =
          this.current.kind === "user" ? { user: this.current.name } : { group: this.current.name };
        const entries = this.history.list({ ...query, limit });
        if (entries.length === 0) this.ctx.printer.info("(no history yet)");
        for (const entry of entries) this.ctx.printer.historyEntry(entry);
        return;
      }
      case "/file": {
        // The rest of the line is the path, spaces and all.
        const path = line.replace(/^\/file\s*/, "");
        if (!path) throw new UsageError("usage: /file PATH");
        if (!this.current) throw new UsageError("no conversation yet: type /msg USER or /group G first");
        return this.sendFile(this.current, path);
      }
      default:
        throw new UsageError(`unknown command ${command}: /help lists them`);
    }
  }

  private report({ human, data }: Report): void {
    this.ctx.printer.result(human, data);
  }

  /** What signing a membership change needs (group-changes.ts). */
  private changer(): GroupChanger {
    return { me: this.me, groups: this.groups, printer: this.ctx.printer };
  }

  private currentGroup(command: string): string {
    if (this.current?.kind !== "group")
      throw new UsageError(`${command} acts on the current group: /group G first`);
    return this.current.name;
  }

  /**
   * Encrypts and uploads the file for the conversation's recipients, then sends the message that carries
   * its key. No progress bar here: it would fight readline for the terminal line.
   */
  private async sendFile(to: Conversation, path: string): Promise<void> {
    const file = await checkSendable(path);
    const audience = to.kind === "user" ? { to: to.name } : { group: to.name };
    if (to.kind === "user") await this.contacts.resolve(to.name);
    else await groupToSealFor({ me: this.me, printer: this.ctx.printer, groups: this.groups }, to.name);
    this.ctx.printer.info(`sending ${basename(file.path)} (${formatBytes(file.size)})…`);
    const uploaded = await uploadFile(this.me.api, file, audience);
    try {
      await this.send(to, "", uploaded.descriptor);
    } catch (error) {
      await this.me.api.deleteBlob(uploaded.descriptor.blob).catch(() => undefined);
      throw error;
    }
    this.ctx.printer.info(`sent ${uploaded.descriptor.name}`);
  }

  private async send(to: Conversation, text: string, attachment?: FileDescriptor): Promise<void> {
    const payload = { text, ...(attachment ? { attachment } : {}) };
    const connection = this.live!.current ?? (await this.waitForConnection());
    const outbox: Outbox = {
      history: this.history,
      home: this.ctx.home,
      me: this.me,
      contacts: this.contacts,
      connection,
      printer: this.ctx.printer,
      groups: this.groups,
      seen: this.seen,
    };
    const sent =
      to.kind === "user"
        ? await sendDirect(outbox, to.name, payload)
        : await sendToGroup(outbox, to.name, payload);
    this.reportSent(to, sent);
  }

  private reportSent(to: Conversation, sent: SentMessage): void {
    const data = {
      id: sent.id,
      to: sent.to,
      ...(sent.group === undefined ? {} : { group: sent.group }),
      status: sent.status,
      sentAt: isoTime(sent.sentAt),
    };
    // Delivered is the normal case and needs no line; stored is worth knowing, once, not per message.
    const key = `${to.kind}:${to.name}`;
    const previous = this.lastStatus.get(key);
    this.lastStatus.set(key, sent.status);
    if (this.ctx.printer.json) this.ctx.printer.result("", data);
    else if (sent.status === "stored" && previous !== "stored") {
      const who = to.kind === "user" ? `${to.name} is not` : `no other member of ${to.name} is`;
      this.ctx.printer.info(`(${who} connected; the message is stored for them)`);
    }
  }

  /**
   * Offline, a typed message waits for the connection to come back rather than failing: lines are
   * handled in order, so everything typed meanwhile queues behind it and goes out in order.
   */
  private async waitForConnection(): Promise<Connection> {
    if (!this.offlineNoticeShown) {
      this.offlineNoticeShown = true;
      this.ctx.printer.info("(not connected: what you type is sent once the connection is back)");
    }
    return this.live!.whenConnected();
  }

  private prompt(): void {
    if (!this.terminal || this.finished || this.closing) return;
    const { printer } = this.ctx;
    const prompt = !this.current
      ? ""
      : this.current.kind === "group"
        ? printer.groupName(this.current.name)
        : printer.name(this.current.name);
    this.rl.setPrompt(`${prompt}> `);
    this.rl.prompt();
  }
}
