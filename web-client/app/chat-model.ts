// Everything the signed-in page shows, kept over one TelepoundClient: the conversations with their unread
// counts, the open conversation's lines (its history, then what arrives and goes out), the connection,
// files in flight, key changes that stop sending, invitations, warnings. The views only render a snapshot
// and call the actions here; the actions are the same calls on the core as the CLI's commands make.
//
// Receiving: only one tab of a browser receives for its home (the core's receiver claim, Web Locks in the
// adapter). A tab that finds it taken can still send and read the history; it reads the open conversation
// again every few seconds, and tries for the claim again, so it takes over when the other tab closes.

import { AuthError, BusyError, KeyMismatchError, describeError } from "../../client/errors.js";
import type { ConnectionState, Progress, ShownEvent, ShownMessage } from "../../client/events.js";
import type { HistoryEntry } from "../../client/store/history.js";
import type { Reception, TelepoundClient } from "../../client/telepound-client.js";
import type { SafetyReport } from "../../client/trust.js";
import type { GroupInfo, GroupInvitation } from "../../protocol/http.js";
import {
  type Conversation,
  ConversationList,
  type ConversationSummary,
  sameConversation,
} from "./conversations.js";
import type { BrowserServices } from "./services.js";

/** One line of a conversation: a message or a group change. */
export interface Line {
  id: string;
  kind: "message" | "event";
  from: string;
  direction: "in" | "out";
  text: string;
  /** The sender's clock (messages), the signer's (changes). */
  at: number;
  file?: { name: string; size: number; path?: string };
  fileError?: string;
  change?: Pick<ShownEvent, "event" | "by" | "user" | "members" | "invited" | "admin">;
  /** Ours, typed and not yet accepted by the server. */
  sending?: true;
  /** Ours, and it could not be sent: why. */
  failed?: string;
}

export type Link =
  | { state: "connecting" }
  | { state: "online" }
  | { state: "offline"; cause: string; retryAt: number }
  /** Another tab of this browser receives; this one sends and reads the history. */
  | { state: "elsewhere" }
  | { state: "ended"; reason: string };

export interface Notice {
  id: number;
  text: string;
  tone: "info" | "warning" | "error";
}

export interface ChatState {
  me: string;
  link: Link;
  conversations: ConversationSummary[];
  invitations: GroupInvitation[];
  current: Conversation | null;
  lines: Line[];
  transfers: Progress[];
  /** Contacts whose keys changed, with the core's explanation: nothing is sent to them until accepted. */
  keyChanges: ReadonlyMap<string, string>;
  notices: Notice[];
}

/** How many lines of a conversation are read from the history when it opens. */
const OPEN_LIMIT = 200;
/** How much of the history is read at the start to count unread messages. */
const SCAN_LIMIT = 5000;
/** A tab that does not receive: how often it rereads the open conversation and asks for the claim. */
const ELSEWHERE_POLL_MS = 2000;
const NOTICES_KEPT = 5;

export class ChatModel {
  private state: ChatState;
  private readonly listeners = new Set<() => void>();
  private reception: Reception | null = null;
  private outbox: Promise<void> = Promise.resolve();
  private poll: ReturnType<typeof setTimeout> | null = null;
  private nextNotice = 1;
  /** The groups the server last said this user is in. */
  private groups: string[] = [];
  private stopped = false;
  private readonly unsubscribe: Array<() => void> = [];
  /** Told of each message from someone else (desktop notifications). */
  onIncoming: (message: ShownMessage, current: boolean) => void = () => undefined;

  private constructor(
    private readonly client: TelepoundClient,
    private readonly services: BrowserServices,
    private list: ConversationList,
    private readonly location: string,
    me: string,
  ) {
    this.state = {
      me,
      link: { state: "connecting" },
      conversations: [],
      invitations: [],
      current: null,
      lines: [],
      transfers: [],
      keyChanges: new Map(),
      notices: [],
    };
  }

  /** The model of the signed-in user of `client`, its history counted; receiving starts with `start`. */
  static async open(
    client: TelepoundClient,
    services: BrowserServices,
    location: string,
  ): Promise<ChatModel> {
    const me = (await client.session()).username;
    const list = await ConversationList.load(me, services.platform.home(location));
    list.count(await client.history({ limit: SCAN_LIMIT }));
    const model = new ChatModel(client, services, list, location, me);
    model.refreshList();
    return model;
  }

