// telepound history [USER | --group G] [--search TEXT] [--limit N]: the messages this device sent and
// received (and group events), from the local history; newest last. Needs no password and no server.

import { UsageError } from "../../client/errors.js";
import { parseGroupName, parseLimit, parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

const DEFAULT_LIMIT = 50;

export const history: CommandSpec = {
  name: "history",
  summary: "show messages sent and received on this device, newest last (all conversations, or one)",
  args: [{ syntax: "[user]", description: "only the direct messages with this user" }],
  options: [
    { flags: "--group <name>", description: "only this group's messages and events" },
    { flags: "--search <text>", description: "only entries whose text contains TEXT (ignoring case)" },
    { flags: "--limit <n>", description: `the newest N entries`, defaultValue: String(DEFAULT_LIMIT) },
  ],
  examples: [
    "telepound history bob",
    "telepound history --group team --limit 200",
    'telepound history --search "invoice" --json',
  ],
  async run(ctx, { args: [rawUser], options }) {
    const group = typeof options.group === "string" ? parseGroupName(options.group) : undefined;
    const user = rawUser === undefined ? undefined : parseUsername(rawUser);
    if (user !== undefined && group !== undefined) {
      throw new UsageError("give a user or --group, not both");
    }
    const search = typeof options.search === "string" ? options.search : undefined;
    if (search === "") throw new UsageError("--search needs some text");
    const limit = parseLimit(String(options.limit ?? DEFAULT_LIMIT), "--limit");
    const entries = await ctx.client.history({ user, group, search, limit });
    for (const entry of entries) ctx.printer.historyEntry(entry);
    if (entries.length === 0) ctx.printer.info("no messages in the history match");
  },
};
