// telepound group create G [USER...]: creates group G with you as its admin and the listed users as
// members: you sign the create statement, the server checks it and tells every member with a "created" event.

import { Contacts } from "../contacts.js";
import { createGroup } from "../group-changes.js";
import { GroupDirectory } from "../groups.js";
import { describeGroup, groupData } from "../output.js";
import { loadSession } from "../session.js";
import { parseGroupName, parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

export const groupCreate: CommandSpec = {
  name: "group create",
  summary: "create group G with you as admin and USERs as members (409 → exit 7 if the name is taken)",
  args: [
    { syntax: "<group>", description: "the group's name: 3–32 of a-z 0-9 _ -" },
    { syntax: "[users...]", description: "the other members" },
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
    const info = await createGroup({ me, groups, printer: ctx.printer }, name, users);
    ctx.printer.result(`created ${describeGroup(info)}`, groupData(info));
  },
};
