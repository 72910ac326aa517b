// telepound send USER TEXT...: seals one message for USER and exits 0 once the server has delivered it
// to a live connection or stored it; uses a send-only socket so nothing queued for us is consumed.

import { Connection } from "../connection.js";
import { Contacts } from "../contacts.js";
import { UsageError } from "../errors.js";
import { sendText } from "../outgoing.js";
import { isoTime } from "../output.js";
import { loadSession } from "../session.js";
import { parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

export const send: CommandSpec = {
  name: "send",
  summary: "send USER a message (exit 0 once the server delivered or stored it)",
  args: [
    { syntax: "<user>", description: "the recipient" },
    {
      syntax: "<text...>",
      description: 'the message; words are joined with spaces (use -- before text starting with "-")',
    },
  ],
  async run(ctx, { args: [raw = "", ...words] }) {
    const to = parseUsername(raw);
    const text = words.join(" ");
    if (text.trim() === "") throw new UsageError("nothing to send: the message is empty");
    const me = await loadSession(ctx);
    const contacts = new Contacts(ctx.home, me);
    // Resolved before connecting, so an unknown user or a changed key fails without opening a socket.
    const recipient = await contacts.resolve(to);
    if (recipient.newlyPinned) {
      ctx.printer.warn(`first contact with ${to}: pinned their key fingerprint ${recipient.fingerprint}`);
    }
    const connection = await Connection.open({ server: me.server, token: me.session.token, receive: false });
    try {
      const sent = await sendText(
        { home: ctx.home, me, contacts, connection, printer: ctx.printer },
        to,
        text,
      );
      const human =
        sent.status === "delivered" ? `delivered to ${to}` : `stored for ${to} (not connected right now)`;
      ctx.printer.result(human, { id: sent.id, to, status: sent.status, sentAt: isoTime(sent.sentAt) });
    } finally {
      await connection.close();
    }
  },
};
