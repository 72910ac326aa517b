// telepound group leave G: leaves group G by signing a leave statement. An admin who leaves hands the
// group to the longest-standing member; the last member to leave closes it. Exit 7 if you are not a
// member, 4 if there is no such group.

import { parseGroupName } from "./args.js";
import type { CommandSpec } from "./command.js";

export const groupLeave: CommandSpec = {
  name: "group leave",
  summary: "leave group G (an admin hands over to the longest-standing member)",
  args: [{ syntax: "<group>", description: "the group" }],
  examples: ["telepound group leave team", "telepound group leave team --json"],
  async run(ctx, { args: [rawGroup = ""] }) {
    const name = parseGroupName(rawGroup);
    await ctx.client.leaveGroup(name);
    ctx.printer.result(`you left the group ${name}`, { group: name, left: true });
  },
};
