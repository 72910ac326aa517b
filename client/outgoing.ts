// Sending one message, to a user or to a group: resolve the recipients' pinned keys (checked against the
// server's once per process, so a key change stops the send), seal under the home's lock (so the device
// counter, the conversation's sequence and conversation keys are never reused or lost), upload, and wait
// for the server's answer. A group message refused for a stale epoch is sealed again for the group's new
// members, under the same sequence. A direct message is followed by its sent copy (PROTOCOL §5.12), sealed
// for ourselves, so the account's other devices show it too; a group message needs none (every member's
// sessions get it, ours included).

import { fromHex } from "../protocol/bytes.js";
import {
  CryptoError,
  type Payload,
  SenderKeyring,
  type SealedMessage,
  type SenderSequence,
  newDeviceId,
  replayId,
  sealMessage,
} from "./crypto/index.js";
import type { Connection, UploadStatus } from "./net/connection.js";
import type { Contacts } from "./contacts.js";
import { RateLimitedError, RefusedError, StaleEpochError, describeError } from "./errors.js";
import { stopAtUnshownChanges } from "./group-changes.js";
import type { EpochMembers, GroupDirectory } from "./groups.js";
import { FileDescriptor } from "../protocol/payload.js";
import type { HistoryStore } from "./store/history.js";
import type { Home } from "./store/home.js";
import type { ClientEmitter } from "./events.js";
import { PersistedSeen } from "./store/seen.js";
import { PersistedSequences, conversationOf } from "./store/sequences.js";
import type { LoggedIn } from "./session.js";

/** Pauses before each retry of a rate-limited upload. */
const RATE_LIMIT_RETRY_MS = [200, 600, 1500];
/** Seals for a group's new epoch this many times before giving up on a group that keeps changing. */
export const STALE_EPOCH_ATTEMPTS = 4;

export interface SentMessage {
  id: string;
  /** The recipient's username, or the group's name. */
  to: string;
  /** Set for a group message: the group's name (also in `to`). */
  group?: string;
  /** The epoch a group message was sealed for. */
  epoch?: number;
  status: UploadStatus;
  /** The sender's clock when sealed, ms since the Unix epoch. */
  sentAt: number;
}

export interface Outbox {
  home: Home;
  me: LoggedIn;
  contacts: Contacts;
  connection: Connection;
  /** Where warnings (a first contact, unreadable stored keys) and shown group changes are told. */
  events: ClientEmitter;
  /** Group sends: where the group's epoch and members come from. */
  groups?: GroupDirectory;
  /**
   * Group sends: where the message's own id is recorded before it goes out, because the server hands it
   * back to every session of ours, this one included. chat passes its receiver's set; otherwise
   * seen.json is loaded for the occasion.
   */
  seen?: PersistedSeen;
  /** Where a message the server accepted is recorded (as sent); none: not recorded. */
  history?: HistoryStore;
}

export async function sendText(outbox: Outbox, to: string, text: string): Promise<SentMessage> {
  return sendDirect(outbox, to, { text });
}

export async function sendDirect(outbox: Outbox, to: string, payload: Payload): Promise<SentMessage> {
  // Asks the server once per process whether the pinned keys are still theirs: a change is caught here,
  // before sealing, instead of by a recipient who cannot open the message.
  const recipient = await outbox.contacts.resolveFresh(to);
  const sealed = await sealWithState(outbox, (counter, keyring, next) =>
    sealMessage({
      signingPrivateKey: outbox.me.identity.signing.privateKey,
      sender: outbox.me.username,
      kind: "direct",
      target: to,
      epoch: 0,
      recipients: [
        { username: to, encryptionKey: recipient.keys.encryption, fingerprint: recipient.fingerprint },
      ],
      payload,
      counter,
      ...next(conversationOf("direct", to)),
      keyring,
    }),
  );
  const status = await uploadWithRetry(outbox.connection, sealed);
  const sent: SentMessage = { id: sealed.messageId, to, status, sentAt: sealed.header.sentAt };
  await recordSent(outbox, sent, payload);
  // A message to oneself reaches every session of ours already; with no other session, nobody would
  // get the copy (the server's count; without one, there may be someone).
  if (to !== outbox.me.username && outbox.connection.otherSessionsMayExist) {
    await sendSentCopy(outbox, to, payload, sealed.position);
  }
  return sent;
}

/**
 * The sent copy of a direct message to `target` that the server accepted: its payload (text, attachment
 * descriptor) under the same device and sequence, sealed for ourselves alone with a fresh id and counter.
 * It is recorded as this device's own under "sent to TARGET", so a copy handed back here is not shown.
 * A copy that fails costs our other devices this message, never the send: it is told as a warning.
 */
