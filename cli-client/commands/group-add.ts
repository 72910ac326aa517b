// telepound group add G USER: the admin adds USER to group G (exit 7 for anyone else) by signing an add
// statement on the verified head; the group's epoch moves on and every member, USER included, is told.
// A USER who has never written to the admin is invited instead (an invite statement): they are not a
// member, get no messages, until they accept with `group join G`.

import { Contacts } from "../contacts.js";
import { changeMember } from "../group-changes.js";
import { memberChangeReport } from "../group-reports.js";
import { GroupDirectory } from "../groups.js";
import { loadSession } from "../session.js";
import { parseGroupName, parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

export const groupAdd: CommandSpec = {
  name: "group add",
  summary: "add USER to group G, or invite them if they have not written to you (admin only)",
  args: [
    { syntax: "<group>", description: "the group" },
    { syntax: "<user>", description: "who to add" },
  ],
  examples: ["telepound group add team dave", "telepound group add team dave --json"],
  async run(ctx, { args: [rawGroup = "", rawUser = ""] }) {
    const name = parseGroupName(rawGroup);
    const user = parseUsername(rawUser);
    const me = await loadSession(ctx);
    const groups = await GroupDirectory.load(ctx.home, me, new Contacts(ctx.home, me));
    const change = await changeMember({ me, groups, printer: ctx.printer }, name, "add", user);
    const report = memberChangeReport(change, user);
    ctx.printer.result(report.human, report.data);
  },
};
