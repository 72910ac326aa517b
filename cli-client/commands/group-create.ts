// telepound group create G [USER...]: creates group G with you as its admin: you sign the create statement,
// the server checks it and tells everyone concerned with a "created" event. Users who have written to you
// become members at once; the others (the server names them, consent_required) are invited instead, with
// the create signed again, and become members by `group join G`.

import { Contacts } from "../contacts.js";
import { createGroup } from "../group-changes.js";
import { createdReport } from "../group-reports.js";
import { GroupDirectory } from "../groups.js";
import { loadSession } from "../session.js";
import { parseGroupName, parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

export const groupCreate: CommandSpec = {
  name: "group create",
  summary:
    "create group G with you as admin; USERs who wrote to you are members, the others invited (409 → exit 7 if the name is taken)",
  args: [
    { syntax: "<group>", description: "the group's name: 3–32 of a-z 0-9 _ -" },
    {
      syntax: "[users...]",
      description: "the other members (anyone who has not written to you yet is invited instead)",
    },
  ],
  examples: [
    "telepound group create team bob carol",
    "telepound group create notes  # just you for now; add members later",
    "telepound group create team bob carol --json",
  ],
  async run(ctx, { args: [rawGroup = "", ...rawUsers] }) {
    const name = parseGroupName(rawGroup);
    const users = rawUsers.map(parseUsername);
    const me = await loadSession(ctx);
    const groups = await GroupDirectory.load(ctx.home, me, new Contacts(ctx.home, me));
    const report = createdReport(await createGroup({ me, groups, printer: ctx.printer }, name, users));
    ctx.printer.result(report.human, report.data);
  },
};
