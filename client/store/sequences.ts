// Per sender device and conversation, which message numbers this home has shown: what refuses a replay of
// any age, and notices a message withheld (a gap) or delivered late (out of order). Kept in sequences.json,
// committed in the same batch as seen.json, before the messages are acknowledged (PROTOCOL §5.10).
//
// For each (sender, deviceId, conversation): `high`, the highest sequence shown, and `missing`, the
// sequences below it never shown, as at most MISSING_RANGES_KEPT ranges. O(1) per key, plus those ranges.

import { toHex } from "../../protocol/bytes.js";
import type { EnvelopeHeader, MessageKindName } from "../../protocol/envelope.js";
import type { SenderSequence } from "../crypto/index.js";
import type { Home, SequencesFile } from "./home.js";

/**
 * Missing ranges kept per (sender, device, conversation). Past this many, the lowest are forgotten: a
 * message from a forgotten range that arrives after all is refused like a replay (it cannot be told
 * apart from one), never shown twice.
 */
export const MISSING_RANGES_KEPT = 1000;

/**
 * Entries kept per sender (devices × conversations). Every login makes a new device, and a hostile contact
 * could invent a device per message, so the file needs a bound; past it the entry whose newest message is
 * oldest is dropped, and the sender's floor rises to that message's `sentAt` (signed by the sender): a
 * message from a device no entry knows, sent at or before the floor, is refused like a replay. So a
 * dropped entry's old messages stay refused, and a real new device (whose messages are newer) is not.
 */
export const ENTRIES_PER_SENDER = 256;

/** What to do with a verified message, by its sender device's sequence. */
export type SequenceVerdict =
  /** Above everything shown: show it. `missedBefore` sequences were skipped (0: none, or a first message). */
  | { kind: "next"; missedBefore: number }
  /** A sequence recorded missing: show it, marked as arriving out of order. */
  | { kind: "late" }
  /** At or below the highest shown and not missing: shown before (or forgotten). Never show it again. */
  | { kind: "replay" };

/**
 * The conversation a sequence counts in, for both sides: "u:" + the direct target, "g:" + the group, or
 * "s:" + the target of a sent copy. A sent copy carries its direct message's sequence, but is counted
 * apart ("sent to TARGET"), so that neither can be replayed as the other (PROTOCOL §5.12).
 */
export function conversationOf(kind: MessageKindName, target: string): string {
  return `${CONVERSATION_PREFIX[kind]}:${target}`;
}

const CONVERSATION_PREFIX: Record<MessageKindName, string> = { direct: "u", group: "g", sentCopy: "s" };

interface Entry {
  high: number;
  /** Inclusive [from, to] ranges, ascending and disjoint, all below `high`. */
  missing: Array<[number, number]>;
  /** The newest `sentAt` recorded under this entry: what decides which entry a full sender drops. */
  lastSentAt: number;
}

/** What the tracker reads from a message: its sender, device, conversation key, sequence and time. */
interface Position {
  sender: string;
  key: string;
  sequence: number;
  sentAt: number;
}

/** The key of a (sender, device, conversation): "/" is in no username, device id or conversation name. */
function keyOf(sender: string, deviceIdHex: string, conversation: string): string {
  return `${sender}/${deviceIdHex}/${conversation}`;
}

type SequencedHeader = Pick<EnvelopeHeader, "sender" | "kind" | "target" | "sentAt">;

function positionOf(header: SequencedHeader, from: SenderSequence): Position {
  return {
    sender: header.sender,
    key: keyOf(header.sender, toHex(from.deviceId), conversationOf(header.kind, header.target)),
    sequence: from.sequence,
    sentAt: header.sentAt,
  };
}

/** The rules alone, in memory; PersistedSequences keeps them in the home. */
export class SequenceTracker {
  protected readonly entries = new Map<string, Entry>();
  /** Per sender: the floor ENTRIES_PER_SENDER left behind (see there). */
  protected readonly floors = new Map<string, number>();

  /** The verdict for a message's position; changes nothing (record() does, once the message is shown). */
  verdictFor(position: Position): SequenceVerdict {
    const { key, sequence } = position;
    const entry = this.entries.get(key);
    if (!entry) {
      // An entry dropped to bound the file: its old messages are still refused.
      if (position.sentAt <= (this.floors.get(position.sender) ?? -1)) return { kind: "replay" };
      // A first message: the ones before it, if any, cannot be told apart from messages sent before this
      // home knew the device (or before we joined the group), so no gap is reported for them.
      return { kind: "next", missedBefore: 0 };
    }
    if (sequence > entry.high) return { kind: "next", missedBefore: sequence - entry.high - 1 };
    return indexOfRange(entry.missing, sequence) >= 0 ? { kind: "late" } : { kind: "replay" };
  }

