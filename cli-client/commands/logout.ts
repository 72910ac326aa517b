// telepound logout: revokes the session on the server, then deletes the session and every key from this
// home. If the server cannot be reached nothing is deleted, so the user can retry the revocation.

import type { CommandSpec } from "./command.js";

export const logout: CommandSpec = {
  name: "logout",
  summary: "revoke the session and delete it and the keys from this home",
  examples: ["telepound logout", "telepound logout --home ~/.telepound-laptop", "telepound logout --json"],
  async run(ctx) {
    const { username } = await ctx.client.logout();
    ctx.printer.result(
      `logged out ${username}; the session and keys were removed from ${ctx.home.location}`,
      {
        username,
        loggedOut: true,
      },
    );
  },
};
