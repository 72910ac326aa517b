// telepound group join G: accepts the invitation to group G. The group's chain of signed statements up to
// the server's head is verified first, and the join is signed on that head only if it invites you: a group
// whose chain does not verify is refused (exit 8), one that does not invite you too (exit 7).

import { Contacts } from "../contacts.js";
import { joinGroup } from "../group-changes.js";
import { joinedReport } from "../group-reports.js";
import { GroupDirectory } from "../groups.js";
import { loadSession } from "../session.js";
import { parseGroupName } from "./args.js";
import type { CommandSpec } from "./command.js";

export const groupJoin: CommandSpec = {
  name: "group join",
  summary: "accept the invitation to group G: you become a member (exit 7 if you are not invited)",
  args: [{ syntax: "<group>", description: "the group you were invited to (see `telepound group list`)" }],
  examples: ["telepound group join team", "telepound group join team --json"],
  async run(ctx, { args: [rawGroup = ""] }) {
    const name = parseGroupName(rawGroup);
    const me = await loadSession(ctx);
    const groups = await GroupDirectory.load(ctx.home, me, new Contacts(ctx.home, me));
    const report = joinedReport(await joinGroup({ me, groups, printer: ctx.printer }, name));
    ctx.printer.result(report.human, report.data);
  },
};
