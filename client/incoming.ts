// Receiving: each delivery frame is decoded, checked against the sender's pinned key (and, for a group
// message, against the group's members at its epoch), opened, de-duplicated, its file (if any) saved, and
// shown, in arrival order; then its id and its sender device's sequence are recorded and only after that
// acknowledged. The sequence (sequences.ts) refuses a replay of any age and reports a gap (messages
// withheld) or a late arrival (out of order). Membership events are signed statements: verified and
// adopted into the group's chain (groups.ts) before they are shown and acknowledged. A sent copy (PROTOCOL
// §5.12) is a direct message this user sent from another device: shown and recorded as sent by us to its
// target, its sequence counted apart from that conversation's received messages.
//
// A message that fails verification is reported on stderr and acknowledged anyway: the server would
// otherwise redeliver it forever. A failure that is not the message's fault (server unreachable, session
// revoked) stops processing instead and leaves the message queued for next time.
//
// Unless its sender's keys changed: a message that fails under the pinned keys while the server gives
// other keys for its sender is held (held.ts), neither shown nor dropped, with one loud warning per sender
// per run. Held messages are checked again each time a receiver starts; after `trust` they are shown.

import { frameMessageId } from "../protocol/envelope.js";
import { toHex } from "../protocol/bytes.js";
import type { EventFrame } from "../protocol/frames.js";
import {
  CryptoError,
  ReplayGuard,
  TamperedMessageError,
  UnwrapCache,
  type UnwrapCacheJson,
  type OpenedMessage,
  openEnvelope,
  readDelivery,
  replayId,
} from "./crypto/index.js";
import {
  type Contacts,
  PENDING_CHANGE_CONSEQUENCE,
  type ResolvedContact,
  keyChangeMessage,
  samePublicKeys,
} from "./contacts.js";
import { KeyMismatchError, NotFoundError, RefusedError, describeError } from "./errors.js";
import { FileRejectedError, parseDescriptor, receiveFile } from "./files.js";
import type { GroupDirectory } from "./groups.js";
import { HELD_LIMIT, HeldMessages } from "./store/held.js";
import type { Home } from "./store/home.js";
import type { NewEntry, OrderedHistory } from "./store/history.js";
import { summarizeEvent } from "./describe.js";
import { type ClientEmitter, type ShownEvent, type ShownMessage, eventOfEpoch } from "./events.js";
import type { FileAccess } from "./platform.js";
import { PersistedSeen } from "./store/seen.js";
import { PersistedSequences, type SequenceVerdict } from "./store/sequences.js";
import type { LoggedIn } from "./session.js";

/** Acks wait this long for more messages to share one seen.json write. */
const COMMIT_DELAY_MS = 25;
const COMMIT_BATCH = 500;

export interface ReceiverOptions {
  home: Home;
  me: LoggedIn;
  contacts: Contacts;
  /** Where messages, changes, warnings, key changes, held messages and file progress are told. */
  events: ClientEmitter;
  /** What this device knows about its groups: group messages are checked against it, events update it. */
  groups: GroupDirectory;
  /** Where received files are saved, and the platform's files to save them with. */
  files: { outDir: string; access: FileAccess };
  /** The seen-ids set to use (chat shares it with its sends); loaded from the home if not given. */
  seen?: PersistedSeen;
  /** Acknowledges a message id to the server (Connection.ack). */
  ack: (messageId: string) => void;
  /** Called once when processing stops on a failure that is not the message's fault. */
  onFatal?: (error: unknown) => void;
  /**
   * Where shown messages and events are kept: held in the order shown (sends in between keep their
   * place) and written before they are acknowledged.
   */
  history?: OrderedHistory;
  /**
   * Resolves once everything shown so far has left the process (stdout flushed to a pipe or file):
   * awaited before acknowledging, so a consumer that dies never misses a message the server forgot.
   */
  flushed?: () => Promise<void>;
}