  /** Records a message's position as shown. */
  record(position: Position): void {
    const { key, sequence } = position;
    const entry = this.entries.get(key);
    if (!entry) {
      // What came before a first message is kept as missing (without a report), so a first message that
      // arrives after its successor is still shown, once, as late.
      this.entries.set(key, {
        high: sequence,
        missing: sequence > 1 ? [[1, sequence - 1]] : [],
        lastSentAt: position.sentAt,
      });
      this.boundSender(position.sender);
    } else if (sequence > entry.high) {
      if (sequence > entry.high + 1) entry.missing.push([entry.high + 1, sequence - 1]);
      entry.high = sequence;
      if (entry.missing.length > MISSING_RANGES_KEPT) {
        entry.missing.splice(0, entry.missing.length - MISSING_RANGES_KEPT);
      }
    } else {
      const at = indexOfRange(entry.missing, sequence);
      if (at < 0) return;
      const [from, to] = entry.missing[at]!;
      const rest: Array<[number, number]> = [];
      if (from < sequence) rest.push([from, sequence - 1]);
      if (sequence < to) rest.push([sequence + 1, to]);
      entry.missing.splice(at, 1, ...rest);
      // A split adds a range: the cap holds after it too.
      if (entry.missing.length > MISSING_RANGES_KEPT) entry.missing.shift();
    }
    const recorded = this.entries.get(key)!;
    recorded.lastSentAt = Math.max(recorded.lastSentAt, position.sentAt);
    this.changed(key);
  }

  /** Keeps at most ENTRIES_PER_SENDER entries for `sender`, raising its floor for each one dropped. */
  private boundSender(sender: string): void {
    const prefix = `${sender}/`;
    const own = [...this.entries].filter(([key]) => key.startsWith(prefix));
    if (own.length <= ENTRIES_PER_SENDER) return;
    own.sort(([, a], [, b]) => a.lastSentAt - b.lastSentAt);
    for (const [key, entry] of own.slice(0, own.length - ENTRIES_PER_SENDER)) {
      this.entries.delete(key);
      this.floors.set(sender, Math.max(this.floors.get(sender) ?? 0, entry.lastSentAt));
      this.dropped(key, sender);
    }
  }

  /** Called with each key record() changed. */
  protected changed(_key: string): void {}

  /** Called with each key dropped to keep ENTRIES_PER_SENDER. */
  protected dropped(_key: string, _sender: string): void {}
}

/** The range holding `sequence`, by binary search; -1 if none does. */
function indexOfRange(ranges: ReadonlyArray<[number, number]>, sequence: number): number {
  let low = 0;
  let high = ranges.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const [from, to] = ranges[middle]!;
    if (sequence < from) high = middle - 1;
    else if (sequence > to) low = middle + 1;
    else return middle;
  }
  return -1;
}

export class PersistedSequences extends SequenceTracker {
  /** Keys changed since the last commit. */
  private dirty = new Set<string>();
  /** Keys dropped since the last commit, and the senders whose floor rose. */
  private removed = new Set<string>();
  private raisedFloors = new Set<string>();

  private constructor(
    private readonly home: Home,
    private readonly owner: string,
  ) {
    super();
  }

  static async load(home: Home, owner: string): Promise<PersistedSequences> {
    const sequences = new PersistedSequences(home, owner);
    sequences.adopt(await home.read("sequences.json"));
    return sequences;
  }

  /** The verdict for a verified message (its header and the device and sequence its payload names). */
  check(header: SequencedHeader, from: SenderSequence): SequenceVerdict {
    return this.verdictFor(positionOf(header, from));
  }

  /** Records a message as shown; written to the home at the next commit. */
  accept(header: SequencedHeader, from: SenderSequence): void {
    this.record(positionOf(header, from));
  }

  /**
   * Adopts what other processes on this home committed since we loaded: a message this device sent
   * from `send` (recorded by recordSent) comes back to this device's `inbox` or `chat` as a group copy.
   */
  async refresh(): Promise<void> {
    this.adopt(await this.home.read("sequences.json"));
  }

