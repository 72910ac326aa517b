// telepound user USER: exits 0 and prints USER's key fingerprint if the account exists (4 if not), and
// when it was verified, checking the server's keys against the pinned ones and pinning them on first
// sight. Keys that changed (now or before, until `trust`) are reported loudly with exit 8.

import { parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

export const user: CommandSpec = {
  name: "user",
  summary: "show a user's key fingerprint (exit 4 if there is no such user)",
  args: [{ syntax: "<user>", description: "the username to look up" }],
  examples: [
    "telepound user bob  # compare with the fingerprint bob sees in `telepound whoami --json`",
    "telepound user bob --json",
  ],
  async run(ctx, { args: [raw = ""] }) {
    const username = parseUsername(raw);
    const me = await ctx.client.session();
    const contact = await ctx.client.lookupUser(username);
    const pin =
      username === me.username
        ? { self: true }
        : {
            firstSeen: contact.firstSeen,
            newlyPinned: contact.newlyPinned,
            verified: contact.verifiedAt !== undefined,
            ...(contact.verifiedAt === undefined ? {} : { verifiedAt: contact.verifiedAt }),
          };
    const verified = contact.verifiedAt === undefined ? "" : ` (verified on ${contact.verifiedAt})`;
    ctx.printer.result(`${username}'s key fingerprint: ${contact.fingerprint}${verified}`, {
      username,
      fingerprint: contact.fingerprint,
      ...pin,
    });
  },
};
