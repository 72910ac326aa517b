// The chat session behind `telepound chat` (commands/chat.ts): the conversation view, the outbox and
// the prompt over one TelepoundClient. Loaded only when chat starts, so other commands do not pay for
// readline, the screen's width tables and the rest of it.
//
// What it does: an interactive session that stays connected, and works offline. `/msg USER` or
// `/group G` opens a conversation (its last messages shown from the history, a line marking what is new
// since last time; with TEXT, sends one message), plain lines go to the current conversation, `/reply`
// goes to whoever wrote last, `/list` shows every conversation with its unread count, `/file PATH` sends
// a file (its progress in the prompt), `/create`, `/add`, `/remove`, `/join`, `/decline`, `/leave` and
// `/members` manage groups, `/history` shows more of the conversation, `/verify USER` the safety number,
// `/quit` ends it. Tab completes commands, users and groups.
//
// Messages go out through an outbox, one at a time and in the order typed; while the server is out of
// reach they wait there and go out once it is back. Slash commands never wait behind them. The prompt
// says when the connection is down and when the next try is; any key (or /reconnect) tries at once.
// Messages received for another conversation are marked with its unread count.

import { type Interface, createInterface } from "node:readline";
import type { UploadStatus } from "../../client/net/connection.js";
import { AuthError, NetworkError, UsageError, describeError } from "../../client/errors.js";
import type { ConnectionState, Progress } from "../../client/events.js";
import type { QueuedSend, SendQueue } from "../../client/send-queue.js";
import type { Sent, Reception, TelepoundClient } from "../../client/telepound-client.js";
import type { Context } from "../context.js";
import {
  type Report,
  createdReport,
  declinedReport,
  joinedReport,
  memberChangeReport,
} from "../group-reports.js";
import type { Notifier } from "../notify.js";
import { describeGroup, formatBytes, groupData, isoTime, shown, shownLines } from "../output.js";
import { describeSafetyNumber, safetyReportData } from "../../client/trust.js";
import { parseGroupName, parseLimit, parseUsername } from "../commands/args.js";
import { complete } from "./completion.js";
import {
  type Conversation,
  Conversations,
  conversationKey,
  conversationOf,
  sameConversation,
} from "./conversations.js";
import { ReadMarks } from "./read-marks.js";
import { clearTypedLine } from "./screen.js";

const HELP = [
  "/msg USER           talk to USER: shows the last messages (plain lines then go to them)",
  "/msg USER TEXT      send one message to USER",
  "/group G            talk to group G",
  "/group G TEXT       send one message to group G",
  "/reply [TEXT]       talk to (or send TEXT to) the conversation of the last message received",
  "/list               every conversation: unread messages and last activity",
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
  "/reconnect          try to reach the server now (any key does too)",
  "/help               this list",
  "/quit               leave (Ctrl-D works too)",
  "Tab completes commands, users and groups. While the server is out of reach, messages wait in",
  "the outbox and go out in order once it is back.",
].join("\n");

const HISTORY_DEFAULT = 20;
/** Messages shown when a conversation opens; more when more are unread, up to the second number. */
const OPEN_SHOWS = 10;
const OPEN_SHOWS_MAX = 50;
/** How much of the history chat reads at the start to count unread messages and know conversations. */
const SCAN_LIMIT = 5000;
/** A held-back backlog is shown after this long even if the server never says it has all come. */
const BACKLOG_WAIT_MS = 3000;

/** A message waiting in the outbox: where it goes, decided when it was typed. */
interface Outgoing {
  to: Conversation;
  text: string;
  file?: string;
  /** As typed, for the list of what was not sent. */
  line: string;
  /** Its copy in the home's send queue, once written (null if it could not be). */
  kept: Promise<QueuedSend | null>;
}

/** Where the connection is, as the prompt shows it. */
type Link = { state: "online" } | { state: "connecting" } | { state: "offline"; retryAt: number };

