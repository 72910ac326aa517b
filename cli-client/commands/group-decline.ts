// telepound group decline G: declines the invitation to group G, signed on its verified head like a join;
// the invitation is gone, and the group's members are told.

import { Contacts } from "../contacts.js";
import { declineGroup } from "../group-changes.js";
import { declinedReport } from "../group-reports.js";
import { GroupDirectory } from "../groups.js";
import { loadSession } from "../session.js";
import { parseGroupName } from "./args.js";
import type { CommandSpec } from "./command.js";

export const groupDecline: CommandSpec = {
  name: "group decline",
  summary: "decline the invitation to group G (exit 7 if you are not invited)",
  args: [{ syntax: "<group>", description: "the group you were invited to" }],
  examples: ["telepound group decline team", "telepound group decline team --json"],
  async run(ctx, { args: [rawGroup = ""] }) {
    const name = parseGroupName(rawGroup);
    const me = await loadSession(ctx);
    const groups = await GroupDirectory.load(ctx.home, me, new Contacts(ctx.home, me));
    await declineGroup({ me, groups, printer: ctx.printer }, name);
    const report = declinedReport(name);
    ctx.printer.result(report.human, report.data);
  },
};