async function sendSentCopy(
  outbox: Outbox,
  target: string,
  payload: Payload,
  position: SenderSequence,
): Promise<void> {
  const { me, events } = outbox;
  try {
    const self = await outbox.contacts.resolve(me.username);
    const sealed = await sealWithState(outbox, (counter, keyring, _next, reuse) =>
      sealMessage({
        signingPrivateKey: me.identity.signing.privateKey,
        sender: me.username,
        kind: "sentCopy",
        target,
        epoch: 0,
        recipients: [
          { username: me.username, encryptionKey: self.keys.encryption, fingerprint: self.fingerprint },
        ],
        payload,
        counter,
        ...reuse(conversationOf("sentCopy", target), position),
        keyring,
      }),
    );
    await uploadWithRetry(outbox.connection, sealed);
  } catch (error) {
    events.emit("warning", {
      message: `sent to ${target}, but not copied to your other devices: ${describeError(error).message}`,
    });
  }
}

/**
 * A group message: sealed for every member at the epoch we believe current (the sender included, so her
 * other sessions get a copy), with a slot per member. If the group moved on meanwhile the server answers
 * stale_epoch; the group is fetched again and the message sealed anew (new id, new counter) for the new
 * member list, up to STALE_EPOCH_ATTEMPTS times. Never re-sends the same envelope to a different group.
 */
export async function sendToGroup(
  outbox: Outbox,
  group: string,
  payload: Payload,
  /** The epoch to try first, from groupToSealFor(); looked up here when not given. */
  initial?: EpochMembers,
): Promise<SentMessage> {
  const { groups, me } = outbox;
  if (!groups) throw new TypeError("sendToGroup needs outbox.groups");
  const seen = outbox.seen ?? (await PersistedSeen.load(outbox.home, me.username));
  let state = initial ?? (await groupToSealFor(outbox, group));
  // Sealed again after stale_epoch under the same sequence: the refused envelope was never delivered,
  // so a new number would show every member a gap. Should both arrive anyway, one is shown.
  let position: SenderSequence | undefined;
  for (let attempt = 1; ; attempt++) {
    if (!state.members.includes(me.username)) throw notAMember(groups, group);
    const recipients = await outbox.contacts.resolveMany(state.members, { fresh: true });
    for (const contact of recipients.filter((contact) => contact.newlyPinned)) {
      outbox.events.emit("warning", {
        message: `first contact with ${contact.username}: pinned their key fingerprint ${contact.fingerprint}`,
      });
    }
    const { epoch } = state;
    const sealed = await sealWithState(outbox, (counter, keyring, next) =>
      sealMessage({
        signingPrivateKey: me.identity.signing.privateKey,
        sender: me.username,
        kind: "group",
        target: group,
        epoch,
        recipients: recipients.map((contact) => ({
          username: contact.username,
          encryptionKey: contact.keys.encryption,
          fingerprint: contact.fingerprint,
        })),
        payload,
        counter,
        ...(position ?? next(conversationOf("group", group))),
        keyring,
      }),
    );
    position = sealed.position;
    // Recorded before it is sent: the copy the server hands back to this device must not be shown.
    seen.add(replayId(sealed.header));
    await seen.commit();
    try {
      const status = await uploadWithRetry(outbox.connection, sealed);
      const sent: SentMessage = {
        id: sealed.messageId,
        to: group,
        group,
        epoch,
        status,
        sentAt: sealed.header.sentAt,
      };
      await recordSent(outbox, sent, payload);
      return sent;
    } catch (error) {
      if (!(error instanceof StaleEpochError) || attempt >= STALE_EPOCH_ATTEMPTS) throw error;
      // Never the server's word: its new head is verified (statements, signatures, rules) before sealing.
      await groups.catchUp(group);
      await stopAtUnshownChanges({ me, groups, events: outbox.events }, group);
      state = verifiedMembers(groups, group);
    }
  }
}

/** Only what people read back: the file's name and size, never its key. */
async function recordSent({ history, me }: Outbox, sent: SentMessage, payload: Payload): Promise<void> {
  const file = FileDescriptor.safeParse(payload.attachment);
  await history?.record([
    {
      id: sent.id,
      kind: "message",
      direction: "out",
      from: me.username,
      to: sent.to,
      ...(sent.group === undefined ? {} : { group: sent.group }),
      text: payload.text,
      sentAt: sent.sentAt,
      ...(file.success ? { file: { name: file.data.name, size: file.data.size } } : {}),
    },
  ]);
}

/**
 * The server's flood control refuses an upload over the socket's rate by its message id and asks for a
 * retry; the same frame (same id and counter) is sent again after a pause, then the refusal stands.
 */
