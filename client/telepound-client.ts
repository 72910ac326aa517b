// One object for everything a face does with Telepound: it owns a home (on one platform, for one server)
// for as long as the process uses it, and tells what happens through `events` instead of printing. The
// CLI's commands, the daemon's requests and a web page's actions are calls on it; the text they show is
// theirs. Failures are thrown as the core's typed errors (errors.ts), which carry the CLI's exit codes.

import { toBase64 } from "./crypto/base64.js";
import {
  type ExportedIdentity,
  derivePasswordKeys,
  exportIdentity,
  fingerprint,
  generateIdentity,
  importIdentity,
  sealPrivateKeys,
  unsealPrivateKeys,
} from "./crypto/index.js";
import { installCryptoBackend } from "./crypto/backend.js";
import { Contacts, type ResolvedContact } from "./contacts.js";
import { Emitter } from "./emitter.js";
import { AuthError, NetworkError, NotFoundError, UsageError } from "./errors.js";
import type { ClientEvents } from "./events.js";
import { type UploadedFile, checkSendable, ensureFolder, uploadFile } from "./files.js";
import {
  type CreatedGroup,
  type MemberChange,
  changeMember,
  createGroup,
  declineGroup,
  joinGroup,
  leaveGroup,
} from "./group-changes.js";
import { GroupDirectory } from "./groups.js";
import { Receiver } from "./incoming.js";
import { Api } from "./net/api.js";
import { Connection } from "./net/connection.js";
import { LiveConnection } from "./net/live-connection.js";
import { type Outbox, type SentMessage, groupToSealFor, sendDirect, sendToGroup } from "./outgoing.js";
import type { Claim, Platform } from "./platform.js";
import {
  type HomeOnServer,
  type LoggedIn,
  assertHomeFreeFor,
  forgetSession,
  loadSession,
  passwordAccount,
  requireLocalSession,
  saveSession,
} from "./session.js";
import { HeldMessages } from "./store/held.js";
import { type HistoryEntry, type HistoryQuery, OrderedHistory } from "./store/history.js";
import { Home } from "./store/home.js";
import { PersistedSeen } from "./store/seen.js";
import { SendQueue } from "./send-queue.js";
import { type SafetyReport, type TrustResult, markVerified, safetyReport, trustKeys } from "./trust.js";
import type { EndedSessionInfo, GroupInfo, GroupListResponse, SessionInfo } from "../protocol/http.js";

export interface ClientOptions {
  /** Where the home is: a folder on Node, a database's name in a browser. */
  home: string;
  /** The server's base URL, without a trailing slash: the one signup and login use. */
  server: string;
  /** The user named the server: a home logged in to another one is refused rather than used. */
  serverChosen?: boolean;
}

/** How signup and login get the password: asked only once the server was found to speak our protocol. */
export interface Credentials {
  password: () => Promise<string>;
  /** How `devices` lists this session. */
  deviceName?: string | undefined;
}

export interface AccountResult {
  username: string;
  fingerprint: string;
  server: string;
  /** The origin the password keys were derived under (PROTOCOL §3.2). */
  origin: string;
}

export interface LoginResult extends AccountResult {
  /** Sessions the server ended to make room for this one (the account was at its limit). */
  endedSessions: EndedSessionInfo[];
}

export interface Whoami {
  username: string;
  fingerprint: string;
  server: string;
  sessionId: string;
  expiresAt: number;
}

/** A direct conversation or a group. */
export type Recipient = { user: string } | { group: string };

export interface Sent extends SentMessage {
  /** The file that went with it, as uploaded. */
  file?: UploadedFile;
}

export interface ReceiveOptions {
  /** Who receives, as another process that tries to is told ("inbox", "listen", "chat"). */
  command: string;
  /**
   * "backlog": one connection, for what is queued (`synced` says when it all came) and whatever arrives
   * until `finish`; it ends if the connection drops. "live": reconnects by itself until `finish`.
   */
  mode: "backlog" | "live";
  /** Where received files go: a folder a person named, checked (and made) at once; else the home's. */
  outDir?: string;
  /**
   * Resolves once everything shown so far has left the process: awaited before acknowledging, so a
   * consumer that dies never misses a message the server forgot.
   */
  flushed?: () => Promise<void>;
  /** "live" only: a server out of reach at the start is retried like a dropped connection, not thrown. */
  startOffline?: boolean;
}

