// telepound chat: an interactive session on one connection. `/msg USER` or `/group G` switches
// conversation (with TEXT, sends one message), plain lines go to the current conversation, `/file PATH`
// sends a file, `/create`, `/add`, `/remove`, `/leave` and `/members` manage groups, `/quit` ends it;
// incoming messages (and files, saved to the downloads folder) print above the input line.

import { basename } from "node:path";
import { createInterface, clearLine, cursorTo, type Interface } from "node:readline";
import { Connection, type UploadStatus } from "../connection.js";
import { Contacts } from "../contacts.js";
import type { Context } from "../context.js";
import { AuthError, CliError, NetworkError, UsageError, describeError } from "../errors.js";
import { GroupDirectory } from "../groups.js";
import { Receiver } from "../incoming.js";
import { type FileDescriptor, checkSendable, downloadsFolder, uploadFile } from "../files.js";
import { type Outbox, type SentMessage, groupToSealFor, sendDirect, sendToGroup } from "../outgoing.js";
import { describeGroup, formatBytes, groupData, isoTime } from "../output.js";
import { noProgress } from "../progress.js";
import { PersistedSeen } from "../seen.js";
import { type LoggedIn, loadSession } from "../session.js";
import { parseGroupName, parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

const HELP = [
  "/msg USER           talk to USER (plain lines then go to them)",
  "/msg USER TEXT      send one message to USER",
  "/group G            talk to group G",
  "/group G TEXT       send one message to group G",
  "/create G [USER…]   create group G with you as admin, and talk to it",
  "/add USER           add USER to the current group (admin only)",
  "/remove USER        remove USER from the current group (admin only)",
  "/leave              leave the current group",
  "/members            the current group's admin and members",
  "/file PATH          send a file (encrypted) to the current conversation",
  "/help               this list",
  "/quit               leave (Ctrl-D works too)",
].join("\n");

/** Who plain lines go to. */
type Conversation = { kind: "user"; name: string } | { kind: "group"; name: string };

/** Reconnection back-off after the connection drops: doubling, capped. */
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30_000;
/** A connection that lasted this long was healthy: the next drop starts the back-off afresh. */
const STABLE_CONNECTION_MS = 10_000;
/** How long a message typed while disconnected waits for the connection to come back. */
const SEND_WAIT_MS = 15_000;

export const chat: CommandSpec = {
  name: "chat",
  summary: "interactive chat: /msg USER [TEXT], /group G [TEXT], plain lines to the current one, /quit",
  examples: [
    "telepound chat  # then /msg bob or /group team, and type",
    "telepound chat --home ~/.telepound-bob  # a second user on the same machine",
  ],
  async run(ctx) {
    const me = await loadSession(ctx);
    await new ChatSession(ctx, me).run();
  },
};

class ChatSession {
  private readonly contacts: Contacts;
  private readonly terminal: boolean;
  private rl!: Interface;
  private connection: Connection | null = null;
  /** Resolves with the connection once it is up again after a drop; sends wait on it for a while. */
  private reconnected: Promise<Connection> | null = null;
  private onReconnected: (connection: Connection) => void = () => undefined;
  private backoffMs = RECONNECT_MIN_MS;
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

  constructor(
    private readonly ctx: Context,
    private readonly me: LoggedIn,
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
    this.groups = await GroupDirectory.load(this.ctx.home, this.me.username, this.me.api);
    this.seen = await PersistedSeen.load(this.ctx.home, this.me.username);
    this.receiver = await Receiver.create({
      home: this.ctx.home,
      me: this.me,
      contacts: this.contacts,
      printer: this.ctx.printer,
      groups: this.groups,
      seen: this.seen,
      // Received files go to the downloads folder and are announced with the message; no progress bar.
      files: { outDir: downloadsFolder(this.ctx.home), progress: noProgress },
      ack: (id) => this.connection?.ack(id),
      onFatal: (error) => this.finish(error),
    });
    this.connection = await this.connect();
    // Created only now, with its handlers attached at once: readline starts reading immediately, and
    // piped input would otherwise be consumed (even closed) while the connection was still opening.
    const { stdin, stdout } = this.ctx.io;
    this.rl = createInterface({ input: stdin, output: stdout, terminal: this.terminal });
    if (this.terminal) {
      // Redraw the prompt and the half-typed line around everything printed while the user types.
      this.ctx.printer.setLineGuard({
        before: () => {
          clearLine(this.ctx.io.stdout as NodeJS.WriteStream, 0);
          cursorTo(this.ctx.io.stdout as NodeJS.WriteStream, 0);
        },
        after: () => this.rl.prompt(true),
      });
    }
    this.ctx.printer.info(
      `logged in as ${this.me.username}; /msg USER or /group G to start a conversation, /help for more`,
    );
    this.rl.on("line", (line) => {
      this.lines = this.lines
        .then(() => this.handleLine(line.trim()))
        .catch((error: unknown) => this.finish(error));
    });
    this.rl.on("close", () => {
      this.closing = true;
      // Ctrl-C or Ctrl-D leave the cursor after the prompt; the shell's prompt belongs on a line of its own.
      if (this.terminal) this.ctx.io.stdout.write("\n");
      // Ctrl-D, end of piped input, or /quit: let queued lines finish sending first.
      void this.lines.then(() => this.finish(null));
    });
    this.rl.on("SIGINT", () => this.rl.close());
    this.prompt();
    try {
      await done;
      await this.receiver.drain();
    } finally {
      this.ctx.printer.setLineGuard(null);
      this.rl.close();
      await this.connection?.close();
    }
  }

  private async connect(): Promise<Connection> {
    const openedAt = Date.now();
    return Connection.open({
      server: this.me.server,
      token: this.me.session.token,
      receive: true,
      onDelivery: (frame) => this.receiver.push(frame),
      onEvent: (event) => this.receiver.pushEvent(event),
      onServerError: (error) => this.ctx.printer.warn(error.message),
      onClose: (error) => {
        // A connection that keeps dying right after opening must not be retried every second forever.
        this.backoffMs =
          Date.now() - openedAt < STABLE_CONNECTION_MS
            ? Math.min(this.backoffMs * 2, RECONNECT_MAX_MS)
            : RECONNECT_MIN_MS;
        void this.reconnect(error);
      },
    });
  }

  /** The connection dropped: retry with back-off until it is back, the session is dead, or the user quits. */
  private async reconnect(cause: CliError): Promise<void> {
    this.connection = null;
    this.reconnected = new Promise((resolve) => (this.onReconnected = resolve));
    this.ctx.printer.warn(`${cause.message}; reconnecting…`);
    let wait = this.backoffMs;
    while (!this.finished) {
      await new Promise((done) => setTimeout(done, wait));
      if (this.finished) return;
      try {
        this.connection = await this.connect();
        this.ctx.printer.info("reconnected");
        this.onReconnected(this.connection);
        return;
      } catch (error) {
        if (!(error instanceof NetworkError)) return this.finish(error);
        wait = Math.min(wait * 2, RECONNECT_MAX_MS);
      }
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
        const info = await this.groups.current(name);
        this.current = { kind: "group", name };
        this.ctx.printer.info(`now talking to the ${describeGroup(info)}`);
        return;
      }
      case "/create": {
        const [raw, ...users] = rest;
        if (!raw) throw new UsageError("usage: /create G [USER…]");
        const name = parseGroupName(raw);
        const members = [...new Set(users.map(parseUsername))].filter((user) => user !== this.me.username);
        const info = await this.me.api.createGroup({ name, members });
        this.groups.learnInfo(info);
        await this.groups.save();
        this.current = { kind: "group", name };
        this.ctx.printer.result(`created ${describeGroup(info)}`, groupData(info));
        return;
      }
      case "/add":
      case "/remove": {
        const [raw] = rest;
        if (!raw || rest.length !== 1) throw new UsageError(`usage: ${command} USER`);
        const user = parseUsername(raw);
        const group = this.currentGroup(command);
        const info =
          command === "/add"
            ? await this.me.api.addMember(group, user)
            : await this.me.api.removeMember(group, user);
        this.groups.learnInfo(info);
        await this.groups.save();
        const verb = command === "/add" ? `added ${user} to` : `removed ${user} from`;
        this.ctx.printer.result(`${verb} ${describeGroup(info)}`, groupData(info));
        return;
      }
      case "/leave": {
        const group = this.currentGroup(command);
        await this.me.api.leaveGroup(group);
        this.current = null;
        this.ctx.printer.result(`you left the group ${group}`, { group, left: true });
        return;
      }
      case "/members": {
        const info = await this.groups.current(this.currentGroup(command));
        this.ctx.printer.result(describeGroup(info), groupData(info));
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
    else await groupToSealFor(this.groups, to.name, this.me.username);
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
    const connection = this.connection ?? (await this.waitForConnection());
    const outbox: Outbox = {
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

  /** While reconnecting, a line waits a little for the connection rather than failing at once. */
  private async waitForConnection(): Promise<Connection> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new NetworkError("not connected to the server; the message was not sent")),
        SEND_WAIT_MS,
      );
    });
    try {
      return await Promise.race([this.reconnected ?? timeout, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private prompt(): void {
    if (!this.terminal || this.finished || this.closing) return;
    const prompt = !this.current
      ? ""
      : this.current.kind === "group"
        ? `#${this.current.name}`
        : this.current.name;
    this.rl.setPrompt(`${prompt}> `);
    this.rl.prompt();
  }
}
