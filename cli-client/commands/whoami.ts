// telepound whoami: prints the logged-in user after checking with the server that the session still
// works (an expired or revoked session exits 3).

import { isoTime } from "../output.js";
import type { CommandSpec } from "./command.js";

export const whoami: CommandSpec = {
  name: "whoami",
  summary: "print the logged-in user (checks the session with the server)",
  examples: [
    "telepound whoami",
    "telepound whoami --json  # also the key fingerprint, server and session expiry",
  ],
  async run(ctx) {
    const me = await ctx.client.whoami();
    ctx.printer.result(me.username, {
      username: me.username,
      fingerprint: me.fingerprint,
      server: me.server,
      sessionId: me.sessionId,
      expiresAt: isoTime(me.expiresAt),
    });
  },
};