export class TelepoundClient {
  readonly events = new Emitter<ClientEvents>();
  readonly home: Home;
  readonly server: string;
  private readonly place: HomeOnServer;
  private me: LoggedIn | null = null;
  private contactBook: Contacts | null = null;
  private directory: GroupDirectory | null = null;
  private historyStore: OrderedHistory | null = null;
  /** Set while receiving: shared by the receiver and group sends, whose own copies come back. */
  private seen: PersistedSeen | null = null;
  private live: LiveConnection | null = null;

  private constructor(
    readonly platform: Platform,
    options: ClientOptions,
  ) {
    this.home = new Home(platform.home(options.home));
    this.server = options.server;
    this.place = {
      home: this.home,
      server: options.server,
      serverChosen: options.serverChosen ?? false,
      net: platform,
    };
  }

  /** The client of the home at `options.home`; installs the platform's cryptography for the process. */
  static async open(platform: Platform, options: ClientOptions): Promise<TelepoundClient> {
    installCryptoBackend(platform.crypto);
    return new TelepoundClient(platform, options);
  }

  /** Lets go of what the client holds open: the history, a live connection. */
  async close(): Promise<void> {
    await this.live?.close();
    this.live = null;
    this.historyStore?.close();
    this.historyStore = null;
  }

  // ---- accounts ---------------------------------------------------------------------------------

  /** The logged-in user of the home (session and keys), loaded once; AuthError when there is none. */
  async session(): Promise<LoggedIn> {
    this.me ??= await loadSession(this.place);
    return this.me;
  }

  async signup(username: string, credentials: Credentials): Promise<AccountResult> {
    await assertHomeFreeFor(this.place, username);
    const account = passwordAccount(this.place, username);
    const api = new Api(this.platform, this.server);
    await api.checkProtocol();
    const password = await credentials.password();
    const [identity, keys] = await Promise.all([generateIdentity(), derivePasswordKeys(password, account)]);
    const exported = await exportIdentity(identity);
    const publicKeys = { encryption: exported.encryptionPublic, signing: exported.signingPublic };
    const { deviceName } = credentials;
    const response = await api.signup({
      username,
      authKey: toBase64(keys.authKey),
      publicKeys,
      sealedPrivateKeys: sealPrivateKeys(keys.sealingKey, {
        encryptionPrivate: exported.encryptionPrivate,
        signingPrivate: exported.signingPrivate,
      }),
      ...(deviceName === undefined ? {} : { deviceName }),
    });
    if (
      response.username !== username ||
      response.publicKeys.encryption !== publicKeys.encryption ||
      response.publicKeys.signing !== publicKeys.signing
    ) {
      throw new NetworkError("protocol failure: the server's signup answer names other keys or another user");
    }
    await saveSession(this.place, account, response, exported);
    this.forgetLoaded();
    return {
      username: response.username,
      fingerprint: fingerprint(publicKeys),
      server: this.server,
      origin: account.origin,
    };
  }

  /** Logs in; a previous session of the same user on this home is ended on the server (best effort). */
  async login(username: string, credentials: Credentials): Promise<LoginResult> {
    const previous = await assertHomeFreeFor(this.place, username);
    const api = new Api(this.platform, this.server);
    await api.checkProtocol();
    const account = passwordAccount(this.place, username);
    const password = await credentials.password();
    const keys = await derivePasswordKeys(password, account);
    const { deviceName } = credentials;
    const response = await api.login({
      username,
      authKey: toBase64(keys.authKey),
      ...(deviceName === undefined ? {} : { deviceName }),
    });
    if (response.username !== username) {
      throw new NetworkError(
        `protocol failure: logged in as ${username} but the server answered for ${response.username}`,
      );
    }
    const privateKeys = unsealPrivateKeys(keys.sealingKey, response.sealedPrivateKeys);
    const exported: ExportedIdentity = {
      encryptionPublic: response.publicKeys.encryption,
      signingPublic: response.publicKeys.signing,
      ...privateKeys,
    };
    // The keys must import before they replace anything in the home.
    await importIdentity(exported);
    if (previous && previous.server === this.server) {
      await api
        .withToken(previous.token)
        .logout()
        .catch(() => undefined);
    }
    await saveSession(this.place, account, response, exported);
    this.forgetLoaded();
    return {
      username,
      fingerprint: fingerprint(response.publicKeys),
      server: this.server,
      origin: account.origin,
      endedSessions: (response.endedSessions ?? []).filter((session) => session.id !== previous?.sessionId),
    };
  }

  /** Ends the session on the server (one already ended is fine) and removes it and the keys from the home. */
  async logout(): Promise<{ username: string }> {
    const session = await this.home.read("session.json");
    if (!session) throw new AuthError(`not logged in on ${this.home.location}`);
    try {
      await new Api(this.platform, session.server, session.token).logout();
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
    }
    await forgetSession(this.place);
    this.forgetLoaded();
    return { username: session.username };
  }