export class Receiver {
  private chain: Promise<void> = Promise.resolve();
  private toAck: string[] = [];
  private commitTimer: ReturnType<typeof setTimeout> | null = null;
  private committing: Promise<void> = Promise.resolve();
  /** The cache's key ids when last saved: rewriting state.json is skipped when no key was added. */
  private savedCacheIds = "";
  private fatal: unknown = null;
  /**
   * How many messages were shown, dropped as duplicates, dropped as invalid, and held because their
   * sender's keys changed (heldFrom: per sender); events shown.
   */
  readonly counts = { shown: 0, duplicates: 0, rejected: 0, held: 0, events: 0 };
  readonly heldFrom = new Map<string, number>();
  /** Senders found with changed keys in this run: warned about once, their failing messages held unasked. */
  private readonly changedSenders = new Set<string>();
  /** Held messages being checked again: once acknowledged, their copy in the hold is let go. */
  private readonly replaying = new Set<string>();

  private constructor(
    private readonly options: ReceiverOptions,
    private readonly seen: PersistedSeen,
    private readonly sequences: PersistedSequences,
    private readonly guard: ReplayGuard,
    private readonly unwrapCache: UnwrapCache,
    private readonly held: HeldMessages,
  ) {
    this.savedCacheIds = cacheIds(unwrapCache.toJSON());
  }

  static async create(options: ReceiverOptions): Promise<Receiver> {
    const seen = options.seen ?? (await PersistedSeen.load(options.home, options.me.username));
    const state = await options.home.read("state.json");
    let cache = new UnwrapCache();
    if (state?.username === options.me.username && state.unwrapCache !== undefined) {
      try {
        cache = UnwrapCache.fromJSON(state.unwrapCache);
      } catch (error) {
        // Only a cache: an empty one costs one RSA decryption per conversation.
        if (!(error instanceof CryptoError)) throw error;
      }
    }
    const held = new HeldMessages(options.home, options.me.username);
    const receiver: Receiver = new Receiver(
      {
        ...options,
        // A held message checked again was acknowledged to the server when it was held: its ack lets go
        // of our copy instead.
        ack: (id) => {
          if (!receiver.letGo(id)) options.ack(id);
        },
      },
      seen,
      await PersistedSequences.load(options.home, options.me.username),
      new ReplayGuard(seen),
      cache,
      held,
    );
    // First, before anything the server sends: they are older.
    for (const id of await held.ids()) receiver.replay(id);
    return receiver;
  }

  /** Queues a delivery frame; frames are processed one at a time, in the order pushed. */
  push(frame: Uint8Array): void {
    this.chain = this.chain.then(async () => {
      if (this.fatal) return;
      try {
        await this.process(frame);
      } catch (error) {
        this.fail(error);
      }
    });
  }

  /**
   * Queues a group membership event. Only its signed statement counts: verified against the group's
   * chain (groups.ts; missing epochs fetched and verified first) and adopted, then every verified change
   * not shown yet is shown with who signed it, and the event acknowledged. A replay of a known statement
   * changes nothing; a fork is warned about loudly; anything unverifiable is dropped with a warning.
   */
  pushEvent(event: EventFrame): void {
    this.chain = this.chain.then(async () => {
      if (this.fatal) return;
      try {
        const { groups } = this.options;
        const outcome = await groups.learn(event.group, event);
        if (outcome.kind === "fork") this.warn(outcome.message);
        else if (outcome.kind === "refused")
          this.warn(`ignored a membership event for the group ${event.group}: ${outcome.reason}`);
        this.showVerifiedChanges(event.group);
        this.queueAck(event.id);
      } catch (error) {
        this.fail(error);
      }
    });
  }

  /** Shows (and records) every verified change of `group` not shown yet: events and catch-ups alike. */
  private showVerifiedChanges(group: string): void {
    const { groups, events, me } = this.options;
    const unshown = groups.unshown(group);
    for (const epoch of unshown) {
      const shown = eventOfEpoch(group, epoch, me.username);
      events.emit("groupEvent", shown);
      this.counts.events++;
      this.hold(eventEntry(shown, epoch.hash, me.username));
    }
    groups.markShown(group, unshown);
  }

  /** Waits until every pushed frame is processed, recorded and acknowledged; rethrows a fatal failure. */
  async drain(): Promise<void> {
    await this.chain;
    await this.commit();
    if (this.fatal) throw this.fatal;
  }

