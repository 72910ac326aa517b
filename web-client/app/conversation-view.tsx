// One open conversation: its lines (history, then live), files with their download buttons and progress,
// the composer, and the panels for a user's safety number or a group's members. A contact whose keys
// changed gets the warning instead of the composer: nothing is sent to them until the user accepts the
// new keys (the core refuses it too), as in the CLI.

import { useEffect, useRef, useState } from "hono/jsx/dom";
import type { Progress } from "../../client/events.js";
import type { ChatModel, ChatState, Line } from "./chat-model.js";
import type { Conversation } from "./conversations.js";
import { GroupPanel } from "./group-panel.js";
import { SafetyPanel } from "./safety-panel.js";
import { describeChange, formatBytes, fullTime, messageText, name, shortTime } from "./words.js";

export function ConversationView(props: { model: ChatModel; state: ChatState; conversation: Conversation }) {
  const { model, state, conversation } = props;
  const keyChange = conversation.kind === "user" ? state.keyChanges.get(conversation.name) : undefined;
  const title = conversation.kind === "group" ? `Group ${name(conversation.name)}` : name(conversation.name);
  return (
    <section class="conversation" aria-labelledby="conversation-title">
      <header>
        <h2 id="conversation-title">{title}</h2>
        {conversation.kind === "user" ? (
          <SafetyPanel model={model} user={conversation.name} keyChanged={keyChange !== undefined} />
        ) : (
          <GroupPanel model={model} group={conversation.name} me={state.me} lines={state.lines.length} />
        )}
      </header>
      {keyChange !== undefined && conversation.kind === "user" ? (
        <KeyChangeWarning model={model} user={conversation.name} message={keyChange} />
      ) : null}
      <Lines model={model} lines={state.lines} me={state.me} />
      <Transfers transfers={state.transfers} />
      {keyChange === undefined ? <Composer model={model} conversation={conversation} /> : null}
    </section>
  );
}

function KeyChangeWarning({ model, user, message }: { model: ChatModel; user: string; message: string }) {
  const [busy, setBusy] = useState(false);
  return (
    <div class="key-change" role="alert">
      <p>
        <strong>{name(user)}'s keys changed.</strong> Either {name(user)} really has new keys or someone is
        intercepting your messages. Nothing is sent to {name(user)} until you accept the new keys.
      </p>
      <p class="detail">{messageText(message)}</p>
      <p>Compare the safety number with {name(user)} (in person or on a call you trust) before you accept.</p>
      <button
        type="button"
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          try {
            await model.acceptNewKeys(user);
          } catch (error) {
            model.failed(error);
          } finally {
            setBusy(false);
          }
        }}
      >
        Accept the new keys of {name(user)}
      </button>
    </div>
  );
}

function Lines({ model, lines, me }: { model: ChatModel; lines: Line[]; me: string }) {
  const list = useRef<HTMLOListElement | null>(null);
  // The newest line in view as lines come, unless the reader scrolled up to read older ones.
  useEffect(() => {
    const element = list.current;
    if (!element) return;
    const nearBottom = element.scrollHeight - element.scrollTop - element.clientHeight < 120;
    if (nearBottom || lines.length < 2) element.scrollTop = element.scrollHeight;
  }, [lines]);
  if (lines.length === 0) {
    return <p class="lines none">No messages yet.</p>;
  }
  return (
    <ol class="lines" ref={list} aria-label="Messages" aria-live="polite">
      {lines.map((line) =>
        line.kind === "event" ? (
          <li key={line.id} class="event">
            <span class="text">{line.change ? describeChange(line.change, me) : messageText(line.text)}</span>
            <time title={fullTime(line.at)}>{shortTime(line.at)}</time>
          </li>
        ) : (
          <li key={line.id} class={`message ${line.direction}`}>
            <span class="from">{line.from === me ? "you" : name(line.from)}</span>
            {line.text !== "" ? <p class="text">{messageText(line.text)}</p> : null}
            {line.file ? <FileItem model={model} file={line.file} /> : null}
            {line.fileError ? (
              <p class="file-error">file not received: {messageText(line.fileError)}</p>
            ) : null}
            <time title={fullTime(line.at)}>{shortTime(line.at)}</time>
            {line.sending ? <span class="state">sending…</span> : null}
            {line.failed ? <span class="state failed">not sent: {messageText(line.failed)}</span> : null}
          </li>
        ),
      )}
    </ol>
  );
}

function FileItem({ model, file }: { model: ChatModel; file: NonNullable<Line["file"]> }) {
  const label = `${name(file.name)} (${formatBytes(file.size)})`;
  if (file.path === undefined) return <p class="file">file: {label}</p>;
  const path = file.path;
  return (
    <p class="file">
      file: {label}{" "}
      <button
        type="button"
        aria-label={`Download ${name(file.name)}`}
        onClick={async () => {
          try {
            const url = await model.downloadUrl(path);
            const link = document.createElement("a");
            link.href = url;
            link.download = name(file.name);
            link.rel = "noopener";
            link.click();
            // The download has started from the URL; it is not needed once the browser has it.
            setTimeout(() => URL.revokeObjectURL(url), 60_000);
          } catch (error) {
            model.failed(error);
          }
        }}
      >
        Download
      </button>
    </p>
  );
}

function Transfers({ transfers }: { transfers: Progress[] }) {
  if (transfers.length === 0) return null;
  return (
    <ul class="transfers" aria-label="Files in transfer">
      {transfers.map((transfer) => {
        const verb = transfer.direction === "send" ? "Sending" : "Receiving";
        const label = `${verb} ${name(transfer.name)}`;
        return (
          <li key={transfer.transfer}>
            <label>
              {label} ({formatBytes(transfer.size)})
              <progress aria-label={label} max={Math.max(transfer.total, 1)} value={transfer.bytes} />
            </label>
          </li>
        );
      })}
    </ul>
  );
}

function Composer({ model, conversation }: { model: ChatModel; conversation: Conversation }) {
  const to = conversation.kind === "group" ? `group ${conversation.name}` : conversation.name;
  return (
    <form
      class="composer"
      aria-label={`Message to ${to}`}
      onSubmit={(event: Event) => {
        event.preventDefault();
        const form = event.currentTarget as HTMLFormElement;
        const data = new FormData(form);
        const text = String(data.get("text") ?? "");
        const picked = data.get("file");
        const file = picked instanceof File && picked.name !== "" ? picked : undefined;
        if (text.trim() === "" && !file) return;
        model.send(text, file);
        form.reset();
      }}
    >
      <label>
        Message
        <textarea
          name="text"
          rows={2}
          onKeyDown={(event: KeyboardEvent) => {
            // Enter sends, Shift+Enter starts a new line.
            if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
              event.preventDefault();
              (event.currentTarget as HTMLTextAreaElement).form?.requestSubmit();
            }
          }}
        />
      </label>
      <label>
        Attach a file
        <input name="file" type="file" />
      </label>
      <button type="submit">Send</button>
    </form>
  );
}