  get pending(): number {
    return this.dirty.size + this.removed.size;
  }

  /**
   * Writes the keys changed since the last commit, merged with what other processes wrote meanwhile. Only
   * one process receives for a home (receiver.lock), so ours are current, except for this device's own
   * sends, which recordSent writes: per key, the entry with the higher `high` wins.
   */
  async commit(): Promise<void> {
    if (this.pending === 0) return;
    const [batch, removed, raised] = [this.dirty, this.removed, this.raisedFloors];
    [this.dirty, this.removed, this.raisedFloors] = [new Set(), new Set(), new Set()];
    try {
      await this.home.withLock(async () => {
        const file = await this.home.read("sequences.json");
        const current = file?.owner === this.owner ? file : null;
        const merged = entriesOf(current);
        const floors = new Map(current?.floors ?? []);
        for (const key of removed) if (!this.entries.has(key)) merged.delete(key);
        for (const key of batch) {
          const ours = this.entries.get(key);
          if (!ours) continue;
          const theirs = merged.get(key);
          if (theirs && theirs.high > ours.high) this.entries.set(key, theirs);
          else merged.set(key, ours);
        }
        for (const sender of raised) {
          floors.set(sender, Math.max(floors.get(sender) ?? 0, this.floors.get(sender) ?? 0));
        }
        await this.home.write("sequences.json", fileOf(this.owner, merged, floors));
      });
    } catch (error) {
      for (const key of batch) this.dirty.add(key);
      for (const key of removed) this.removed.add(key);
      for (const sender of raised) this.raisedFloors.add(sender);
      throw error;
    }
  }

  /**
   * Records, in the home, that this device sealed `sequence` in `conversation`: its own copy coming back
   * (a group message reaches every session of the sender) is then refused like a replay. Call it inside
   * home.withLock, before the message is uploaded.
   */
  static async recordSentLocked(
    home: Home,
    owner: string,
    from: SenderSequence,
    conversation: string,
  ): Promise<void> {
    const file = await home.read("sequences.json");
    const current = file?.owner === owner ? file : null;
    const entries = entriesOf(current);
    const key = keyOf(owner, toHex(from.deviceId), conversation);
    const entry = entries.get(key);
    if (entry && entry.high >= from.sequence) return;
    // Sends from this device never leave a gap to report or fill: what is below is ours already.
    entries.set(key, { high: from.sequence, missing: [], lastSentAt: Date.now() });
    await home.write("sequences.json", fileOf(owner, entries, new Map(current?.floors ?? [])));
  }

  protected override changed(key: string): void {
    this.dirty.add(key);
  }

  protected override dropped(key: string, sender: string): void {
    this.dirty.delete(key);
    this.removed.add(key);
    this.raisedFloors.add(sender);
  }

  private adopt(file: SequencesFile | null): void {
    if (file?.owner !== this.owner) return;
    for (const [key, theirs] of entriesOf(file)) {
      const ours = this.entries.get(key);
      if (!ours || theirs.high > ours.high) this.entries.set(key, theirs);
    }
    for (const [sender, floor] of file.floors) {
      this.floors.set(sender, Math.max(this.floors.get(sender) ?? 0, floor));
    }
  }
}

function entriesOf(file: SequencesFile | null): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  for (const item of file?.entries ?? []) {
    entries.set(keyOf(item.sender, item.device, item.conversation), {
      high: item.high,
      missing: item.missing.map(([from, to]) => [from, to]),
      lastSentAt: item.lastSentAt,
    });
  }
  return entries;
}

function fileOf(owner: string, entries: Map<string, Entry>, floors: Map<string, number>): SequencesFile {
  return {
    owner,
    entries: [...entries].map(([key, entry]) => {
      const [sender = "", device = "", conversation = ""] = splitKey(key);
      return {
        sender,
        device,
        conversation,
        high: entry.high,
        missing: entry.missing,
        lastSentAt: entry.lastSentAt,
      };
    }),
    floors: [...floors],
  };
}

/** keyOf's inverse: the conversation ("u:NAME", "g:NAME" or "s:NAME") is the rest after the second "/". */
function splitKey(key: string): [string, string, string] {
  const first = key.indexOf("/");
  const second = key.indexOf("/", first + 1);
  return [key.slice(0, first), key.slice(first + 1, second), key.slice(second + 1)];
}
