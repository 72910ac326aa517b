// telepound group list: the groups you are a member of, and the invitations waiting for your join or
// decline (group, who invited, when), as the server knows them. `group join` verifies an invitation
// before acting on it.

import { describeInvitation, invitationData, shownLines } from "../output.js";
import { loadSession } from "../session.js";
import type { CommandSpec } from "./command.js";

export const groupList: CommandSpec = {
  name: "group list",
  summary: "list the groups you are in and the invitations you have not answered",
  examples: ["telepound group list", "telepound group list --json"],
  async run(ctx) {
    const me = await loadSession(ctx);
    const { groups, invitations } = await me.api.groups();
    // One line per group: a name is kept to its line, whatever the server put in it.
    const lines = groups.length > 0 ? [...groups] : ["you are in no groups"];
    if (invitations.length > 0) {
      lines.push("invitations:", ...invitations.map((invitation) => `  ${describeInvitation(invitation)}`));
    }
    ctx.printer.result(shownLines(lines), { groups, invitations: invitations.map(invitationData) });
  },
};
