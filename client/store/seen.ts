// The persisted set of messages already shown (ReplayGuard's storage): ids are added in memory as
// messages are shown, then committed to seen.json in batches, before those messages are acknowledged.

import type { SeenIds } from "../crypto/index.js";
import type { Home, SeenFile } from "./home.js";

/**
 * How many ids are kept. Duplicates come from redelivery of messages not yet acknowledged and from
 * replays; the most recent ids cover the first entirely and the second as far as it matters.
 */
export const SEEN_CAPACITY = 20_000;

export class PersistedSeen implements SeenIds {
  private readonly ids = new Set<string>();
  private uncommitted: Array<[string, number]> = [];

  private constructor(
    private readonly home: Home,
    private readonly owner: string,
  ) {}

  static async load(home: Home, owner: string): Promise<PersistedSeen> {
    const seen = new PersistedSeen(home, owner);
    const file = await home.read("seen.json");
    if (file?.owner === owner) for (const [id] of file.ids) seen.ids.add(id);
    return seen;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  add(id: string): void {
    if (this.ids.has(id)) return;
    this.ids.add(id);
    this.uncommitted.push([id, Date.now()]);
  }

  /**
   * Adds the ids other processes on this home committed since we loaded. A group message we sent from
   * `send` comes back to this device's `inbox` or `chat`, which must find the id `send` recorded.
   */
  async refresh(): Promise<void> {
    const file = await this.home.read("seen.json");
    if (file?.owner === this.owner) for (const [id] of file.ids) this.ids.add(id);
  }

  get pending(): number {
    return this.uncommitted.length;
  }

  /** Writes the ids added since the last commit, merged with what other processes wrote meanwhile. */
  async commit(): Promise<void> {
    if (this.uncommitted.length === 0) return;
    const batch = this.uncommitted;
    this.uncommitted = [];
    try {
      await this.home.withLock(async () => {
        const file = await this.home.read("seen.json");
        const current: SeenFile = file?.owner === this.owner ? file : { owner: this.owner, ids: [] };
        const known = new Set(current.ids.map(([id]) => id));
        const ids = [...current.ids, ...batch.filter(([id]) => !known.has(id))];
        await this.home.write("seen.json", { owner: this.owner, ids: ids.slice(-SEEN_CAPACITY) });
      });
    } catch (error) {
      this.uncommitted = [...batch, ...this.uncommitted];
      throw error;
    }
  }
}
