// telepound group list: the groups you are a member of, as the server knows them (sorted by name).

import { sanitize } from "../output.js";
import { loadSession } from "../session.js";
import type { CommandSpec } from "./command.js";

export const groupList: CommandSpec = {
  name: "group list",
  summary: "list the groups you are in",
  examples: ["telepound group list", "telepound group list --json"],
  async run(ctx) {
    const me = await loadSession(ctx);
    const { groups } = await me.api.groups();
    const human = groups.length > 0 ? sanitize(groups.join("\n")) : "you are in no groups";
    ctx.printer.result(human, { groups });
  },
};