  /** The logged-in user, as the server confirms it. */
  async whoami(): Promise<Whoami> {
    const me = await this.session();
    const answer = await me.api.whoami();
    if (answer.username !== me.username) {
      throw new NetworkError(
        `protocol failure: this home is ${me.username} but the server says ${answer.username}`,
      );
    }
    return {
      username: me.username,
      fingerprint: me.fingerprint,
      server: me.server,
      sessionId: answer.sessionId,
      expiresAt: answer.expiresAt,
    };
  }

  /** The account's sessions, this one marked `current`. */
  async devices(): Promise<SessionInfo[]> {
    const me = await this.session();
    return (await me.api.sessions()).sessions;
  }

  /** Ends the one session whose id starts with `prefix` (hex); never this home's own. */
  async revokeDevice(prefix: string): Promise<SessionInfo> {
    const sessions = await this.devices();
    const matches = sessions.filter((session) => session.id.startsWith(prefix));
    if (matches.length === 0)
      throw new NotFoundError(`no session ${prefix} on this account (see "telepound devices")`);
    if (matches.length > 1) {
      throw new UsageError(`${prefix} matches ${matches.length} sessions: give more of the id`);
    }
    const target = matches[0]!;
    if (target.current) {
      throw new UsageError(`${prefix} is this home's own session: run "telepound logout" to end it`);
    }
    await (await this.session()).api.revokeSession(target.id);
    return target;
  }

  // ---- contacts and trust -----------------------------------------------------------------------

  /** Asks the server for the user's keys, checks them against the pin (pinning a first contact). */
  async lookupUser(username: string): Promise<ResolvedContact> {
    return (await this.contacts()).lookup(username);
  }

  /** The user's pinned keys (pinned now, from the server, on first contact). */
  async contact(username: string): Promise<ResolvedContact> {
    return (await this.contacts()).resolve(username);
  }

  /** The safety number to compare with `username`, and whether their keys are verified or changed. */
  async safetyNumber(username: string): Promise<SafetyReport> {
    return safetyReport(await this.contacts(), await this.session(), username);
  }

  /** Marks the keys of a report verified (refused for keys not accepted yet); returns when (ISO 8601). */
  async markVerified(report: SafetyReport): Promise<string> {
    return markVerified(await this.contacts(), report);
  }

  /** Accepts the keys the server now gives for `username`; `held`: their messages waiting in the hold. */
  async trust(username: string): Promise<{ result: TrustResult; held: number }> {
    const me = await this.session();
    const result = await trustKeys(await this.contacts(), me, username);
    const held =
      result.outcome === "replaced" ? await new HeldMessages(this.home, me.username).countFrom(username) : 0;
    return { result, held };
  }

  // ---- sending ----------------------------------------------------------------------------------

  /**
   * Sends `text` (and the file at `file`, encrypted) to a user or a group, and resolves once the server
   * delivered or stored it. Everything that can fail without the network (the file) fails first, then
   * everything that can fail without an upload (unknown user, changed keys, a group not ours); a file
   * uploaded for a message that was then not sent is withdrawn. While receiving live, the message goes
   * over that connection, waiting for it to come back if it is down; otherwise over a send-only one.
   */
  async send(to: Recipient, message: { text: string; file?: string | undefined }): Promise<Sent> {
    const file = message.file === undefined ? null : await checkSendable(this.platform.files, message.file);
    const me = await this.session();
    const live = this.live ? await this.live.whenConnected() : null;
    const contacts = await this.contacts();
    const groups = await this.groups();
    const events = this.events;
    const groupState = "group" in to ? await groupToSealFor({ me, events, groups }, to.group) : undefined;
    if ("user" in to) {
      const recipient = await contacts.resolveFresh(to.user);
      if (recipient.newlyPinned) {
        events.emit("warning", {
          message: `first contact with ${to.user}: pinned their key fingerprint ${recipient.fingerprint}`,
        });
      }
    }
    if (groupState) await contacts.resolveMany(groupState.members, { fresh: true });
    const history = await this.history$();
    let uploaded: UploadedFile | null = null;
    if (file) {
      const audience = "user" in to ? { to: to.user } : { group: to.group };
      uploaded = await uploadFile(me.api, { files: this.platform.files, events }, file, audience);
    }
    const payload = { text: message.text, ...(uploaded ? { attachment: uploaded.descriptor } : {}) };
    try {
      const connection =
        live ??
        (await Connection.open({
          net: me.api.net,
          server: me.server,
          token: me.session.token,
          receive: false,
        }));
      try {
        const outbox: Outbox = {
          home: this.home,
          me,
          contacts,
          connection,
          events,
          groups,
          history,
          ...(this.seen ? { seen: this.seen } : {}),
        };
        const sent =
          "user" in to
            ? await sendDirect(outbox, to.user, payload)
            : await sendToGroup(outbox, to.group, payload, groupState);
        return { ...sent, ...(uploaded ? { file: uploaded } : {}) };
      } finally {
        if (!live) await connection.close();
        await groups.save();
      }
    } catch (error) {
      // Nobody will ever get the key to it: withdraw the blob rather than leave it for a week.
      if (uploaded) await me.api.deleteBlob(uploaded.descriptor.blob).catch(() => undefined);
      throw error;
    }
  }

