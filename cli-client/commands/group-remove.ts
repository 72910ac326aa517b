// telepound group remove G USER: the admin removes USER from group G (exit 7 for anyone else) by signing
// a remove statement; USER gets a "removed" event and nothing sent to the group after it. For a USER who
// was invited and has not answered, the same statement withdraws the invitation ("uninvited").

import { Contacts } from "../contacts.js";
import { changeMember } from "../group-changes.js";
import { memberChangeReport } from "../group-reports.js";
import { GroupDirectory } from "../groups.js";
import { loadSession } from "../session.js";
import { parseGroupName, parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

export const groupRemove: CommandSpec = {
  name: "group remove",
  summary:
    "remove USER from group G, or withdraw their invitation (admin only; the admin leaves with `group leave`)",
  args: [
    { syntax: "<group>", description: "the group" },
    { syntax: "<user>", description: "who to remove (a member, or someone invited)" },
  ],
  examples: ["telepound group remove team carol", "telepound group remove team carol --json"],
  async run(ctx, { args: [rawGroup = "", rawUser = ""] }) {
    const name = parseGroupName(rawGroup);
    const user = parseUsername(rawUser);
    const me = await loadSession(ctx);
    const groups = await GroupDirectory.load(ctx.home, me, new Contacts(ctx.home, me));
    const change = await changeMember({ me, groups, printer: ctx.printer }, name, "remove", user);
    const report = memberChangeReport(change, user);
    ctx.printer.result(report.human, report.data);
  },
};
