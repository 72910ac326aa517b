// The home: where one user's session, local keys, pinned contacts and message state live, each document
// checked against its schema here and kept by the platform's storage (client/platform.ts HomeStorage; on
// Node a folder, owner-only, every write atomic, so a crash or a second process never sees half a file).
//
//   session.json    {server, username, token, sessionId, expiresAt}: the bearer token for the server
//   identity.json   the user's public keys and UNSEALED private keys. They stay unsealed, protected only by the
//                   file permissions, until logout deletes them: that is what lets every command after login
//                   work without the password. Anyone who can read this file can read and sign as the user.
//   state.json      this device's message counter, its device id (new at each login) and the last sequence
//                   it sealed per conversation, SenderKeyring and UnwrapCache (conversation keys, so
//                   secret too); deleted at logout with the keys
//   contacts.json   pinned public keys of everyone we talked to (trust on first use), when each was
//                   verified, and changed keys not accepted yet; kept across logout so changes are noticed
//   seen.json       ids of messages already shown, so a redelivered message is acknowledged but not shown twice
//   sequences.json  per (sender, device, conversation) the highest sequence shown and the ones missing below
//                   it (sequences.ts): refuses a replay of any age, notices gaps. Kept at logout
//   groups.json     per group, the chain of signed membership statements this device verified (hash, digests,
//                   admin, members and invitees of recent epochs, which changes were shown, forks seen): what
//                   group messages are checked against and sealed for. Not secret, kept at logout
//   outbox.json     messages typed in chat while the server was out of reach, in plaintext, oldest first,
//                   until each is sent (send-queue.ts): a chat quit offline sends them the next time it
//                   connects. Deleted at logout: what was not sent by then is not sent
//   history.db      every message sent and received, and group events, in plaintext (SQLite; history.ts).
//                   Kept at logout, like contacts: it is this device's record, not the account's
//   receiver.lock   while inbox, listen or chat runs: the pid of the one process receiving for this home
//   held/           messages from a sender whose keys changed, still encrypted, until `trust` (held.ts)
//   held/USER/      messages held because their sender's keys changed (held.ts), until `trust` accepts them
//   downloads/      received files, unless inbox is given --out (0700, created on first use)

import { z } from "zod";
import { toHex } from "../../protocol/bytes.js";
import { GroupEventKind } from "../../protocol/frames.js";
import { NO_INVITATIONS_DIGEST } from "../../protocol/group-statement.js";
import { PublicKeys } from "../../protocol/http.js";
import { BusyError, CliError, ExitCode } from "../errors.js";
import { type Claim, type HomeStorage, LockTimeoutError, type RecordFolder } from "../platform.js";
import type { HistoryStore } from "./history.js";

export const SessionFile = z.object({
  server: z.string(),
  /** The origin the password keys were derived under (PROTOCOL §3.2); absent in homes of protocol 1. */
  origin: z.string().optional(),
  username: z.string(),
  token: z.string(),
  sessionId: z.string(),
  expiresAt: z.number(),
});
export type SessionFile = z.infer<typeof SessionFile>;

/**
 * `keys` is crypto's exportIdentity(): base64 DER, public SPKI and private PKCS#8. The private keys are
 * absent when the platform keeps them in its key vault instead (HomeStorage.keyVault).
 */
export const IdentityFile = z.object({
  username: z.string(),
  publicKeys: PublicKeys,
  fingerprint: z.string(),
  keys: z.object({
    encryptionPublic: z.string(),
    encryptionPrivate: z.string().optional(),
    signingPublic: z.string(),
    signingPrivate: z.string().optional(),
  }),
});
export type IdentityFile = z.infer<typeof IdentityFile>;

const DEVICE_ID_HEX = /^[0-9a-f]{32}$/;

