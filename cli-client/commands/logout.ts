// telepound logout: revokes the session on the server, then deletes the session and every key from this
// home. If the server cannot be reached nothing is deleted, so the user can retry the revocation.

import { Api } from "../../client/net/api.js";
import { AuthError } from "../../client/errors.js";
import { forgetSession } from "../../client/session.js";
import type { CommandSpec } from "./command.js";

export const logout: CommandSpec = {
  name: "logout",
  summary: "revoke the session and delete it and the keys from this home",
  examples: ["telepound logout", "telepound logout --home ~/.telepound-laptop", "telepound logout --json"],
  async run(ctx) {
    const session = await ctx.home.read("session.json");
    if (!session) throw new AuthError(`not logged in on ${ctx.home.location}`);
    try {
      await new Api(session.server, session.token).logout();
    } catch (error) {
      // Already expired or revoked: the server has nothing left to revoke, so cleaning up is all there is.
      if (!(error instanceof AuthError)) throw error;
    }
    await forgetSession(ctx);
    ctx.printer.result(
      `logged out ${session.username}; the session and keys were removed from ${ctx.home.location}`,
      {
        username: session.username,
        loggedOut: true,
      },
    );
  },
};