  get snapshot(): ChatState {
    return this.state;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- receiving --------------------------------------------------------------------------------

  start(): void {
    const { events } = this.client;
    this.unsubscribe.push(
      events.on("message", (message) => this.messageArrived(message)),
      events.on("groupEvent", (event) => this.groupChanged(event)),
      events.on("warning", ({ message }) => this.notify(message, "warning")),
      events.on("keyChange", ({ user, message }) => this.keyChanged(user, message)),
      events.on("held", ({ from, count }) =>
        this.notify(
          `${count === 1 ? "1 message" : `${count} messages`} from ${from} held until you accept their new keys`,
          "warning",
        ),
      ),
      events.on("connection", (change) => this.connectionChanged(change)),
      events.on("progress", (progress) => this.progressed(progress)),
    );
    void this.refreshGroups();
    void this.claimReceiving();
  }

  /** Stops receiving and lets go of the client's connection (log out, or the page going away). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poll) clearTimeout(this.poll);
    for (const off of this.unsubscribe.splice(0)) off();
    const reception = this.reception;
    this.reception = null;
    await reception?.finish().catch(() => undefined);
    await this.client.close();
  }

  /** Ends the session on the server, then wipes this browser's copy of the home. */
  async logout(location: string): Promise<void> {
    await this.stop();
    await this.client.logout();
    await this.services.wipe(location);
  }

  private async claimReceiving(): Promise<void> {
    if (this.stopped) return;
    try {
      const reception = await this.client.receive({ command: "web page", mode: "live", startOffline: true });
      if (this.stopped) {
        await reception.finish().catch(() => undefined);
        return;
      }
      this.reception = reception;
      if (this.poll) clearTimeout(this.poll);
      reception.ended.catch((error: unknown) => this.receivingFailed(error));
    } catch (error) {
      if (error instanceof BusyError) {
        this.update({ link: { state: "elsewhere" } });
        this.pollElsewhere();
        return;
      }
      this.receivingFailed(error);
    }
  }

  private pollElsewhere(): void {
    this.poll = setTimeout(async () => {
      if (this.stopped) return;
      await this.recount().catch(() => undefined);
      await this.reloadCurrent().catch(() => undefined);
      await this.claimReceiving();
    }, ELSEWHERE_POLL_MS);
  }

  /** Counts the conversations again from the history, which the receiving tab keeps writing. */
  private async recount(): Promise<void> {
    const list = await ConversationList.load(this.state.me, this.services.platform.home(this.location));
    list.count(await this.client.history({ limit: SCAN_LIMIT }));
    for (const group of this.groups) list.know({ kind: "group", name: group });
    if (this.state.current) list.know(this.state.current);
    this.list = list;
    this.refreshList();
  }

  private receivingFailed(error: unknown): void {
    if (this.stopped) return;
    const reason =
      error instanceof AuthError
        ? `${describeError(error).message}: log out, then log in again`
        : describeError(error).message;
    this.update({ link: { state: "ended", reason } });
  }

  private connectionChanged(change: ConnectionState): void {
    switch (change.state) {
      case "connecting":
        this.update({ link: { state: "connecting" } });
        return;
      case "open":
      case "reopened":
        this.update({ link: { state: "online" } });
        return;
      case "reconnecting":
        this.update({ link: { state: "offline", cause: change.cause, retryAt: change.retryAt } });
        return;
      case "closed":
        return;
    }
  }

  /** Tries to reach the server now instead of at the end of the back-off. */
  retryNow(): void {
    this.reception?.live?.retryNow();
  }

  private messageArrived(message: ShownMessage): void {
    const conversation = this.list.received(message, this.state.current);
    const here = sameConversation(conversation, this.state.current);
    if (here) this.addLines([lineOfMessage(message)]);
    if (message.from !== this.state.me) this.onIncoming(message, here);
    this.refreshList();
  }

  private groupChanged(event: ShownEvent): void {
    const conversation: Conversation = { kind: "group", name: event.group };
    // An invitation lists the group under the invitations, not as a conversation, until it is accepted.
    if (event.members.includes(this.state.me)) this.list.touched(conversation);
    if (sameConversation(conversation, this.state.current)) {
      this.addLines([
        {
          id: eventLineId(event.group, event.epoch),
          kind: "event",
          from: event.by,
          direction: event.by === this.state.me ? "out" : "in",
          text: "",
          at: event.at,
          change: event,
        },
      ]);
    }
    this.refreshList();
    // An invitation of this user, or an answer to one, changes what waits for an answer.
    if (event.user === this.state.me || event.invited.includes(this.state.me)) void this.refreshGroups();
  }

  private keyChanged(user: string, message: string): void {
    const keyChanges = new Map(this.state.keyChanges);
    keyChanges.set(user, message);
    this.update({ keyChanges });
  }

  private progressed(progress: Progress): void {
    const others = this.state.transfers.filter((transfer) => transfer.transfer !== progress.transfer);
    this.update({ transfers: progress.phase === "end" ? others : [...others, progress] });
  }

  // ---- conversations ------------------------------------------------------------------------------

  /** Opens a conversation: its last lines from the history; a user's keys are checked against the pin. */
  async open(conversation: Conversation): Promise<void> {
    if (this.state.current) this.list.read(this.state.current);
    this.list.know(conversation);
    this.list.read(conversation);
    this.update({ current: conversation, lines: [] });
    this.refreshList();
    await this.reloadCurrent();
    if (conversation.kind === "user") await this.checkKeys(conversation.name);
  }

  close(): void {
    if (this.state.current) this.list.read(this.state.current);
    this.update({ current: null, lines: [] });
  }

  /** Asks for the user's keys (pinning a first contact); a change is recorded and shown, not thrown. */
  private async checkKeys(user: string): Promise<void> {
    try {
      await this.client.lookupUser(user);
    } catch (error) {
      if (error instanceof KeyMismatchError) this.keyChanged(user, error.message);
      else this.failed(error);
    }
  }

  private async reloadCurrent(): Promise<void> {
    const current = this.state.current;
    if (!current) return;
    const entries = await this.client.history({
      ...(current.kind === "user" ? { user: current.name } : { group: current.name }),
      limit: OPEN_LIMIT,
    });
    if (!sameConversation(current, this.state.current)) return;
    const fromHistory = entries.map(lineOfEntry);
    const known = new Set(fromHistory.map((line) => line.id));
    // Lines not in the history yet (being sent, failed, or just arrived and not yet recorded) stay last.
    const rest = this.state.lines.filter((line) => !known.has(line.id));
    this.update({ lines: [...fromHistory, ...rest] });
  }

  private addLines(lines: Line[]): void {
    const known = new Set(this.state.lines.map((line) => line.id));
    const fresh = lines.filter((line) => !known.has(line.id));
    if (fresh.length > 0) this.update({ lines: [...this.state.lines, ...fresh] });
  }

  /**
   * Sends to the open conversation, after whatever was typed before (one at a time, in order); the line
   * shows at once and says "sending" until the server has it. A file is read from the picked File.
   */
  send(text: string, file?: File): void {
    const to = this.state.current;
    if (!to) return;
    const id = `sending/${this.nextNotice++}`;
    const pending: Line = {
      id,
      kind: "message",
      from: this.state.me,
      direction: "out",
      text,
      at: Date.now(),
      sending: true,
      ...(file ? { file: { name: file.name, size: file.size } } : {}),
    };
    this.addLines([pending]);
    this.list.touched(to);
    this.refreshList();
    this.outbox = this.outbox.then(async () => {
      try {
        const path = file ? this.services.registerFile(file) : undefined;
        const sent = await this.client.send(to.kind === "user" ? { user: to.name } : { group: to.name }, {
          text,
          file: path,
        });
        this.replaceLine(id, { ...pending, id: sent.id, at: sent.sentAt, sending: undefined });
      } catch (error) {
        if (error instanceof KeyMismatchError && to.kind === "user") this.keyChanged(to.name, error.message);
        this.replaceLine(id, { ...pending, sending: undefined, failed: describeError(error).message });
      }
    });
  }

  private replaceLine(id: string, line: Line): void {
    const { sending, ...rest } = line;
    const cleaned: Line = sending ? line : rest;
    // The history may already hold it under its real id (reread meanwhile): then only the pending goes.
    const duplicate = this.state.lines.some((other) => other.id === cleaned.id && other.id !== id);
    this.update({
      lines: duplicate
        ? this.state.lines.filter((other) => other.id !== id)
        : this.state.lines.map((other) => (other.id === id ? cleaned : other)),
    });
  }

  /** Where to download a received file from (the adapter's URL for the saved file). */
  downloadUrl(path: string): Promise<string> {
    return this.services.downloadUrl(path);
  }

  // ---- keys ---------------------------------------------------------------------------------------

  safetyNumber(user: string): Promise<SafetyReport> {
    return this.client.safetyNumber(user);
  }

  async markVerified(report: SafetyReport): Promise<void> {
    await this.client.markVerified(report);
    this.notify(`${report.username} is verified`, "info");
  }

  /** Accepts the keys the server now gives for `user`: sending to them works again. */
  async acceptNewKeys(user: string): Promise<void> {
    const { result, held } = await this.client.trust(user);
    const keyChanges = new Map(this.state.keyChanges);
    keyChanges.delete(user);
    this.update({ keyChanges });
    const shown =
      held > 0 ? `; ${held === 1 ? "1 held message" : `${held} held messages`} will be shown` : "";
    this.notify(
      `accepted ${user}'s new keys (fingerprint ${result.fingerprint}): compare the safety number again${shown}`,
      "info",
    );
  }

  // ---- groups -------------------------------------------------------------------------------------

  async createGroup(name: string, users: readonly string[]): Promise<void> {
    const created = await this.client.createGroup(name, users);
    if (created.invited.length > 0) {
      this.notify(
        `created ${name}; invited ${created.invited.join(", ")} (they become members once they accept)`,
        "info",
      );
    }
    await this.open({ kind: "group", name });
  }

  async addMember(group: string, user: string): Promise<GroupInfo> {
    const change = await this.client.addMember(group, user);
    if (change.change === "invited")
      this.notify(`invited ${user}: they become a member once they accept`, "info");
    return change.info;
  }

  async removeMember(group: string, user: string): Promise<GroupInfo> {
    return (await this.client.removeMember(group, user)).info;
  }

  groupInfo(group: string): Promise<GroupInfo> {
    return this.client.groupInfo(group);
  }

  async leaveGroup(group: string): Promise<void> {
    await this.client.leaveGroup(group);
    const conversation: Conversation = { kind: "group", name: group };
    if (sameConversation(conversation, this.state.current)) this.close();
    this.notify(`you left ${group}`, "info");
    this.refreshList();
  }

  async joinGroup(group: string): Promise<void> {
    await this.client.joinGroup(group);
    await this.refreshGroups();
    await this.open({ kind: "group", name: group });
  }

  async declineGroup(group: string): Promise<void> {
    await this.client.declineGroup(group);
    await this.refreshGroups();
  }

  private async refreshGroups(): Promise<void> {
    try {
      const { groups, invitations } = await this.client.listGroups();
      this.groups = groups;
      for (const group of groups) this.list.know({ kind: "group", name: group });
      this.update({ invitations });
      this.refreshList();
    } catch {
      // Offline or refused: the list from the history stands; the next change asks again.
    }
  }

  // ---- notices ------------------------------------------------------------------------------------

  /** An action of the page failed: its message, as the CLI would print it. */
  failed(error: unknown): void {
    this.notify(describeError(error).message, "error");
  }

  notify(text: string, tone: Notice["tone"]): void {
    const notices = [...this.state.notices, { id: this.nextNotice++, text, tone }].slice(-NOTICES_KEPT);
    this.update({ notices });
  }

  dismiss(id: number): void {
    this.update({ notices: this.state.notices.filter((notice) => notice.id !== id) });
  }

  private refreshList(): void {
    this.update({ conversations: this.list.list() });
  }

  private update(change: Partial<ChatState>): void {
    this.state = { ...this.state, ...change };
    for (const listener of this.listeners) listener();
  }
}

function lineOfMessage(message: ShownMessage): Line {
  return {
    id: message.id,
    kind: "message",
    from: message.from,
    direction: message.direction ?? "in",
    text: message.text,
    at: message.sentAt,
    ...(message.file
      ? { file: { name: message.file.name, size: message.file.size, path: message.file.path } }
      : {}),
    ...(message.fileError === undefined ? {} : { fileError: message.fileError }),
  };
}

/** Group changes are one line per epoch, whether read from the history or just shown. */
function eventLineId(group: string, epoch: number): string {
  return `event/${group}/${epoch}`;
}

function lineOfEntry(entry: HistoryEntry): Line {
  return {
    id: entry.event ? eventLineId(entry.event.group, entry.event.epoch) : entry.id,
    kind: entry.kind,
    from: entry.from,
    direction: entry.direction,
    text: entry.text,
    at: entry.sentAt,
    ...(entry.file
      ? {
          file: {
            name: entry.file.name,
            size: entry.file.size,
            ...(entry.file.path === undefined ? {} : { path: entry.file.path }),
          },
        }
      : {}),
    ...(entry.event ? { change: entry.event } : {}),
  };
}