  /**
   * The messages waiting to be sent for the logged-in user, kept in the home across processes
   * (send-queue.ts): a face that queues what is typed offline sends them with `send` and removes each.
   */
  async sendQueue(): Promise<SendQueue> {
    return new SendQueue(this.home, (await this.session()).username, () => this.platform.clock.now());
  }

  /** Whether a live connection is up now (sends wait for it otherwise). */
  get connected(): boolean {
    return this.live?.current != null;
  }

  // ---- receiving --------------------------------------------------------------------------------

  /**
   * Starts receiving for this home: claims the right to (one receiver per home), connects, and emits
   * every verified message, group change, warning, key change and held message as it comes; each is
   * recorded in the history and acknowledged only after it was emitted (and `flushed`).
   */
  async receive(options: ReceiveOptions): Promise<Reception> {
    const me = await this.session();
    const outDir =
      options.outDir === undefined ? this.home.downloads : this.platform.files.resolveFolder(options.outDir);
    // A folder given on purpose is checked (and made) now, not at the first file.
    if (options.outDir !== undefined) await ensureFolder(this.platform.files, outDir);
    const claim = await this.home.claimReceiver(options.command);
    try {
      const history = await this.history$();
      const contacts = await this.contacts();
      const groups = await this.groups();
      this.seen = await PersistedSeen.load(this.home, me.username);
      const reception = new Reception(this, claim);
      const receiver = await Receiver.create({
        home: this.home,
        me,
        contacts,
        events: this.events,
        groups,
        seen: this.seen,
        history,
        files: { outDir, access: this.platform.files },
        ack: (id) => reception.ack(id),
        ...(options.flushed ? { flushed: options.flushed } : {}),
        onFatal: (error) => reception.stop(error),
      });
      reception.receiver = receiver;
      const handlers = {
        onDelivery: (frame: Uint8Array) => receiver.push(frame),
        onEvent: (event: Parameters<Receiver["pushEvent"]>[0]) => receiver.pushEvent(event),
        onServerError: (error: Error) => this.events.emit("warning", { message: error.message }),
      };
      this.events.emit("connection", { state: "connecting" });
      if (options.mode === "backlog") {
        const connection = await Connection.open({
          net: me.api.net,
          server: me.server,
          token: me.session.token,
          receive: true,
          ...handlers,
          onClose: (error) => reception.stop(error),
        });
        reception.connection = connection;
        reception.synced = connection.synced;
      } else {
        this.live = await LiveConnection.open({
          me,
          ...handlers,
          onLost: (cause, retryInMs) =>
            this.events.emit("connection", {
              state: "reconnecting",
              cause: cause.message,
              retryInMs,
              retryAt: this.platform.clock.now() + retryInMs,
            }),
          onReconnected: () => this.events.emit("connection", { state: "reopened" }),
          onFatal: (error) => reception.stop(error),
          ...(options.startOffline ? { startOffline: true } : {}),
        });
        reception.live = this.live;
        reception.synced = this.live.current?.synced ?? Promise.resolve();
        // Started offline: "reconnecting" was told instead, and "reopened" will follow.
        if (!this.live.current) return reception;
      }
      this.events.emit("connection", { state: "open" });
      return reception;
    } catch (error) {
      this.seen = null;
      await claim.release();
      throw error;
    }
  }

  /** Called by a reception that finished: sends go over send-only connections again. */
  ended(reception: Reception): void {
    if (reception.live && this.live === reception.live) this.live = null;
    this.seen = null;
    this.events.emit("connection", { state: "closed" });
  }

  // ---- history ----------------------------------------------------------------------------------

