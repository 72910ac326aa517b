// Per sender device and conversation, which message numbers this home has shown: what refuses a replay of
// any age, and notices a message withheld (a gap) or delivered late (out of order). Kept in sequences.json,
// committed in the same batch as seen.json, before the messages are acknowledged (PROTOCOL §5.10).
//
// For each (sender, deviceId, conversation): `high`, the highest sequence shown, and `missing`, the
// sequences below it never shown, as at most MISSING_RANGES_KEPT ranges. O(1) per key, plus those ranges.

import { toHex } from "../protocol/bytes.js";
import type { EnvelopeHeader, MessageKindName } from "../protocol/envelope.js";
import type { SenderSequence } from "./crypto/index.js";
import type { Home, SequencesFile } from "./home.js";

/**
 * Missing ranges kept per (sender, device, conversation). Past this many, the lowest are forgotten: a
 * message from a forgotten range that arrives after all is refused like a replay (it cannot be told
 * apart from one), never shown twice.
 */
export const MISSING_RANGES_KEPT = 1000;

/** What to do with a verified message, by its sender device's sequence. */
export type SequenceVerdict =
  /** Above everything shown: show it. `missedBefore` sequences were skipped (0: none, or a first message). */
  | { kind: "next"; missedBefore: number }
  /** A sequence recorded missing: show it, marked as arriving out of order. */
  | { kind: "late" }
  /** At or below the highest shown and not missing: shown before (or forgotten). Never show it again. */
  | { kind: "replay" };

/** The conversation a sequence counts in, for both sides: "u:" + the direct target, or "g:" + the group. */
export function conversationOf(kind: MessageKindName, target: string): string {
  return `${kind === "direct" ? "u" : "g"}:${target}`;
}

interface Entry {
  high: number;
  /** Inclusive [from, to] ranges, ascending and disjoint, all below `high`. */
  missing: Array<[number, number]>;
}

/** The key of a (sender, device, conversation): "/" is in no username, device id or conversation name. */
function keyOf(sender: string, deviceIdHex: string, conversation: string): string {
  return `${sender}/${deviceIdHex}/${conversation}`;
}

function messageKey(
  header: Pick<EnvelopeHeader, "sender" | "kind" | "target">,
  from: SenderSequence,
): string {
  return keyOf(header.sender, toHex(from.deviceId), conversationOf(header.kind, header.target));
}

/** The rules alone, in memory; PersistedSequences keeps them in the home. */
export class SequenceTracker {
  protected readonly entries = new Map<string, Entry>();

  /** The verdict for `sequence` under `key`; changes nothing (record() does, once the message is shown). */
  verdictFor(key: string, sequence: number): SequenceVerdict {
    const entry = this.entries.get(key);
    // A first message: the ones before it, if any, cannot be told apart from messages sent before this
    // home knew the device (or before we joined the group), so no gap is reported for them.
    if (!entry) return { kind: "next", missedBefore: 0 };
    if (sequence > entry.high) return { kind: "next", missedBefore: sequence - entry.high - 1 };
    return indexOfRange(entry.missing, sequence) >= 0 ? { kind: "late" } : { kind: "replay" };
  }

  /** Records `sequence` as shown under `key`. */
  record(key: string, sequence: number): void {
    const entry = this.entries.get(key);
    if (!entry) {
      // What came before a first message is kept as missing (without a report), so a first message that
      // arrives after its successor is still shown, once, as late.
      this.entries.set(key, { high: sequence, missing: sequence > 1 ? [[1, sequence - 1]] : [] });
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
    this.changed(key);
  }

  /** Called with each key record() changed. */
  protected changed(_key: string): void {}
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
  check(header: Pick<EnvelopeHeader, "sender" | "kind" | "target">, from: SenderSequence): SequenceVerdict {
    return this.verdictFor(messageKey(header, from), from.sequence);
  }

  /** Records a message as shown; written to the home at the next commit. */
  accept(header: Pick<EnvelopeHeader, "sender" | "kind" | "target">, from: SenderSequence): void {
    this.record(messageKey(header, from), from.sequence);
  }

  /**
   * Adopts what other processes on this home committed since we loaded: a message this device sent
   * from `send` (recorded by recordSent) comes back to this device's `inbox` or `chat` as a group copy.
   */
  async refresh(): Promise<void> {
    this.adopt(await this.home.read("sequences.json"));
  }

  get pending(): number {
    return this.dirty.size;
  }

  /**
   * Writes the keys changed since the last commit, merged with what other processes wrote meanwhile. Only
   * one process receives for a home (receiver.lock), so ours are current, except for this device's own
   * sends, which recordSent writes: per key, the entry with the higher `high` wins.
   */
  async commit(): Promise<void> {
    if (this.dirty.size === 0) return;
    const batch = this.dirty;
    this.dirty = new Set();
    try {
      await this.home.withLock(async () => {
        const file = await this.home.read("sequences.json");
        const merged = entriesOf(file?.owner === this.owner ? file : null);
        for (const key of batch) {
          const ours = this.entries.get(key)!;
          const theirs = merged.get(key);
          if (theirs && theirs.high > ours.high) this.entries.set(key, theirs);
          else merged.set(key, ours);
        }
        await this.home.write("sequences.json", fileOf(this.owner, merged));
      });
    } catch (error) {
      for (const key of batch) this.dirty.add(key);
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
    const entries = entriesOf(file?.owner === owner ? file : null);
    const key = keyOf(owner, toHex(from.deviceId), conversation);
    const entry = entries.get(key);
    if (entry && entry.high >= from.sequence) return;
    // Sends from this device never leave a gap to report or fill: what is below is ours already.
    entries.set(key, { high: from.sequence, missing: [] });
    await home.write("sequences.json", fileOf(owner, entries));
  }

  protected override changed(key: string): void {
    this.dirty.add(key);
  }

  private adopt(file: SequencesFile | null): void {
    if (file?.owner !== this.owner) return;
    for (const [key, theirs] of entriesOf(file)) {
      const ours = this.entries.get(key);
      if (!ours || theirs.high > ours.high) this.entries.set(key, theirs);
    }
  }
}

function entriesOf(file: SequencesFile | null): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  for (const item of file?.entries ?? []) {
    entries.set(keyOf(item.sender, item.device, item.conversation), {
      high: item.high,
      missing: item.missing.map(([from, to]) => [from, to]),
    });
  }
  return entries;
}

function fileOf(owner: string, entries: Map<string, Entry>): SequencesFile {
  return {
    owner,
    entries: [...entries].map(([key, entry]) => {
      const [sender = "", device = "", conversation = ""] = splitKey(key);
      return { sender, device, conversation, high: entry.high, missing: entry.missing };
    }),
  };
}

/** keyOf's inverse: the conversation ("u:NAME" or "g:NAME") is the rest after the second "/". */
function splitKey(key: string): [string, string, string] {
  const first = key.indexOf("/");
  const second = key.indexOf("/", first + 1);
  return [key.slice(0, first), key.slice(first + 1, second), key.slice(second + 1)];
}
