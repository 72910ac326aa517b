// telepound group remove G USER: the admin removes USER from group G (exit 7 for anyone else) by signing
// a remove statement; USER gets a "removed" event and nothing sent to the group after it.

import { Contacts } from "../contacts.js";
import { changeMember } from "../group-changes.js";
import { GroupDirectory } from "../groups.js";
import { describeGroup, groupData } from "../output.js";
import { loadSession } from "../session.js";
import { parseGroupName, parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

export const groupRemove: CommandSpec = {
  name: "group remove",
  summary: "remove USER from group G (admin only; the admin leaves with `group leave`)",
  args: [
    { syntax: "<group>", description: "the group" },
    { syntax: "<user>", description: "who to remove" },
  ],
  examples: ["telepound group remove team carol", "telepound group remove team carol --json"],
  async run(ctx, { args: [rawGroup = "", rawUser = ""] }) {
    const name = parseGroupName(rawGroup);
    const user = parseUsername(rawUser);
    const me = await loadSession(ctx);
    const groups = await GroupDirectory.load(ctx.home, me, new Contacts(ctx.home, me));
    const info = await changeMember({ me, groups, printer: ctx.printer }, name, "remove", user);
    ctx.printer.result(`removed ${user} from ${describeGroup(info)}`, groupData(info));
  },
};
