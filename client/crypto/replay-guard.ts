// Refuses a message seen before: a server (or anyone on the path) replaying an old, validly signed
// envelope must not make it appear twice. Ids live in an injected set, so the CLI can persist them.

import { toHex } from "../../protocol/bytes.js";
import type { EnvelopeHeader } from "../../protocol/envelope.js";

/** The storage ReplayGuard needs; a Set<string> is one, a persisted set in the CLI's home another. */
export interface SeenIds {
  has(id: string): boolean;
  add(id: string): void;
}

export class ReplayGuard {
  constructor(private readonly seen: SeenIds = new Set<string>()) {}

  /**
   * True the first time, false for a replay. Call it only after openEnvelope succeeded: ids are visible to
   * the server, so recording ids of unverified frames would let it get real messages refused later.
   */
  accept(messageId: string): boolean {
    if (this.seen.has(messageId)) return false;
    this.seen.add(messageId);
    return true;
  }
}

/**
 * The id to give ReplayGuard.accept for an opened message: sender and message id together. A message id
 * is chosen by its sender, so keyed by the id alone, a group member could reuse the id of someone else's
 * message it just received and get that message refused when it reaches us.
 */
export function replayId(header: Pick<EnvelopeHeader, "sender" | "messageId">): string {
  // "/" cannot appear in a username, so the pair is unambiguous.
  return `${header.sender}/${toHex(header.messageId)}`;
}
