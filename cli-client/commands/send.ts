// telepound send USER TEXT... | send --group G TEXT...: seals one message for USER (or every member of
// group G) and exits 0 once the server has delivered it to a live connection or stored it; uses a
// send-only socket so nothing queued for us is consumed.

import { Connection } from "../connection.js";
import { Contacts } from "../contacts.js";
import { UsageError } from "../errors.js";
import { GroupDirectory } from "../groups.js";
import { type SentMessage, groupToSealFor, sendDirect, sendToGroup } from "../outgoing.js";
import { isoTime } from "../output.js";
import { loadSession } from "../session.js";
import { parseGroupName, parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

export const send: CommandSpec = {
  name: "send",
  summary: "send USER (or --group G) a message (exit 0 once the server delivered or stored it)",
  args: [
    { syntax: "[user]", description: "the recipient (left out with --group)" },
    {
      syntax: "[text...]",
      description: 'the message; words are joined with spaces (use -- before text starting with "-")',
    },
  ],
  options: [{ flags: "--group <group>", description: "send to every member of this group instead" }],
  async run(ctx, { args, options }) {
    const group = typeof options.group === "string" ? parseGroupName(options.group) : null;
    // With --group every positional word is text; without it the first names the recipient.
    const [rawUser, ...words] = group === null ? args : [undefined, ...args];
    if (group === null && rawUser === undefined) throw new UsageError("send needs a USER or --group G");
    const to = rawUser === undefined ? null : parseUsername(rawUser);
    const text = words.join(" ");
    if (text.trim() === "") throw new UsageError("nothing to send: the message is empty");
    const me = await loadSession(ctx);
    const contacts = new Contacts(ctx.home, me);
    const groups = await GroupDirectory.load(ctx.home, me.username, me.api);
    // Resolved before connecting, so an unknown user, a changed key, a group that does not exist or is
    // not ours fails without opening a socket.
    if (to !== null) {
      const recipient = await contacts.resolve(to);
      if (recipient.newlyPinned) {
        ctx.printer.warn(`first contact with ${to}: pinned their key fingerprint ${recipient.fingerprint}`);
      }
    }
    const groupState = group === null ? undefined : await groupToSealFor(groups, group, me.username);
    const connection = await Connection.open({ server: me.server, token: me.session.token, receive: false });
    let sent: SentMessage;
    try {
      const outbox = { home: ctx.home, me, contacts, connection, printer: ctx.printer, groups };
      sent =
        to !== null
          ? await sendDirect(outbox, to, { text })
          : await sendToGroup(outbox, group!, { text }, groupState);
    } finally {
      await connection.close();
      await groups.save();
    }
    const where = sent.group === undefined ? sent.to : `the group ${sent.group}`;
    const human =
      sent.status === "delivered" ? `delivered to ${where}` : `stored for ${where} (not connected right now)`;
    ctx.printer.result(human, {
      id: sent.id,
      to: sent.to,
      ...(sent.group === undefined ? {} : { group: sent.group, epoch: sent.epoch }),
      status: sent.status,
      sentAt: isoTime(sent.sentAt),
    });
  },
};