export const StateFile = z.object({
  username: z.string(),
  /** The counter of the last message this device sealed; the next one uses counter + 1. */
  counter: z.int().min(0),
  /** This device's id (hex), sealed in every payload; made at login. Absent in an older state: made then. */
  deviceId: z.string().regex(DEVICE_ID_HEX).optional(),
  /**
   * [conversation ("u:USER" or "g:GROUP"), the last sequence this device sealed in it]. An array, not an
   * object keyed by name: "__proto__" is a valid name.
   */
  sequences: z.array(z.tuple([z.string(), z.int().min(1)])).optional(),
  keyring: z.json().optional(),
  unwrapCache: z.json().optional(),
});
export type StateFile = z.infer<typeof StateFile>;

export const Contact = z.object({
  publicKeys: PublicKeys,
  fingerprint: z.string(),
  /** When we first saw these keys, ISO 8601. */
  firstSeen: z.string(),
  /** When the user confirmed these keys by comparing safety numbers (`verify`), ISO 8601. */
  verifiedAt: z.string().optional(),
  /**
   * Other keys the server gave for this user, not accepted yet: until `trust` accepts them (or the pin
   * again), nothing is sent to the user and messages signed with other keys are held. seenAt: ISO 8601.
   */
  keyChange: z.object({ publicKeys: PublicKeys, fingerprint: z.string(), seenAt: z.string() }).optional(),
});
export type Contact = z.infer<typeof Contact>;

/**
 * A JSON object keyed by names that came from the network, read into a Map and written back from one.
 * Never a plain object in memory: "__proto__" is a valid username, and on a plain object assigning it sets
 * the prototype instead of a key (z.record drops it the same way), so its pin would never be written.
 * JSON.parse and Object.fromEntries both make "__proto__" an own key, which JSON.stringify keeps.
 */
function nameMap<V extends z.ZodType>(value: V) {
  const JsonObject = z.custom<Record<string, unknown>>(
    (input) => typeof input === "object" && input !== null && !Array.isArray(input),
    "expected an object",
  );
  return z.codec(JsonObject, z.map(z.string(), value), {
    // Unchecked values here: the Map schema checks each one against `value` right after.
    decode: (object) => new Map(Object.entries(object)) as Map<string, z.input<V>>,
    encode: (map) => Object.fromEntries(map),
  });
}

export const ContactsFile = z.object({
  /** Whose pins these are: a different user logging in on this home starts with none. */
  owner: z.string(),
  /** Username → pin; on disk a JSON object, as before. */
  contacts: nameMap(Contact),
});
export type ContactsFile = z.infer<typeof ContactsFile>;

export const SeenFile = z.object({
  owner: z.string(),
  /** [message id, when seen in ms], oldest first. */
  ids: z.array(z.tuple([z.string(), z.number()])),
});
export type SeenFile = z.infer<typeof SeenFile>;

/** One message waiting to be sent (client/send-queue.ts). */
export const QueuedSend = z.object({
  /** Random, to remove it once sent. */
  id: z.string().regex(/^[0-9a-f]{16}$/),
  to: z.object({ kind: z.enum(["user", "group"]), name: z.string() }),
  text: z.string(),
  /** A file to attach, as the platform names it (a path on Node). */
  file: z.string().optional(),
  /** When it was queued, ms since the Unix epoch. */
  queuedAt: z.number(),
});
export type QueuedSend = z.infer<typeof QueuedSend>;

export const OutboxFile = z.object({ owner: z.string(), items: z.array(QueuedSend) });
export type OutboxFile = z.infer<typeof OutboxFile>;

/** An array of entries, not an object keyed by name: "__proto__" is a valid username. */
export const SequencesFile = z.object({
  owner: z.string(),
  entries: z.array(
    z.object({
      sender: z.string(),
      /** The sender's device id, 32 lower-case hex digits. */
      device: z.string().regex(DEVICE_ID_HEX),
      /** "u:" + the direct message's target, "g:" + the group's name, or "s:" + a sent copy's target. */
      conversation: z.string(),
      /** The highest sequence shown (or, for this device's own sends, sealed). */
      high: z.int().min(1),
      /** Inclusive [from, to] ranges below `high` never shown, ascending; at most MISSING_RANGES_KEPT. */
      missing: z.array(z.tuple([z.int().min(1), z.int().min(1)])),
      /** The newest `sentAt` recorded under this entry (0 in files made before it was kept). */
      lastSentAt: z.number().min(0).default(0),
    }),
  ),
  /**
   * Per sender, the newest `sentAt` of an entry dropped to keep ENTRIES_PER_SENDER: a message from an
   * unknown device of that sender at or before it is refused like a replay.
   */
  floors: z.array(z.tuple([z.string(), z.number().min(0)])).default([]),
});
export type SequencesFile = z.infer<typeof SequencesFile>;

