// What this device knows about its groups: the member list of every epoch it has learned, from membership
// events and from the server's answers. Group messages are checked against it, and sends are sealed for it.
//
// The knowledge comes from the server (events and GroupInfo are its statements, not signed by anyone), so
// what it buys is consistency: a server that seals a stranger into a group must tell every member, and a
// member whose list disagrees with a message's members digest rejects that message (docs/PROTOCOL.md §7.4).

import { compareNames } from "../protocol/envelope.js";
import type { EventFrame } from "../protocol/frames.js";
import type { GroupInfo } from "../protocol/http.js";
import type { Api } from "./api.js";
import type { GroupsFile, Home } from "./home.js";

/**
 * Epochs kept per group in groups.json, newest first. An older one is fetched again from the server
 * (GET /v1/groups/:name/epochs/:epoch) if a message for it ever turns up, which is rare: messages arrive
 * in the order the group saw them, each just after the event that started its epoch.
 */
export const EPOCHS_KEPT = 64;

export interface EpochMembers {
  epoch: number;
  /** Sorted by compareNames: the order membersDigest and key slots use. */
  members: string[];
}

interface GroupKnowledge {
  admin: string | null;
  epochs: Map<number, string[]>;
}

export class GroupDirectory {
  private readonly groups = new Map<string, GroupKnowledge>();
  /** Epochs learned since the last save, per group: only these are merged into the file. */
  private unsaved = new Map<string, { admin: string | null; epochs: Map<number, string[]> }>();

  private constructor(
    private readonly home: Home,
    private readonly owner: string,
    private readonly api: Api,
  ) {}

  static async load(home: Home, owner: string, api: Api): Promise<GroupDirectory> {
    const directory = new GroupDirectory(home, owner, api);
    const file = await home.read("groups.json");
    if (file?.owner === owner) {
      for (const group of file.groups) {
        directory.groups.set(group.name, { admin: group.admin, epochs: new Map(group.epochs) });
      }
    }
    return directory;
  }

  /** The newest epoch this device knows for `name`, or null: a starting point for sealing, may be stale. */
  latest(name: string): EpochMembers | null {
    const group = this.groups.get(name);
    if (!group || group.epochs.size === 0) return null;
    const epoch = Math.max(...group.epochs.keys());
    return { epoch, members: group.epochs.get(epoch)! };
  }

  /** The members of `name` at `epoch`: from what we learned, else asked from the server (and remembered). */
  async membersAt(name: string, epoch: number): Promise<string[]> {
    const known = this.groups.get(name)?.epochs.get(epoch);
    if (known) return known;
    const answer = await this.api.groupEpoch(name, epoch);
    return this.learn(name, epoch, answer.members);
  }

  /** Asks the server for the group's current state (403 not a member, 404 no such group); learns and saves it. */
  async current(name: string): Promise<GroupInfo> {
    const info = await this.api.groupInfo(name);
    this.learnInfo(info);
    await this.save();
    return info;
  }

  learnInfo(info: GroupInfo): EpochMembers {
    const members = this.learn(
      info.name,
      info.epoch,
      info.members.map((member) => member.username),
      info.admin,
    );
    return { epoch: info.epoch, members };
  }

  learnEvent(event: EventFrame): void {
    this.learn(event.group, event.epoch, event.members, event.admin);
  }

  /** Records one epoch's members (sorted here); returns them as stored. */
  learn(name: string, epoch: number, members: readonly string[], admin?: string | null): string[] {
    const sorted = [...new Set(members)].sort(compareNames);
    const group = this.groups.get(name) ?? { admin: null, epochs: new Map<number, string[]>() };
    this.groups.set(name, group);
    group.epochs.set(epoch, sorted);
    const pending = this.unsaved.get(name) ?? { admin: group.admin, epochs: new Map<number, string[]>() };
    this.unsaved.set(name, pending);
    pending.epochs.set(epoch, sorted);
    // Only the newest epoch's admin is the admin; an older answer learned late must not overwrite it.
    if (admin !== undefined && epoch >= Math.max(...group.epochs.keys())) {
      group.admin = admin;
      pending.admin = admin;
    }
    trim(group.epochs);
    return sorted;
  }

  /** Writes what was learned since the last save, merged with what other processes wrote meanwhile. */
  async save(): Promise<void> {
    if (this.unsaved.size === 0) return;
    const batch = this.unsaved;
    this.unsaved = new Map();
    try {
      await this.home.withLock(async () => {
        const file = await this.home.read("groups.json");
        const current: GroupsFile = file?.owner === this.owner ? file : { owner: this.owner, groups: [] };
        for (const [name, learned] of batch) {
          let entry = current.groups.find((group) => group.name === name);
          if (!entry) {
            entry = { name, admin: learned.admin, epochs: [] };
            current.groups.push(entry);
          }
          const epochs = new Map(entry.epochs);
          const newestBefore = epochs.size > 0 ? Math.max(...epochs.keys()) : -1;
          for (const [epoch, members] of learned.epochs) epochs.set(epoch, members);
          if (Math.max(...learned.epochs.keys()) >= newestBefore) entry.admin = learned.admin;
          trim(epochs);
          entry.epochs = [...epochs].sort(([a], [b]) => a - b);
        }
        await this.home.write("groups.json", current);
      });
    } catch (error) {
      for (const [name, learned] of batch) {
        const pending = this.unsaved.get(name);
        if (!pending) this.unsaved.set(name, learned);
        else for (const [epoch, members] of learned.epochs) pending.epochs.set(epoch, members);
      }
      throw error;
    }
  }
}

function trim(epochs: Map<number, string[]>): void {
  if (epochs.size <= EPOCHS_KEPT) return;
  const keep = new Set([...epochs.keys()].sort((a, b) => b - a).slice(0, EPOCHS_KEPT));
  for (const epoch of [...epochs.keys()]) if (!keep.has(epoch)) epochs.delete(epoch);
}