export class ChatSession {
  private readonly client: TelepoundClient;
  private readonly terminal: boolean;
  private rl!: Interface;
  private reception!: Reception;
  private current: Conversation | null = null;
  private readonly marks: ReadMarks;
  private readonly conversations: Conversations;
  private readonly lastStatus = new Map<string, UploadStatus>();
  /** Messages typed and not yet sent, oldest first; the first one is being sent. */
  private readonly outbox: Outgoing[] = [];
  /** The outbox as the home keeps it, so that what was not sent when chat ended goes out next time. */
  private queue!: SendQueue;
  /** Writes to the queue still under way: chat does not end before they are done. */
  private keeping: Promise<unknown> = Promise.resolve();
  private sending: Promise<void> = Promise.resolve();
  /** The lines typed, handled in order (sends only join the outbox, so none of them waits for one). */
  private lines: Promise<void> = Promise.resolve();
  private link: Link = { state: "connecting" };
  /** A file on its way: "name 42%", in the prompt. */
  private transfer: string | null = null;
  private transferShownAt = 0;
  /** Users and groups for completion, beyond those of the history: contacts and the server's group list. */
  private readonly knownUsers = new Set<string>();
  private readonly knownGroups = new Set<string>();
  private finished = false;
  /** Input has ended (/quit, Ctrl-D, end of piped input): no more prompts. */
  private closing = false;
  private finish: (error: unknown) => void = () => undefined;
  /** Whether this outage's "not connected" notice was shown; once per outage is enough. */
  private offlineNoticeShown = false;

  constructor(
    private readonly ctx: Context,
    private readonly me: string,
    private readonly notifier: Notifier,
  ) {
    this.client = ctx.client;
    const { stdin, stdout } = ctx.io;
    this.terminal = Boolean(stdin.isTTY && stdout.isTTY);
    this.marks = ReadMarks.load(ctx.home.location);
    this.conversations = new Conversations(me, this.marks);
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
    const { events } = this.client;
    // The history is on this device: it is read before (and whether or not) the server answers.
    this.conversations.load(await this.client.history({ limit: SCAN_LIMIT }));
    this.queue = await this.client.sendQueue();
    const leftOver = await this.queue.list();
    await this.loadContacts();
    events.on("message", (message) => {
      if (message.from !== this.me) this.notifier.messageArrived(message.from, message.group);
      this.conversations.received(message, this.current);
      this.refreshPrompt();
    });
    // The printer formats a message before the listener above counts it (it subscribed first, when the
    // context was made): the mark counts this message too.
    printer.setMessageTag((message) => {
      const conversation = conversationOf(message, this.me);
      if (message.from === this.me || sameConversation(conversation, this.current)) return null;
      return shown`[${this.conversations.unread(conversation) + 1} unread]`;
    });
    events.on("connection", (change) => this.connectionChanged(change));
    events.on("progress", (progress) => this.progressed(progress));
    // A backlog comes in the server's queue order; it is shown in the order it happened.
    printer.hold();
    // Received files go to the downloads folder and are announced with the message.
    this.reception = await this.client.receive({ command: "chat", mode: "live", startOffline: true });
    this.reception.ended.catch((error: unknown) => this.finish(error));
    // Once the backlog is in, what waits unread (in the history and in the backlog) is summed up.
    this.releaseBacklog(this.reception.synced, () => this.showUnread());
    // Created only now, with its handlers attached at once: readline starts reading immediately, and
    // piped input would otherwise be consumed (even closed) while the connection was still opening.
    const { stdin, stdout } = this.ctx.io;
    this.rl = createInterface({
      input: stdin,
      output: stdout,
      terminal: this.terminal,
      completer: (line: string) =>
        complete(line, {
          users: () => [...new Set([...this.knownUsers, ...this.conversations.names("user")])],
          groups: () => [...new Set([...this.knownGroups, ...this.conversations.names("group")])],
        }),
    });
    if (this.terminal) {
      // Redraw the prompt and the half-typed line around everything printed while the user types.
      printer.setLineGuard({
        before: () =>
          clearTypedLine(this.ctx.io.stdout as NodeJS.WriteStream, {
            prompt: this.rl.getPrompt(),
            line: this.rl.line,
            cursor: this.rl.cursor,
          }),
        after: () => this.rl.prompt(true),
      });
      stdin.on("keypress", () => {
        this.notifier.active();
        // Someone is here and waiting: the next try is now, not at the end of the back-off.
        if (this.link.state === "offline") this.reception.live?.retryNow();
      });
    }
    printer.info(
      shown`logged in as ${printer.name(this.me)}; /msg USER or /group G to start a conversation, /help for more`,
    );
    // What an earlier chat could not send goes first, in the order it was typed.
    if (leftOver.length > 0) {
      const lines = shownLines(leftOver.map((item) => `  ${describeQueued(item)}`));
      printer.info(
        shown`${leftOver.length} message${leftOver.length === 1 ? "" : "s"} from an earlier chat ${leftOver.length === 1 ? "waits" : "wait"} in the outbox:\n${lines}`,
      );
      for (const item of leftOver) {
        this.enqueue(
          {
            to: item.to,
            text: item.text,
            ...(item.file === undefined ? {} : { file: item.file }),
            line: describeQueued(item),
          },
          item,
        );
      }
    }
    this.rl.on("line", (line) => {
      this.notifier.active();
      this.handleLine(line.trim());
    });
    this.rl.on("close", () => {
      this.closing = true;
      // Ctrl-C or Ctrl-D leave the cursor after the prompt; the shell's prompt belongs on a line of its own.
      if (this.terminal) this.ctx.io.stdout.write("\n");
      // Quitting while offline: whatever still waits in the outbox is kept for the next chat, and shown.
      if (this.outbox.length > 0 && !this.client.connected) {
        const unsent = shownLines(this.outbox.map((item) => `  ${item.line}`));
        printer.warn(
          shown`not connected; kept in the outbox, to go out the next time chat connects:\n${unsent}`,
        );
        void this.keeping.then(() => this.finish(null));
        return;
      }
      // Ctrl-D, end of piped input, or /quit: let the lines before it and the outbox finish first, and
      // the home forget what was sent (a message still kept there would go out again in the next chat).
      void this.lines
        .then(() => this.sending)
        .then(() => this.keeping)
        .then(() => this.finish(null));
    });
    this.rl.on("SIGINT", () => this.rl.close());
    this.prompt();
    try {
      await done;
      await this.reception.finish();
    } finally {
      if (this.current) this.conversations.read(this.current);
      printer.release();
      printer.setLineGuard(null);
      printer.setMessageTag(null);
      this.rl.close();
      await this.reception.finish().catch(() => undefined);
    }
  }

