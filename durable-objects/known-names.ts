// Asks the directory (directory.ts) whether user and group names exist before any home or room is woken
// for them, and remembers the names found: a name is never unregistered, so a hit stays true.

import type { NameKind } from "./directory.js";
import { directoryStub, directoryIndex } from "./names.js";

/** Most names remembered per kind in one isolate; past it the memory starts again (a miss costs one read). */
const REMEMBERED_LIMIT = 50_000;
const remembered: Record<NameKind, Map<string, true>> = { user: new Map(), group: new Map() };

function remember(kind: NameKind, name: string): void {
  const known = remembered[kind];
  if (known.size >= REMEMBERED_LIMIT) known.clear();
  known.set(name, true);
}

/** Records that `name` exists. Called before its account or group is made, so no reader misses it. */
export async function registerName(env: Env, kind: NameKind, name: string): Promise<void> {
  await directoryStub(env, name).register(kind, name);
  remember(kind, name);
}

/** The subset of `names` that exist, asking each directory object once for all of its names. */
export async function existingNames(env: Env, kind: NameKind, names: Iterable<string>): Promise<Set<string>> {
  const found = new Set<string>();
  const byObject = new Map<number, string[]>();
  for (const name of new Set(names)) {
    if (remembered[kind].has(name)) {
      found.add(name);
      continue;
    }
    const index = directoryIndex(name);
    byObject.set(index, [...(byObject.get(index) ?? []), name]);
  }
  await Promise.all(
    [...byObject.values()].map(async (batch) => {
      const known = await directoryStub(env, batch[0]!).known(kind, batch);
      batch.forEach((name, i) => {
        if (!known[i]) return;
        found.add(name);
        remember(kind, name);
      });
    }),
  );
  return found;
}

export async function nameExists(env: Env, kind: NameKind, name: string): Promise<boolean> {
  // Asked for every acknowledgement a shard receives: a remembered name costs one lookup, no batch.
  if (remembered[kind].has(name)) return true;
  return (await existingNames(env, kind, [name])).has(name);
}
