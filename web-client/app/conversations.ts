// The page's list of conversations: for each its unread count and last activity, from the local history
// at the start and from what arrives and goes out since (as the CLI's chat counts them). When each
// conversation was last looked at is kept in the home ("web-read.json"), so a reload or a second tab counts
// the same, and logging out wipes it with the rest.

import type { ShownMessage } from "../../client/events.js";
import type { HomeStorage } from "../../client/platform.js";
import type { HistoryEntry } from "../../client/store/history.js";

export type Conversation = { kind: "user"; name: string } | { kind: "group"; name: string };

/** "user:bob" or "group:team": one key per conversation. */
export function conversationKey(conversation: Conversation): string {
  return `${conversation.kind}:${conversation.name}`;
}

export function sameConversation(a: Conversation | null, b: Conversation | null): boolean {
  return a !== null && b !== null && a.kind === b.kind && a.name === b.name;
}

/** The conversation an entry or message belongs to, seen by `me`. */
export function conversationOf(item: Pick<HistoryEntry, "from" | "to" | "group">, me: string): Conversation {
  if (item.group !== undefined) return { kind: "group", name: item.group };
  return { kind: "user", name: item.from === me ? item.to : item.from };
}

export interface ConversationSummary {
  conversation: Conversation;
  unread: number;
  /** The newest message or change, ms since the Unix epoch; 0 for none yet. */
  lastActivity: number;
}

const READ_MARKS = "web-read.json";

export class ConversationList {
  private readonly summaries = new Map<string, ConversationSummary>();

  private constructor(
    private readonly me: string,
    private readonly storage: HomeStorage,
    private readonly marks: Map<string, number>,
  ) {}

  static async load(me: string, storage: HomeStorage): Promise<ConversationList> {
    const marks = new Map<string, number>();
    try {
      const data: unknown = JSON.parse((await storage.read(READ_MARKS)) ?? "{}");
      if (data && typeof data === "object") {
        for (const [key, value] of Object.entries(data)) {
          if (typeof value === "number" && Number.isFinite(value)) marks.set(key, value);
        }
      }
    } catch {
      // Damaged: everything counts as unread from its start, which costs a count, never a message.
    }
    return new ConversationList(me, storage, marks);
  }

  /** Counts the history (oldest first): messages received after a conversation's read mark are unread. */
  count(entries: readonly HistoryEntry[]): void {
    for (const entry of entries) {
      const conversation = conversationOf(entry, this.me);
      const summary = this.summary(conversation);
      summary.lastActivity = Math.max(summary.lastActivity, entry.recordedAt);
      if (entry.kind === "message" && entry.direction === "in") {
        if (entry.recordedAt > this.readAt(conversation)) summary.unread += 1;
      }
    }
  }

  /** A message arrived (or one of ours, from another device): unread unless it is being read. */
  received(message: ShownMessage, current: Conversation | null): Conversation {
    const conversation = conversationOf(message, this.me);
    const summary = this.summary(conversation);
    summary.lastActivity = Date.now();
    if (message.from !== this.me) {
      if (sameConversation(conversation, current)) this.read(conversation);
      else summary.unread += 1;
    }
    return conversation;
  }

  /** A conversation with no history yet (a group this user is in, one just started): listed all the same. */
  know(conversation: Conversation): void {
    this.summary(conversation);
  }

  forget(conversation: Conversation): void {
    this.summaries.delete(conversationKey(conversation));
  }

  touched(conversation: Conversation, at = Date.now()): void {
    const summary = this.summary(conversation);
    summary.lastActivity = Math.max(summary.lastActivity, at);
  }

  /** The conversation is on screen: everything in it counts as read from now. */
  read(conversation: Conversation): void {
    this.summary(conversation).unread = 0;
    this.marks.set(conversationKey(conversation), Date.now());
    void this.storage
      .write(READ_MARKS, JSON.stringify(Object.fromEntries(this.marks)))
      .catch(() => undefined);
  }

  readAt(conversation: Conversation): number {
    return this.marks.get(conversationKey(conversation)) ?? 0;
  }

  /** Every conversation, the most recently active first. */
  list(): ConversationSummary[] {
    return [...this.summaries.values()]
      .map((summary) => ({ ...summary }))
      .sort(
        (a, b) => b.lastActivity - a.lastActivity || a.conversation.name.localeCompare(b.conversation.name),
      );
  }

  private summary(conversation: Conversation): ConversationSummary {
    const key = conversationKey(conversation);
    let summary = this.summaries.get(key);
    if (!summary) {
      summary = { conversation, unread: 0, lastActivity: 0 };
      this.summaries.set(key, summary);
    }
    return summary;
  }
}
