// telepound chat: an interactive session that stays connected, and works offline. `/msg USER` or
// `/group G` opens a conversation (its last messages shown from the history, a line marking what is new
// since last time; with TEXT, sends one message), plain lines go to the current conversation, `/reply`
// goes to whoever wrote last, `/list` shows every conversation with its unread count, `/file PATH` sends
// a file (its progress in the prompt), `/create`, `/add`, `/remove`, `/join`, `/decline`, `/leave` and
// `/members` manage groups, `/history` shows more of the conversation, `/verify USER` the safety number,
// `/quit` ends it. Tab completes commands, users and groups.
//
// Messages go out through an outbox, one at a time and in the order typed; while the server is out of
// reach they wait there and go out once it is back. Slash commands never wait behind them. The prompt
// says when the connection is down and when the next try is; any key (or /reconnect) tries at once.
// Messages received for another conversation are marked with its unread count.

import { UsageError } from "../../client/errors.js";
import { AWAY_AFTER_MS, NOTIFY_MODES, type NotifyMode, Notifier } from "../notify.js";
import type { CommandSpec } from "./command.js";

export const chat: CommandSpec = {
  name: "chat",
  summary: "interactive chat: /msg USER [TEXT], /group G [TEXT], plain lines to the current one, /quit",
  options: [
    {
      flags: "--notify <how>",
      description: `tell you of messages while you are away (no key pressed for ${AWAY_AFTER_MS / 1000} s): ${NOTIFY_MODES.join(", ")}`,
      defaultValue: "none",
    },
  ],
  examples: [
    "telepound chat  # then /msg bob or /group team, and type",
    "telepound chat --notify desktop  # a desktop notification for messages while you are away",
    "telepound chat --home ~/.telepound-bob  # a second user on the same machine",
  ],
  async run(ctx, { options }) {
    const notify = String(options.notify ?? "none") as NotifyMode;
    if (!NOTIFY_MODES.includes(notify)) {
      throw new UsageError(`--notify must be one of ${NOTIFY_MODES.join(", ")}, not "${notify}"`);
    }
    const me = await ctx.client.session();
    // Loaded now: the session's code is most of the CLI's, and no other command needs it.
    const { ChatSession } = await import("../chat/session.js");
    await new ChatSession(ctx, me.username, new Notifier(notify, ctx.io.stdout)).run();
  },
};