  private async process(frame: Uint8Array): Promise<void> {
    const { me } = this.options;
    let envelope: ReturnType<typeof readDelivery>;
    try {
      envelope = readDelivery(frame);
    } catch (error) {
      if (!(error instanceof CryptoError)) throw error;
      const id = frameMessageId(frame);
      this.warn(`dropped a malformed message${id ? ` (${id})` : ""}: ${reasonOf(error)}`);
      this.counts.rejected++;
      if (id) this.queueAck(id);
      return;
    }
    const { header, messageIdHex } = envelope;
    const reject = (why: string) => {
      this.warn(`dropped a message from ${header.sender} (${messageIdHex}): ${why}`);
      this.counts.rejected++;
      this.queueAck(messageIdHex);
    };

    let sender: ResolvedContact;
    try {
      sender = await this.options.contacts.resolveForReceiving(header.sender);
    } catch (error) {
      if (error instanceof NotFoundError) return reject("the sender has no account on the server");
      if (error instanceof KeyMismatchError) return reject(error.message);
      if (error instanceof CryptoError)
        return reject(`the sender's published keys are invalid: ${reasonOf(error)}`);
      throw error;
    }
    // A group message is checked against the members of the epoch it names, as signed statements prove
    // them (groups.ts): an epoch that cannot be verified (or that we were not part of, 403, or that does
    // not exist, 404, or that is forked) rejects it.
    let expected: { expectedMembers: string[]; expectedEpoch: number } | null = null;
    if (header.kind === "group") {
      try {
        expected = {
          expectedMembers: await this.options.groups.membersAt(header.target, header.epoch),
          expectedEpoch: header.epoch,
        };
      } catch (error) {
        if (
          error instanceof RefusedError ||
          error instanceof NotFoundError ||
          error instanceof KeyMismatchError
        )
          return reject(error.message);
        throw error;
      }
      this.showVerifiedChanges(header.target);
    }
    let opened: Awaited<ReturnType<typeof openEnvelope>> | "changed";
    try {
      opened = await this.openAsSender(header.sender, sender, (contact) =>
        openEnvelope(envelope, {
          me: me.username,
          encryptionPrivateKey: me.identity.encryption.privateKey,
          senderSigningKey: contact.keys.signing,
          unwrapCache: this.unwrapCache,
          ...expected,
        }),
      );
    } catch (error) {
      if (error instanceof CryptoError) return reject(`verification failed: ${reasonOf(error)}`);
      throw error;
    }
    if (opened === "changed") {
      // One checked again from the hold stays there. A new one is kept in the home before it is
      // acknowledged to the server, so the ack loses nothing.
      const fromHold = this.replaying.delete(messageIdHex);
      if (!fromHold) {
        if (!(await this.held.keep(messageIdHex, frame))) {
          return reject(`its sender's keys changed, and ${HELD_LIMIT} messages are held already`);
        }
        this.queueAck(messageIdHex);
      }
      this.counts.held++;
      const count = (this.heldFrom.get(header.sender) ?? 0) + 1;
      this.heldFrom.set(header.sender, count);
      this.options.events.emit("held", { from: header.sender, id: messageIdHex, count });
      return;
    }
    const id = replayId(opened.header);
    // Our own group message, handed back: the sending process recorded its id, perhaps after we loaded.
    if (header.sender === me.username && !this.seen.has(id)) await this.seen.refresh();
    // After opening, never before: an unverified frame must not get a real message's id marked as seen.
    // Checked here but recorded only once any file is saved: a download that fails for a reason that is
    // not the message's (server unreachable) leaves it unacknowledged and unrecorded, for next time.
    if (this.seen.has(id)) {
      this.counts.duplicates++;
      this.queueAck(messageIdHex);
      return;
    }
    const order = await this.orderOf(opened);
    if (order.kind === "replay") {
      this.counts.duplicates++;
      this.queueAck(messageIdHex);
      return;
    }
    const message: ShownMessage = {
      id: messageIdHex,
      from: header.sender,
      to: header.target,
      ...(header.kind === "group" ? { group: header.target } : {}),
      ...(header.sender === me.username ? { direction: "out" as const } : {}),
      text: opened.payload.text,
      sentAt: header.sentAt,
      ...(order.kind === "late" ? { outOfOrder: true } : {}),
      ...(order.kind === "next" && order.missedBefore > 0 ? { missedBefore: order.missedBefore } : {}),
    };
    if (opened.payload.attachment !== undefined) {
      Object.assign(message, await this.receiveAttachment(opened.payload.attachment, header.sender));
    }
    if (message.missedBefore !== undefined) this.warn(gapWarning(message, opened.payload.deviceId));
    this.guard.accept(id);
    this.sequences.accept(header, opened.payload);
    this.options.events.emit("message", message);
    this.counts.shown++;
    this.hold(messageEntry(message));
    this.queueAck(messageIdHex);
  }