const HEX_DIGEST = /^[0-9a-f]{64}$/;

/** One verified membership change (client/groups.ts): the state its statement led to. */
export const VerifiedEpochRecord = z.object({
  epoch: z.int().min(1),
  /** statementHash of the statement and signature, hex: what the next statement's prev must be. */
  hash: z.string().regex(HEX_DIGEST),
  /** membersDigest of the members after it, hex: what messages of this epoch must carry. */
  digest: z.string().regex(HEX_DIGEST),
  /** membersDigest of the users invited after it, hex: what the statement committed to. */
  invitedDigest: z.string().regex(HEX_DIGEST),
  action: z.enum(["create", "add", "remove", "leave", "invite", "join", "decline"]),
  /** How the change is shown: the action's event, "uninvited" for a remove that withdrew an invitation. */
  event: GroupEventKind,
  /** Who signed it. */
  by: z.string(),
  user: z.string(),
  /** The admin after it; "" once the group closed. */
  admin: z.string(),
  /** The signer's clock, ms. */
  at: z.number(),
  /** Sorted member names after it: kept for the newest EPOCHS_KEPT epochs only. */
  members: z.array(z.string()).optional(),
  /** Sorted names invited and not yet answered after it: kept whenever `members` is. */
  invited: z.array(z.string()).optional(),
  /** Whether this change was shown to the user (events, a send's review, the command that made it). */
  shown: z.boolean(),
});
export type VerifiedEpochRecord = z.infer<typeof VerifiedEpochRecord>;

const groupEntry = <E extends z.ZodType>(epoch: E) =>
  z.object({
    name: z.string(),
    /** The first epoch of the verified chain: its create, or the statement that added or invited this user. */
    anchor: z.int().min(1),
    /** Every verified epoch from the anchor on (and older chains' epochs), oldest first. */
    epochs: z.array(epoch),
    /** Epochs for which the server showed two different statements: [epoch, their hashes]. */
    forks: z.array(z.object({ epoch: z.int().min(1), hashes: z.array(z.string()) })),
  });

const GroupsFileV3 = z.object({
  version: z.literal(3),
  owner: z.string(),
  groups: z.array(groupEntry(VerifiedEpochRecord)),
});

/** Before invitations (protocol 2): every statement was version 1, committing to no invitations. */
const VerifiedEpochRecordV2 = VerifiedEpochRecord.omit({
  invitedDigest: true,
  event: true,
  invited: true,
}).extend({ action: z.enum(["create", "add", "remove", "leave"]) });
const GroupsFileV2 = z.object({
  version: z.literal(2),
  owner: z.string(),
  groups: z.array(groupEntry(VerifiedEpochRecordV2)),
});

const EVENT_OF_V2_ACTION = { create: "created", add: "added", remove: "removed", leave: "left" } as const;
const NO_INVITATIONS = toHex(NO_INVITATIONS_DIGEST);

/** A version 2 file's chains, as they stand in version 3: nobody invited at any epoch. */
function fromVersion2(file: z.infer<typeof GroupsFileV2>): GroupsFile {
  return {
    version: 3,
    owner: file.owner,
    groups: file.groups.map((group) => ({
      ...group,
      epochs: group.epochs.map((epoch) => ({
        ...epoch,
        invitedDigest: NO_INVITATIONS,
        event: EVENT_OF_V2_ACTION[epoch.action],
        ...(epoch.members ? { invited: [] } : {}),
      })),
    })),
  };
}

/**
 * Arrays, not objects keyed by name: "__proto__" is a valid group name. Version 3 holds only what signed
 * statements proved (docs/PROTOCOL.md §7), invitations included; a version 2 file (from before
 * invitations) is read as the same chains with nobody invited; a version 1 file (the server's unsigned
 * word) is read as empty, and each group's chain is verified again from the server's statements.
 */
