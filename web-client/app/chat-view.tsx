// The signed-in page: the conversation list and what starts a conversation on one side, the open
// conversation on the other, the connection's state and the notices above them.

import { useState, useSyncExternalStore } from "hono/jsx/dom";
import type { ChatModel, ChatState, Link } from "./chat-model.js";
import { type Conversation, conversationKey, sameConversation } from "./conversations.js";
import { ConversationView } from "./conversation-view.js";
import { DesktopNotifications } from "./desktop-notifications.js";
import { parseGroupName, parseUsernames } from "./names.js";
import { name, shortTime } from "./words.js";

export function ChatView({ model, onLogout }: { model: ChatModel; onLogout: () => Promise<void> }) {
  const state = useSyncExternalStore(
    (listener) => model.subscribe(listener),
    () => model.snapshot,
  );
  const [loggingOut, setLoggingOut] = useState(false);

  const logout = async () => {
    setLoggingOut(true);
    try {
      await onLogout();
    } catch (error) {
      model.failed(error);
      setLoggingOut(false);
    }
  };

  return (
    <div class="chat">
      <header class="top">
        <h1>Telepound</h1>
        <p class="me">
          Logged in as <strong>{name(state.me)}</strong>
        </p>
        <LinkStatus link={state.link} onRetry={() => model.retryNow()} />
        <DesktopNotifications model={model} />
        <button type="button" onClick={logout} disabled={loggingOut}>
          Log out
        </button>
      </header>
      <Notices state={state} model={model} />
      <nav class="side" aria-label="Conversations">
        <StartConversation model={model} />
        <CreateGroup model={model} />
        <Invitations state={state} model={model} />
        <ConversationList state={state} model={model} />
      </nav>
      {state.current ? (
        <ConversationView model={model} state={state} conversation={state.current} />
      ) : (
        <section class="conversation empty" aria-label="No conversation open">
          <p>Pick a conversation, or start one with a username.</p>
        </section>
      )}
    </div>
  );
}

function LinkStatus({ link, onRetry }: { link: Link; onRetry: () => void }) {
  const text = {
    connecting: "Connecting…",
    online: "Connected",
    offline: "Not connected",
    elsewhere: "Another tab of this browser receives your messages; this one can send and read them",
    ended: "Not receiving",
  }[link.state];
  return (
    <p class={`link ${link.state}`} role="status" aria-label="Connection">
      {text}
      {link.state === "offline" ? ` (${link.cause}); retrying at ${shortTime(link.retryAt)}` : ""}
      {link.state === "ended" ? `: ${link.reason}` : ""}
      {link.state === "offline" ? (
        <button type="button" onClick={onRetry}>
          Retry now
        </button>
      ) : null}
    </p>
  );
}

function Notices({ state, model }: { state: ChatState; model: ChatModel }) {
  if (state.notices.length === 0) return null;
  return (
    <ul class="notices" aria-label="Notices">
      {state.notices.map((notice) => (
        <li key={notice.id} class={notice.tone} role={notice.tone === "info" ? "status" : "alert"}>
          <span>{notice.text}</span>
          <button
            type="button"
            aria-label={`Dismiss: ${notice.text}`}
            onClick={() => model.dismiss(notice.id)}
          >
            ×
          </button>
        </li>
      ))}
    </ul>
  );
}

/** A form's fields as strings, and the form reset once the action succeeded. */
function formAction(action: (data: FormData) => Promise<void>, model: ChatModel) {
  return async (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    try {
      await action(new FormData(form));
      form.reset();
    } catch (error) {
      model.failed(error);
    }
  };
}

function StartConversation({ model }: { model: ChatModel }) {
  return (
    <form
      class="start"
      aria-label="Start a conversation"
      onSubmit={formAction(async (data) => {
        const [user] = parseUsernames(String(data.get("user") ?? ""));
        if (!user) throw new Error("type a username");
        await model.open({ kind: "user", name: user });
      }, model)}
    >
      <label>
        Username
        <input name="user" required autocomplete="off" />
      </label>
      <button type="submit">Start chat</button>
    </form>
  );
}

function CreateGroup({ model }: { model: ChatModel }) {
  return (
    <details class="create-group">
      <summary>New group</summary>
      <form
        aria-label="Create a group"
        onSubmit={formAction(async (data) => {
          const group = parseGroupName(String(data.get("group") ?? ""));
          const members = parseUsernames(String(data.get("members") ?? "")).filter(
            (user) => user !== model.snapshot.me,
          );
          await model.createGroup(group, members);
        }, model)}
      >
        <label>
          Group name
          <input name="group" required autocomplete="off" />
        </label>
        <label>
          Members (usernames, separated by commas or spaces)
          <input name="members" autocomplete="off" />
        </label>
        <button type="submit">Create group</button>
      </form>
    </details>
  );
}

function Invitations({ state, model }: { state: ChatState; model: ChatModel }) {
  if (state.invitations.length === 0) return null;
  const act = (action: () => Promise<void>) => () => action().catch((error: unknown) => model.failed(error));
  return (
    <section class="invitations" aria-labelledby="invitations-title">
      <h2 id="invitations-title">Invitations</h2>
      <ul>
        {state.invitations.map((invitation) => (
          <li key={invitation.group}>
            <span>
              {name(invitation.by)} invited you to <strong>{name(invitation.group)}</strong>
            </span>
            <button
              type="button"
              aria-label={`Accept the invitation to ${invitation.group}`}
              onClick={act(() => model.joinGroup(invitation.group))}
            >
              Accept
            </button>
            <button
              type="button"
              aria-label={`Decline the invitation to ${invitation.group}`}
              onClick={act(() => model.declineGroup(invitation.group))}
            >
              Decline
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

function conversationLabel(conversation: Conversation): string {
  return conversation.kind === "group" ? `group ${conversation.name}` : conversation.name;
}

function ConversationList({ state, model }: { state: ChatState; model: ChatModel }) {
  if (state.conversations.length === 0) return <p class="none">No conversations yet.</p>;
  return (
    <ul class="conversations" aria-label="Conversation list">
      {state.conversations.map(({ conversation, unread, lastActivity }) => {
        const label = conversationLabel(conversation);
        const unreadText = unread > 0 ? `, ${unread} unread` : "";
        const current = sameConversation(conversation, state.current);
        return (
          <li key={conversationKey(conversation)}>
            <button
              type="button"
              class={current ? "current" : ""}
              aria-current={current ? "true" : undefined}
              aria-label={`${label}${unreadText}`}
              onClick={() => model.open(conversation).catch((error: unknown) => model.failed(error))}
            >
              <span class="name">
                {conversation.kind === "group" ? "# " : ""}
                {name(conversation.name)}
              </span>
              {unread > 0 ? <span class="unread">{unread}</span> : null}
              <span class="when">{shortTime(lastActivity)}</span>
            </button>
          </li>
        );
      })}
    </ul>
  );
}