  /**
   * Where a verified message stands among its sender device's. A replay is refused whatever its age;
   * another user's that the id set missed (older than seen.json remembers) is reported. Our own message
   * from this device looks new until we adopt what `send` recorded in another process since we loaded.
   */
  private async orderOf(opened: OpenedMessage): Promise<SequenceVerdict> {
    const { header, payload } = opened;
    const mine = header.sender === this.options.me.username;
    let order = this.sequences.check(header, payload);
    if (order.kind !== "replay" && mine) {
      await this.sequences.refresh();
      order = this.sequences.check(header, payload);
    }
    if (order.kind === "replay" && !mine) {
      this.warn(
        `dropped a message from ${header.sender} (${toHex(header.messageId)}): a replay of message ` +
          `${payload.sequence} from their device ${deviceLabel(payload.deviceId)}, ` +
          `shown before (or too old to tell)`,
      );
    }
    return order;
  }

  /**
   * Opens a message with its sender's pinned keys. If they do not verify it, the server is asked for the
   * sender's keys now: other keys than the pin mean the sender's keys changed ("changed": the change is
   * recorded, warned about once, and the message is to be held); the pinned keys mean a forgery (the
   * error is rethrown). A pin replaced meanwhile (`trust` in another terminal) is tried once more.
   */
  private async openAsSender<T>(
    name: string,
    pinned: ResolvedContact,
    open: (contact: ResolvedContact) => Promise<T>,
  ): Promise<T | "changed"> {
    try {
      return await open(pinned);
    } catch (error) {
      if (!(error instanceof CryptoError) || name === this.options.me.username) throw error;
      if (this.changedSenders.has(name)) return "changed";
      let check: Awaited<ReturnType<Contacts["check"]>>;
      try {
        check = await this.options.contacts.check(name);
      } catch (lookupError) {
        // No account, or keys that do not even parse: nothing the message could be signed with.
        if (lookupError instanceof NotFoundError || lookupError instanceof CryptoError) throw error;
        throw lookupError;
      }
      if (check.changed) {
        this.changedSenders.add(name);
        this.options.events.emit("keyChange", {
          user: name,
          message: keyChangeMessage(check.contact, PENDING_CHANGE_CONSEQUENCE),
        });
        return "changed";
      }
      if (samePublicKeys(check.contact.publicKeys, pinned.publicKeys)) throw error;
      return open(check.contact);
    }
  }

  /** Queues a held message to be checked again, as if the server had just delivered it. */
  private replay(id: string): void {
    this.chain = this.chain.then(async () => {
      if (this.fatal) return;
      try {
        const frame = await this.held.read(id);
        if (!frame) return;
        // A copy that does not carry its own id was damaged on disk: nothing could ever settle it.
        if (frameMessageId(frame) !== id) return this.held.release(id);
        this.replaying.add(id);
        await this.process(frame);
      } catch (error) {
        this.fail(error);
      }
    });
  }

  /** Called with each ack: true if `id` was a held message checked again, whose copy is now let go. */
  private letGo(id: string): boolean {
    if (!this.replaying.delete(id)) return false;
    this.held.release(id);
    return true;
  }

  /**
   * Saves the file a verified message carries, then tells the server this session has it (which lets it
   * delete the blob once every session it was sent to has). A file that fails its checks is reported and
   * the message still shown.
   */
  private async receiveAttachment(
    attachment: unknown,
    sender: string,
  ): Promise<Pick<ShownMessage, "file" | "fileError">> {
    const { me, files, events } = this.options;
    try {
      const file = await receiveFile(
        me.api,
        { files: files.access, events },
        attachment,
        sender,
        files.outDir,
      );
      // Our own file (another device of ours sent it) is confirmed with POST: the owner's DELETE would
      // withdraw it from everyone who has not fetched it yet.
      const blob = parseDescriptor(attachment, sender).blob;
      const confirmed = sender === me.username ? me.api.confirmBlobFetched(blob) : me.api.deleteBlob(blob);
      await confirmed.catch((error: unknown) => {
        this.warn(`could not confirm the file ${file.name} to the server: ${describeError(error).message}`);
      });
      return { file };
    } catch (error) {
      if (!(error instanceof FileRejectedError)) throw error;
      this.warn(`the file from ${sender} was not saved: ${error.message}`);
      return { fileError: error.message };
    }
  }