  /** Messages and group changes kept on this device, newest last; needs no keys and no server. */
  async history(query: HistoryQuery): Promise<HistoryEntry[]> {
    return (await this.history$(await requireLocalSession(this.place))).list(query);
  }

  // ---- groups -----------------------------------------------------------------------------------

  /** Creates `name` with this user as admin; users who have not written to them are invited instead. */
  async createGroup(name: string, users: readonly string[]): Promise<CreatedGroup> {
    return createGroup(await this.changer(), name, users);
  }

  /** Adds `user` to `name`, or invites them where they must consent first (admin only). */
  async addMember(name: string, user: string): Promise<MemberChange> {
    return changeMember(await this.changer(), name, "add", user);
  }

  /** Removes `user` from `name`, or withdraws their invitation (admin only). */
  async removeMember(name: string, user: string): Promise<MemberChange> {
    return changeMember(await this.changer(), name, "remove", user);
  }

  async joinGroup(name: string): Promise<GroupInfo> {
    return joinGroup(await this.changer(), name);
  }

  async declineGroup(name: string): Promise<void> {
    return declineGroup(await this.changer(), name);
  }

  async leaveGroup(name: string): Promise<void> {
    return leaveGroup(await this.changer(), name);
  }

  /** The group as the server has it now, its chain verified up to that head first. */
  async groupInfo(name: string): Promise<GroupInfo> {
    return (await (await this.groups()).catchUp(name)).info;
  }

  /** The groups this user is in and the invitations waiting for an answer (the server's word). */
  async listGroups(): Promise<GroupListResponse> {
    return (await this.session()).api.groups();
  }

  // ---- internals --------------------------------------------------------------------------------

  private async contacts(): Promise<Contacts> {
    this.contactBook ??= new Contacts(this.home, await this.session());
    return this.contactBook;
  }

  private async groups(): Promise<GroupDirectory> {
    this.directory ??= await GroupDirectory.load(this.home, await this.session(), await this.contacts());
    return this.directory;
  }

  private async changer() {
    return { me: await this.session(), groups: await this.groups(), events: this.events };
  }

  /** The history of the logged-in user (or of `owner`, for a home whose session need not be valid). */
  private async history$(owner?: string): Promise<OrderedHistory> {
    this.historyStore ??= new OrderedHistory(
      await this.home.openHistory(owner ?? (await this.session()).username),
    );
    return this.historyStore;
  }

  /** A new session (or none): what was loaded for the previous one no longer applies. */
  private forgetLoaded(): void {
    this.me = null;
    this.contactBook = null;
    this.directory = null;
    this.historyStore?.close();
    this.historyStore = null;
  }
}

/** Receiving in progress (TelepoundClient.receive): its connection, its counts, and how it ends. */
export class Reception {
  /** Backlog mode: resolves once everything queued before connecting has arrived. */
  synced: Promise<void> = Promise.resolve();
  /**
   * Rejects when receiving cannot go on (a failure that is not a message's fault, the session ended, a
   * backlog connection dropped) or resolves on `stop()`: what a face waits on while it receives.
   */
  readonly ended: Promise<void>;
  receiver!: Receiver;
  connection: Connection | null = null;
  live: LiveConnection | null = null;
  private settle!: (error: unknown) => void;
  private finished: Promise<void> | null = null;

  constructor(
    private readonly client: TelepoundClient,
    private readonly claim: Claim,
  ) {
    this.ended = new Promise<void>((done, fail) => {
      let settled = false;
      this.settle = (error) => {
        if (settled) return;
        settled = true;
        if (error) fail(error);
        else done();
      };
    });
    this.ended.catch(() => undefined);
  }

  /** How many messages were shown, dropped as duplicates or invalid, held; changes shown. */
  get counts(): Receiver["counts"] {
    return this.receiver.counts;
  }

  /** Messages held for a key change in this run, by sender. */
  get heldFrom(): ReadonlyMap<string, number> {
    return this.receiver.heldFrom;
  }

  /** Ends `ended`: with `error`, as a failure. */
  stop(error?: unknown): void {
    this.settle(error ?? null);
  }

  ack(id: string): void {
    (this.live ?? this.connection)?.ack(id);
  }

  /**
   * Finishes what arrived (emitted, recorded, acknowledged), closes the connection and lets go of the
   * claim; rethrows a failure that stopped processing. Safe to call again.
   */
  async finish(): Promise<void> {
    this.finished ??= (async () => {
      try {
        await this.receiver.drain();
      } finally {
        await (this.live ?? this.connection)?.close();
        this.client.ended(this);
        await this.claim.release();
      }
    })();
    return this.finished;
  }
}
