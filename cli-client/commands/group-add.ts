// telepound group add G USER: the admin adds USER to group G (exit 7 for anyone else); the group's epoch
// moves on and every member, USER included, gets an "added" event.

import { GroupDirectory } from "../groups.js";
import { describeGroup, groupData } from "../output.js";
import { loadSession } from "../session.js";
import { parseGroupName, parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

export const groupAdd: CommandSpec = {
  name: "group add",
  summary: "add USER to group G (admin only)",
  args: [
    { syntax: "<group>", description: "the group" },
    { syntax: "<user>", description: "who to add" },
  ],
  examples: ["telepound group add team dave", "telepound group add team dave --json"],
  async run(ctx, { args: [rawGroup = "", rawUser = ""] }) {
    const name = parseGroupName(rawGroup);
    const user = parseUsername(rawUser);
    const me = await loadSession(ctx);
    const info = await me.api.addMember(name, user);
    const groups = await GroupDirectory.load(ctx.home, me.username, me.api);
    groups.learnInfo(info);
    await groups.save();
    ctx.printer.result(`added ${user} to ${describeGroup(info)}`, groupData(info));
  },
};
