// telepound group info G: the group's admin, epoch, members (oldest first) and invited users, once the
// server's answer verifies against the signed chain (changes adopted on the way are still shown at the next
// send). Exit 4 if there is no such group, 7 if you are neither a member nor invited (the server shows a
// group only to them).

import { Contacts } from "../contacts.js";
import { GroupDirectory } from "../groups.js";
import { describeGroup, groupData } from "../output.js";
import { loadSession } from "../session.js";
import { parseGroupName } from "./args.js";
import type { CommandSpec } from "./command.js";

export const groupInfo: CommandSpec = {
  name: "group info",
  summary:
    "show group G's admin, members and invited users (exit 4 if no such group, 7 if you are neither member nor invited)",
  args: [{ syntax: "<group>", description: "the group" }],
  examples: ["telepound group info team", "telepound group info team --json"],
  async run(ctx, { args: [rawGroup = ""] }) {
    const name = parseGroupName(rawGroup);
    const me = await loadSession(ctx);
    const groups = await GroupDirectory.load(ctx.home, me, new Contacts(ctx.home, me));
    const { info } = await groups.catchUp(name);
    ctx.printer.result(describeGroup(info), groupData(info));
  },
};