  /** Shows the held backlog once all of it is in and shown (or after a while, whatever happened). */
  private releaseBacklog(synced: Promise<void>, then: () => void = () => undefined): void {
    const { printer } = this.ctx;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      printer.release();
      then();
    };
    const timer = setTimeout(release, BACKLOG_WAIT_MS);
    // "synced" says the server pushed everything; the receiver may still be verifying the last of it.
    void synced
      .then(() => this.reception.receiver.drain())
      .catch(() => undefined)
      .then(release);
  }

  private connectionChanged(change: ConnectionState): void {
    const { printer } = this.ctx;
    switch (change.state) {
      case "open":
        this.link = { state: "online" };
        break;
      case "reconnecting":
        if (this.link.state !== "offline") {
          printer.warn(`not connected (${change.cause}); retrying, and any key retries at once`);
        }
        this.link = { state: "offline", retryAt: change.retryAt };
        break;
      case "reopened": {
        this.link = { state: "online" };
        this.offlineNoticeShown = false;
        // What was queued for us while we were away comes now: shown in the order it happened.
        printer.hold();
        this.releaseBacklog(this.reception?.live?.current?.synced ?? Promise.resolve());
        const waiting = this.outbox.length;
        printer.info(waiting > 0 ? `reconnected; sending ${waiting} waiting in the outbox` : "reconnected");
        break;
      }
      default:
        return;
    }
    this.refreshPrompt();
  }

  private progressed(progress: Progress): void {
    const { printer } = this.ctx;
    const { direction, phase, name, size, bytes, total } = progress;
    const verb = direction === "send" ? "sending" : "receiving";
    if (phase === "start") {
      if (direction === "send") printer.info(`sending ${name} (${formatBytes(size)})…`);
      this.transfer = shown`${verb} ${name} 0%`.text;
    } else if (phase === "advance") {
      const now = Date.now();
      // The prompt is redrawn a few times a second at most: a fast upload must not flood the terminal.
      if (now - this.transferShownAt < 50 && bytes < total) return;
      this.transferShownAt = now;
      this.transfer = shown`${verb} ${name} ${total > 0 ? Math.floor((bytes / total) * 100) : 100}%`.text;
    } else {
      this.transfer = null;
    }
    this.refreshPrompt();
  }

  /** Users and groups this home knows, for completion: pinned contacts now, the group list when online. */
  private async loadContacts(): Promise<void> {
    const contacts = await this.ctx.home.read("contacts.json").catch(() => null);
    for (const name of contacts?.contacts.keys() ?? []) if (name !== this.me) this.knownUsers.add(name);
    void this.client
      .listGroups()
      .then((list) => {
        for (const group of list.groups) {
          this.knownGroups.add(group);
          this.conversations.know({ kind: "group", name: group });
        }
        for (const invitation of list.invitations) this.knownGroups.add(invitation.group);
      })
      .catch(() => undefined);
  }

  /**
   * Lines are handled one at a time, in the order typed, so a line sees the conversation the command
   * before it opened; a message only goes into the outbox here, so nothing typed waits for a send.
   */
  private handleLine(line: string): void {
    this.lines = this.lines.then(() => this.attempt(() => this.dispatch(line)));
  }

  private async attempt(action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (error) {
      // The session itself is gone: nothing typed next could work either.
      if (error instanceof AuthError) return this.finish(error);
      const { message, exitCode } = describeError(error);
      if (exitCode === 1) return this.finish(error);
      this.ctx.printer.error(message, exitCode);
    }
    this.prompt();
  }

  private async dispatch(line: string): Promise<void> {
    if (line === "") return;
    if (!line.startsWith("/")) return this.enqueue({ to: this.requireCurrent(), text: line, line });
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
      case "/reconnect":
        if (this.client.connected) this.ctx.printer.info("already connected");
        else {
          this.ctx.printer.info("trying to reach the server now…");
          this.reception.live?.retryNow();
        }
        return;
      case "/list":
        return this.showList();
      case "/reply": {
        const to = this.conversations.lastIncoming;
        if (!to) throw new UsageError("nothing received yet to reply to");
        const text = line.replace(/^\S+\s*/, "");
        if (text !== "") return this.enqueue({ to, text, line });
        return this.open(to);
      }
      case "/msg": {
        const [raw, ...words] = rest;
        if (!raw) throw new UsageError("usage: /msg USER [TEXT]");
        const user = parseUsername(raw);
        const to: Conversation = { kind: "user", name: user };
        if (words.length > 0) return this.enqueue({ to, text: textAfterFirst(), line });
        return this.open(to);
      }
      case "/group": {
        const [raw, ...words] = rest;
        if (!raw) throw new UsageError("usage: /group G [TEXT]");
        const to: Conversation = { kind: "group", name: parseGroupName(raw) };
        if (words.length > 0) return this.enqueue({ to, text: textAfterFirst(), line });
        return this.open(to);
      }
      case "/create": {
        await this.afterOutbox(command);
        const [raw, ...users] = rest;
        if (!raw) throw new UsageError("usage: /create G [USER…]");
        const name = parseGroupName(raw);
        const members = [...new Set(users.map(parseUsername))].filter((user) => user !== this.me);
        const created = await this.client.createGroup(name, members);
        this.knownGroups.add(name);
        this.switchTo({ kind: "group", name });
        this.report(createdReport(created));
        return;
      }
      case "/join":
      case "/decline": {
        await this.afterOutbox(command);
        const [raw] = rest;
        if (!raw || rest.length !== 1) throw new UsageError(`usage: ${command} G`);
        const name = parseGroupName(raw);
        if (command === "/decline") {
          await this.client.declineGroup(name);
          this.report(declinedReport(name));
          return;
        }
        const info = await this.client.joinGroup(name);
        this.switchTo({ kind: "group", name });
        this.report(joinedReport(info));
        return;
      }
      case "/add":
      case "/remove": {
        await this.afterOutbox(command);
        const [raw] = rest;
        if (!raw || rest.length !== 1) throw new UsageError(`usage: ${command} USER`);
        const user = parseUsername(raw);
        const group = this.currentGroup(command);
        const change =
          command === "/add"
            ? await this.client.addMember(group, user)
            : await this.client.removeMember(group, user);
        this.report(memberChangeReport(change, user));
        return;
      }
      case "/leave": {
        await this.afterOutbox(command);
        const group = this.currentGroup(command);
        await this.client.leaveGroup(group);
        this.switchTo(null);
        this.ctx.printer.result(`you left the group ${group}`, { group, left: true });
        return;
      }
      case "/members": {
        await this.afterOutbox(command);
        const info = await this.client.groupInfo(this.currentGroup(command));
        this.ctx.printer.result(describeGroup(info), groupData(info));
        return;
      }
      case "/verify": {
        const [raw, answer] = rest;
        if (!raw || rest.length > 2 || (answer !== undefined && answer !== "yes"))
          throw new UsageError("usage: /verify USER, then /verify USER yes once the numbers match");
        const user = parseUsername(raw);
        const report = await this.client.safetyNumber(user);
        const { printer } = this.ctx;
        if (answer === "yes" && !report.keyChange) await this.client.markVerified(report);
        const lines = describeSafetyNumber(report);
        if (!report.keyChange && report.verifiedAt === null)
          lines.push(`once ${user} sees the same number, type /verify ${user} yes`);
        printer.result(lines.join("\n"), safetyReportData(report));
        // Refused, not silently ignored: the number covers keys not accepted yet.
        if (answer === "yes" && report.keyChange) await this.client.markVerified(report);
        return;
      }
      case "/history": {
        const [raw] = rest;
        const limit = raw === undefined ? HISTORY_DEFAULT : parseLimit(raw, "/history N");
        const entries = await this.client.history({ ...this.query(this.requireCurrent()), limit });
        if (entries.length === 0) this.ctx.printer.info("(no history yet)");
        for (const entry of entries) this.ctx.printer.historyEntry(entry);
        return;
      }
      case "/file": {
        // The rest of the line is the path, spaces and all.
        const path = line.replace(/^\/file\s*/, "");
        if (!path) throw new UsageError("usage: /file PATH");
        // Made absolute (as a folder would be): a later chat, started elsewhere, may be the one to send it.
        const file = this.client.platform.files.resolveFolder(path);
        return this.enqueue({ to: this.requireCurrent(), text: "", file, line });
      }
      default:
        throw new UsageError(`unknown command ${command}: /help lists them`);
    }
  }

  /**
   * Opens a conversation: checks it where that needs no wait (a user's keys pinned here, a group's chain
   * when the server answers), then shows its last messages with a line where the new ones begin.
   */
  private async open(to: Conversation): Promise<void> {
    const { printer } = this.ctx;
    let about: string;
    if (to.kind === "user") {
      const contact = await this.client.contact(to.name);
      this.knownUsers.add(to.name);
      about = `now talking to ${to.name} (key fingerprint ${contact.fingerprint})`;
    } else {
      try {
        // Asked now, so a group that does not exist or is not ours fails here, not at the first line.
        about = `now talking to the ${describeGroup(await this.client.groupInfo(to.name))}`;
      } catch (error) {
        // Offline, a group of the history opens from the history; a server that answers with an error
        // (or a group never seen here) is reported.
        const known = this.conversations.names("group").includes(to.name);
        if (!(error instanceof NetworkError) || this.client.connected || !known) throw error;
        about = `now talking to the group ${to.name} (not connected: its members are checked when sending)`;
      }
    }
    const unread = this.conversations.unread(to);
    const since = this.marks.get(conversationKey(to));
    const entries = await this.client.history({
      ...this.query(to),
      limit: Math.min(Math.max(OPEN_SHOWS, unread + 3), OPEN_SHOWS_MAX),
    });
    this.switchTo(to);
    printer.info(about);
    let marked = false;
    for (const entry of entries) {
      if (!marked && entry.direction === "in" && entry.recordedAt > since) {
        marked = true;
        printer.info(`── new since last time (${unread > 0 ? `${unread} unread` : "since you looked"}) ──`);
      }
      printer.historyEntry(entry);
    }
  }

  private switchTo(to: Conversation | null): void {
    if (this.current) this.conversations.read(this.current);
    this.current = to;
    if (to) this.conversations.read(to);
  }

  private showList(): void {
    const { printer } = this.ctx;
    const rows = this.conversations.list();
    if (rows.length === 0) {
      printer.info("(no conversations yet: /msg USER or /group G)");
      return;
    }
    const lines = rows.map(({ conversation, unread, lastActivity }) => {
      const here = sameConversation(conversation, this.current) ? "*" : " ";
      const name = conversation.kind === "group" ? `#${conversation.name}` : conversation.name;
      const count = unread > 0 ? `${unread} unread` : "";
      const last = lastActivity > 0 ? `last ${new Date(lastActivity).toLocaleString()}` : "";
      return `${here} ${name.padEnd(24)} ${count.padEnd(10)} ${last}`;
    });
    printer.result(shownLines(lines), {
      conversations: rows.map(({ conversation, unread, lastActivity }) => ({
        [conversation.kind]: conversation.name,
        unread,
        lastActivity: isoTime(lastActivity),
      })),
    });
  }

  private showUnread(): void {
    const waiting = this.conversations.unreadElsewhere(null);
    if (waiting.length === 0) return;
    const list = waiting
      .map(({ conversation, unread }) =>
        conversation.kind === "group" ? `#${conversation.name} ${unread}` : `${conversation.name} ${unread}`,
      )
      .join(", ");
    this.ctx.printer.info(`unread since last time: ${list} (/list, /msg USER or /reply)`);
  }

  private query(to: Conversation): { user: string } | { group: string } {
    return to.kind === "user" ? { user: to.name } : { group: to.name };
  }

  private report({ human, data }: Report): void {
    this.ctx.printer.result(human, data);
  }

  private requireCurrent(): Conversation {
    if (!this.current) throw new UsageError("no conversation yet: type /msg USER or /group G first");
    return this.current;
  }

  private currentGroup(command: string): string {
    if (this.current?.kind !== "group")
      throw new UsageError(`${command} acts on the current group: /group G first`);
    return this.current.name;
  }

  /**
   * A group change or question comes after the messages typed before it (a line typed before /leave goes
   * out before the leave); it needs the server, so offline it fails at once rather than block the lines.
   */
  private async afterOutbox(command: string): Promise<void> {
    if (!this.client.connected) {
      throw new NetworkError(`not connected: ${command} needs the server; try again once reconnected`);
    }
    await this.sending;
    await this.keeping;
  }

  /**
   * Puts a message in the outbox (and in the home's send queue, unless `kept` says it is there already);
   * it goes out after those before it, once the server is reachable.
   */
  private enqueue(message: Omit<Outgoing, "kept">, kept?: QueuedSend): void {
    const item: Outgoing = {
      ...message,
      kept: kept
        ? Promise.resolve(kept)
        : this.queue.add(message.to, { text: message.text, file: message.file }).catch((error: unknown) => {
            this.ctx.printer.warn(`the outbox could not keep this message: ${describeError(error).message}`);
            return null;
          }),
    };
    this.keeping = this.keeping.then(() => item.kept);
    this.outbox.push(item);
    this.conversations.touched(item.to);
    if (!this.client.connected) this.offline();
    const forget = async () => {
      const copy = await item.kept;
      if (copy) this.keeping = this.keeping.then(() => this.queue.remove(copy.id).catch(() => undefined));
    };
    this.sending = this.sending.then(() =>
      this.attempt(async () => {
        try {
          await this.deliver(item);
          await forget();
        } catch (error) {
          // Sent nowhere because chat is ending or the network went: kept for the next chat. Any other
          // failure (no such user, a changed key) is final and reported: the queue lets it go.
          if (!this.closing && !(error instanceof NetworkError)) await forget();
          throw error;
        } finally {
          this.outbox.shift();
          this.refreshPrompt();
        }
      }),
    );
  }

  private async deliver(item: Outgoing): Promise<void> {
    const { to, text, file } = item;
    const sent = await this.client.send(to.kind === "user" ? { user: to.name } : { group: to.name }, {
      text,
      file,
    });
    this.reportSent(to, sent);
    if (file !== undefined) this.ctx.printer.info(`sent ${sent.file?.descriptor.name}`);
  }

  private reportSent(to: Conversation, sent: Sent): void {
    const data = {
      id: sent.id,
      to: sent.to,
      ...(sent.group === undefined ? {} : { group: sent.group }),
      status: sent.status,
      sentAt: isoTime(sent.sentAt),
    };
    // Delivered is the normal case and needs no line; stored is worth knowing, once, not per message.
    const key = conversationKey(to);
    const previous = this.lastStatus.get(key);
    this.lastStatus.set(key, sent.status);
    if (this.ctx.printer.json) this.ctx.printer.result("", data);
    else if (sent.status === "stored" && previous !== "stored") {
      const who = to.kind === "user" ? `${to.name} is not` : `no other member of ${to.name} is`;
      this.ctx.printer.info(`(${who} connected; the message is stored for them)`);
    }
  }

  /** Offline, a typed message waits in the outbox rather than failing; told once per outage. */
  private offline(): void {
    this.refreshPrompt();
    if (this.offlineNoticeShown) return;
    this.offlineNoticeShown = true;
    this.ctx.printer.info(
      "(not connected: messages wait in the outbox and go out, in order, once it is back)",
    );
  }

  /** "(offline, next try in 1 s; 2 in outbox) bob [carol 1]> ": the state first, then the conversation. */
  private promptText(): string {
    const { printer } = this.ctx;
    const status: string[] = [];
    if (this.link.state === "offline") {
      const seconds = Math.max(0, Math.ceil((this.link.retryAt - Date.now()) / 1000));
      status.push(`offline, next try in ${seconds} s`);
    } else if (this.link.state === "connecting") status.push("connecting");
    if (this.outbox.length > 0) status.push(`${this.outbox.length} in outbox`);
    if (this.transfer) status.push(this.transfer);
    const name = !this.current
      ? ""
      : this.current.kind === "group"
        ? printer.groupName(this.current.name).text
        : printer.name(this.current.name).text;
    const elsewhere = this.conversations
      .unreadElsewhere(this.current)
      .slice(0, 3)
      .map(({ conversation, unread }) =>
        conversation.kind === "group"
          ? shown`#${conversation.name} ${unread}`
          : shown`${conversation.name} ${unread}`,
      );
    const unread = elsewhere.length > 0 ? ` [${elsewhere.join(", ")}]` : "";
    const state = status.length > 0 ? `(${status.join("; ")}) ` : "";
    return `${state}${name}${unread}> `;
  }

  private prompt(): void {
    if (!this.terminal || this.finished || this.closing) return;
    this.rl.setPrompt(this.promptText());
    this.rl.prompt(true);
  }

  /** The prompt again with what changed (connection, outbox, a transfer, unread), the typed line kept. */
  private refreshPrompt(): void {
    if (!this.rl || !this.terminal || this.finished || this.closing) return;
    const next = this.promptText();
    if (next === this.rl.getPrompt()) return;
    this.rl.setPrompt(next);
    this.rl.prompt(true);
  }
}

/** "to bob: see you" / "to group team: file notes.pdf", as a kept message is listed. */
function describeQueued(item: QueuedSend): string {
  const where = item.to.kind === "user" ? item.to.name : `group ${item.to.name}`;
  const what = item.file === undefined ? item.text : `/file ${item.file}`;
  return `to ${where}: ${what}`;
}