export const GroupsFile = z.codec(
  z.union([GroupsFileV3, GroupsFileV2, z.looseObject({ owner: z.string(), version: z.never().optional() })]),
  GroupsFileV3,
  {
    decode: (raw) => {
      const current = GroupsFileV3.safeParse(raw);
      if (current.success) return current.data;
      const older = GroupsFileV2.safeParse(raw);
      if (older.success) return fromVersion2(older.data);
      return { version: 3 as const, owner: raw.owner, groups: [] };
    },
    encode: (file) => file,
  },
);
export type GroupsFile = z.infer<typeof GroupsFileV3>;

const files = {
  "session.json": SessionFile,
  "identity.json": IdentityFile,
  "state.json": StateFile,
  "contacts.json": ContactsFile,
  "seen.json": SeenFile,
  "sequences.json": SequencesFile,
  "groups.json": GroupsFile,
  "outbox.json": OutboxFile,
} as const;
export type HomeFileName = keyof typeof files;
type FileValue<N extends HomeFileName> = z.infer<(typeof files)[N]>;

export class Home {
  constructor(readonly storage: HomeStorage) {}

  /** Where the home is, as people are told. */
  get location(): string {
    return this.storage.location;
  }

  /** Where received files go unless told otherwise. */
  get downloads(): string {
    return this.storage.downloads;
  }

  /** Creates the home if needed and makes it owner-only. */
  ensure(): Promise<void> {
    return this.storage.ensure();
  }

  /** The document, or null if it does not exist; one that does not parse is an error, not null. */
  async read<N extends HomeFileName>(name: N): Promise<FileValue<N> | null> {
    const text = await this.storage.read(name);
    if (text === null) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw this.corrupt(name, "not JSON");
    }
    const result = files[name].safeParse(parsed);
    if (!result.success) throw this.corrupt(name, result.error.issues[0]?.message ?? "invalid");
    return result.data as FileValue<N>;
  }

  /** Atomic and owner-only (the storage's promise). */
  async write<N extends HomeFileName>(name: N, value: FileValue<N>): Promise<void> {
    // encode: a file's in-memory shape (Maps) back to its JSON shape, checked on the way.
    const data = `${JSON.stringify(z.encode(files[name] as z.ZodType, value), null, 2)}\n`;
    await this.storage.write(name, data);
  }

  remove(name: HomeFileName): Promise<void> {
    return this.storage.remove(name);
  }

  /**
   * Runs `fn` while holding the home's lock, so two telepound processes on one home (chat in one terminal,
   * send in another) never reuse a message counter or lose each other's updates. Read inside `fn`.
   */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await this.storage.withLock(fn);
    } catch (error) {
      if (!(error instanceof LockTimeoutError)) throw error;
      throw new CliError(
        `the home ${this.location} is locked by another telepound process (${this.storage.describe("home.lock")})`,
        ExitCode.unexpected,
      );
    }
  }

  /**
   * Claims the right to receive (and so acknowledge) messages with this home until `release` is called
   * or the process ends: `inbox`, `listen` and `chat` each hold it, so two of them never race to show
   * and acknowledge the same queue. A second claimant fails at once with BusyError, naming the holder.
   */
  async claimReceiver(command: string): Promise<Claim> {
    const claim = await this.storage.claimReceiver(command);
    if ("release" in claim) return claim;
    throw new BusyError(
      `another telepound process is already receiving messages for this home (${claim.heldBy}, pid ${claim.pid}); ` +
        `only one of inbox, listen and chat can run per home at a time`,
    );
  }

  /** The messages of `owner` held for a key change (store/held.ts). */
  heldFolder(owner: string): RecordFolder {
    return this.storage.records(["held", owner]);
  }

  openHistory(owner: string): Promise<HistoryStore> {
    return this.storage.openHistory(owner);
  }

  private corrupt(name: string, why: string): CliError {
    return new CliError(
      `${this.storage.describe(name)} is damaged (${why}); remove it or log in again`,
      ExitCode.unexpected,
    );
  }
}
