// chat's conversations: who plain lines go to, and for each conversation its unread count and last
// activity, from the local history at the start and from what arrives and goes out since. What /list
// shows, what the prompt counts and where /reply goes.

import type { ShownMessage } from "../../client/events.js";
import type { HistoryEntry } from "../../client/store/history.js";
import type { ReadMarks } from "./read-marks.js";

/** Who plain lines go to. */
export type Conversation = { kind: "user"; name: string } | { kind: "group"; name: string };

/** "user:bob" or "group:team": one key per conversation, for maps and the read marks. */
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
  /** The newest message or change, ms since the Unix epoch. */
  lastActivity: number;
}

export class Conversations {
  private readonly summaries = new Map<string, ConversationSummary>();
  /** The conversation of the newest message received: where /reply goes. */
  lastIncoming: Conversation | null = null;

  constructor(
    private readonly me: string,
    private readonly marks: ReadMarks,
  ) {}

  /** Counts the history (oldest first): messages received after a conversation's read mark are unread. */
  load(entries: readonly HistoryEntry[]): void {
    for (const entry of entries) {
      const conversation = conversationOf(entry, this.me);
      const summary = this.summary(conversation);
      summary.lastActivity = Math.max(summary.lastActivity, entry.recordedAt);
      if (entry.kind === "message" && entry.direction === "in") {
        this.lastIncoming = conversation;
        if (entry.recordedAt > this.marks.get(conversationKey(conversation))) summary.unread += 1;
      }
    }
  }

  /** A message arrived (or one of ours came back from another device); unread unless it is being read. */
  received(message: ShownMessage, current: Conversation | null): Conversation {
    const conversation = conversationOf(message, this.me);
    const summary = this.summary(conversation);
    summary.lastActivity = Date.now();
    if (message.from !== this.me) {
      this.lastIncoming = conversation;
      if (sameConversation(conversation, current)) this.read(conversation);
      else summary.unread += 1;
    }
    return conversation;
  }

  /** A conversation that exists without any history yet (a group this user is in): listed all the same. */
  know(conversation: Conversation): void {
    this.summary(conversation);
  }

  /** Something went out to the conversation. */
  touched(conversation: Conversation): void {
    this.summary(conversation).lastActivity = Date.now();
  }

  /** The conversation is on screen: everything in it counts as read from now. */
  read(conversation: Conversation): void {
    this.summary(conversation).unread = 0;
    this.marks.set(conversationKey(conversation), Date.now());
  }

  unread(conversation: Conversation): number {
    return this.summaries.get(conversationKey(conversation))?.unread ?? 0;
  }

  /** Every conversation, the most recently active first. */
  list(): ConversationSummary[] {
    return [...this.summaries.values()].sort((a, b) => b.lastActivity - a.lastActivity);
  }

  /** Conversations with unread messages, other than `except`, most recent first. */
  unreadElsewhere(except: Conversation | null): ConversationSummary[] {
    return this.list().filter(
      (summary) => summary.unread > 0 && !sameConversation(summary.conversation, except),
    );
  }

  /** Every user and group name met in the history or since: for tab completion. */
  names(kind: Conversation["kind"]): string[] {
    return this.list()
      .map((summary) => summary.conversation)
      .filter((conversation) => conversation.kind === kind)
      .map((conversation) => conversation.name);
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