  private hold(entry: NewEntry): void {
    this.options.history?.hold([entry]);
  }

  private warn(message: string): void {
    this.options.events.emit("warning", { message });
  }

  private queueAck(id: string): void {
    this.toAck.push(id);
    if (this.toAck.length >= COMMIT_BATCH) this.commitInBackground();
    else this.commitTimer ??= setTimeout(() => this.commitInBackground(), COMMIT_DELAY_MS);
  }

  private commitInBackground(): void {
    this.commit().catch((error: unknown) => this.fail(error));
  }

  private fail(error: unknown): void {
    if (this.fatal) return;
    this.fatal = error;
    this.options.onFatal?.(error);
  }

  /**
   * seen.json, sequences.json and the unwrap cache first, then the acks: an acknowledged message is never
   * shown again.
   */
  private commit(): Promise<void> {
    if (this.commitTimer) clearTimeout(this.commitTimer);
    this.commitTimer = null;
    this.committing = this.committing.then(async () => {
      if (this.toAck.length === 0) return;
      const ids = this.toAck;
      this.toAck = [];
      await this.options.flushed?.();
      // Everything held was shown before these ids were queued: written before they are acknowledged.
      await this.options.history?.record([]);
      await this.seen.commit();
      await this.sequences.commit();
      await this.options.groups.save();
      await this.saveUnwrapCache();
      for (const id of ids) this.options.ack(id);
    });
    return this.committing;
  }

  private async saveUnwrapCache(): Promise<void> {
    const { home, me } = this.options;
    const json = this.unwrapCache.toJSON();
    const ids = cacheIds(json);
    if (ids === this.savedCacheIds) return;
    await home.withLock(async () => {
      const state = await home.read("state.json");
      const mine = state?.username === me.username ? state : { username: me.username, counter: 0 };
      await home.write("state.json", { ...mine, unwrapCache: json });
    });
    this.savedCacheIds = ids;
  }
}

/**
 * "2 messages from bob (device 1a2b3c4d) in group team before this one were not delivered", or for sent
 * copies "1 of your messages to bob from your device 1a2b3c4d before this one was not delivered".
 */
function gapWarning(message: ShownMessage, deviceId: Uint8Array): string {
  const count = message.missedBefore ?? 0;
  const plural = count === 1 ? "" : "s";
  const what =
    message.direction === "out" && message.group === undefined
      ? `${count} of your messages to ${message.to} from your device ${deviceLabel(deviceId)}`
      : `${count} message${plural} from ${message.from} (device ${deviceLabel(deviceId)})` +
        (message.group === undefined ? "" : ` in group ${message.group}`);
  return `${what} before this one ${count === 1 ? "was" : "were"} not delivered`;
}

/** A device as people see it: the first 8 hex digits of its id. */
function deviceLabel(deviceId: Uint8Array): string {
  return toHex(deviceId).slice(0, 8);
}

function messageEntry(message: ShownMessage): NewEntry {
  const { id, from, to, group, direction, text, sentAt, file, outOfOrder, missedBefore } = message;
  return {
    id,
    kind: "message",
    direction: direction ?? "in",
    from,
    to,
    ...(group === undefined ? {} : { group }),
    text,
    sentAt,
    ...(file ? { file } : {}),
    ...(outOfOrder ? { outOfOrder } : {}),
    ...(missedBefore === undefined ? {} : { missedBefore }),
  };
}

/** A verified change in the history, under its statement's hash (one entry per change, however often shown). */
function eventEntry(event: ShownEvent, hash: string, me: string): NewEntry {
  // The text says "you" for this user; the fields name everyone, as --json does.
  const { at, viewer, ...fields } = event;
  return {
    id: `event/${hash}`,
    kind: "event",
    direction: event.by === me ? "out" : "in",
    from: event.by,
    to: event.group,
    group: event.group,
    text: summarizeEvent({ ...fields, viewer }),
    sentAt: at,
    event: fields,
  };
}

function cacheIds(json: UnwrapCacheJson): string {
  return json.entries
    .map(([id]) => id)
    .sort()
    .join();
}

function reasonOf(error: CryptoError): string {
  return error instanceof TamperedMessageError ? error.reason : error.message;
}