async function uploadWithRetry(connection: Connection, sealed: SealedMessage): Promise<UploadStatus> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await connection.sendUpload(sealed.frame, sealed.messageId);
    } catch (error) {
      const pause = RATE_LIMIT_RETRY_MS[attempt];
      if (!(error instanceof RateLimitedError) || pause === undefined) throw error;
      await new Promise((done) => setTimeout(done, pause));
    }
  }
}

/**
 * The epoch and members to seal a group message for first: the newest verified state. It is usually
 * current (chat learns every change as it happens); if not, the server says stale_epoch, which costs one
 * round trip, the same as asking first. Where we know of no verified state with us in it, the server's
 * head is fetched and verified (403 and 404 surface here, before anything is sealed). A forked group is
 * refused (exit 8); a verified change not shown yet stops the send after showing it (exit 10).
 */
export async function groupToSealFor(
  outbox: Pick<Outbox, "me" | "events"> & { groups?: GroupDirectory | undefined },
  group: string,
): Promise<EpochMembers> {
  const { groups, me, events } = outbox;
  if (!groups) throw new TypeError("groupToSealFor needs outbox.groups");
  const known = groups.latest(group);
  if (!known?.members.includes(me.username)) {
    await groups.catchUp(group);
    // An invitee is told how to join, rather than shown their invitation and asked to send again.
    if (groups.isInvited(group)) throw notAMember(groups, group);
  }
  await stopAtUnshownChanges({ me, groups, events }, group);
  return verifiedMembers(groups, group);
}

/** Invitees have no key slot: nothing is sealed for a group until a join makes this user a member. */
function notAMember(groups: GroupDirectory, group: string): RefusedError {
  if (groups.isInvited(group))
    return new RefusedError(
      `you are invited to the group ${group}, not a member yet: accept with \`telepound group join ${group}\``,
    );
  return new RefusedError(`you are not a member of the group ${group}`);
}

function verifiedMembers(groups: GroupDirectory, group: string): EpochMembers {
  const state = groups.latest(group);
  if (!state) throw new RefusedError(`no verified membership of the group ${group}`);
  return state;
}

/**
 * Seals with the next counter and the stored keyring, and with `next(conversation)`, that conversation's
 * next sequence, and saves them before anything is sent: a message that reached the server with a
 * counter or sequence the state file does not know would let it repeat. The sequence is also recorded in
 * sequences.json, so this device's own copy of a group message is never shown back to it. `reuse`
 * seals under a sequence already taken (a sent copy's), recording it in sequences.json alone.
 */
async function sealWithState(
  { home, me, events }: Outbox,
  seal: (
    counter: number,
    keyring: SenderKeyring,
    next: (conversation: string) => SenderSequence,
    reuse: (conversation: string, position: SenderSequence) => SenderSequence,
  ) => Promise<SealedMessage>,
): Promise<SealedMessage> {
  return home.withLock(async () => {
    const state = await home.read("state.json");
    const mine = state?.username === me.username ? state : { username: me.username, counter: 0 };
    let keyring = new SenderKeyring();
    if (mine.keyring !== undefined) {
      try {
        keyring = SenderKeyring.fromJSON(mine.keyring);
      } catch (error) {
        if (!(error instanceof CryptoError)) throw error;
        // Only costs a fresh conversation key per recipient: nothing already sent depends on the old ones.
        events.emit("warning", {
          message: "the stored conversation keys were unreadable; starting new ones",
        });
      }
    }
    const counter = mine.counter + 1;
    // A state from before device ids gets one now, before its first sequence.
    const deviceId = mine.deviceId ?? newDeviceId();
    const sequences = new Map(mine.sequences ?? []);
    // What the seal took: one conversation's next sequence, or none (a stale-epoch reseal reuses one).
    const taken: Array<{ conversation: string; position: SenderSequence }> = [];
    const reused: Array<{ conversation: string; position: SenderSequence }> = [];
    const next = (conversation: string): SenderSequence => {
      const position = { deviceId: fromHex(deviceId), sequence: (sequences.get(conversation) ?? 0) + 1 };
      taken.push({ conversation, position });
      return position;
    };
    const reuse = (conversation: string, position: SenderSequence): SenderSequence => {
      reused.push({ conversation, position });
      return position;
    };
    const sealed = await seal(counter, keyring, next, reuse);
    for (const { conversation, position } of taken) sequences.set(conversation, position.sequence);
    await home.write("state.json", {
      ...mine,
      counter,
      deviceId,
      sequences: [...sequences],
      keyring: keyring.toJSON(),
    });
    for (const { conversation, position } of [...taken, ...reused]) {
      await PersistedSequences.recordSentLocked(home, me.username, position, conversation);
    }
    return sealed;
  });
}
