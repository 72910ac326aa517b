// telepound verify USER [--yes]: prints the safety number between you and USER, to compare with the one
// USER sees, and marks USER's keys verified when it matches (asked on a terminal; --yes for scripts).
// Exit 8 while USER's keys have changed and wait for `trust`: it shows the number for the new keys then.

import { KeyMismatchError } from "../../client/errors.js";
import { describeSafetyNumber, safetyReportData } from "../../client/trust.js";
import { parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

export const verify: CommandSpec = {
  name: "verify",
  summary: "show the safety number to compare with USER, and mark their keys verified if it matches",
  args: [{ syntax: "<user>", description: "the user whose keys to verify" }],
  options: [
    {
      flags: "--yes",
      description: "mark USER verified without asking (only once you compared the numbers)",
    },
  ],
  examples: [
    "telepound verify bob  # read the number to bob on a call; answer y if bob sees the same",
    "telepound verify bob --yes  # already compared: mark bob verified without asking",
    "telepound verify bob --json",
  ],
  async run(ctx, { args: [raw = ""], options }) {
    const username = parseUsername(raw);
    const me = await ctx.client.session();
    const report = await ctx.client.safetyNumber(username);
    const lines = describeSafetyNumber(report);
    if (report.keyChange) {
      ctx.printer.result(lines.join("\n"), safetyReportData(report));
      throw new KeyMismatchError(
        `${username}'s keys changed and are not accepted yet, so they were not marked verified: if ` +
          `${username} sees the same number, run \`telepound trust ${username}\`, then verify again`,
      );
    }
    if (report.newlyPinned) {
      ctx.printer.warn(`first contact with ${username}: pinned their key fingerprint ${report.fingerprint}`);
    }
    if (report.verifiedAt !== null && options.yes !== true) {
      ctx.printer.result(lines.join("\n"), safetyReportData(report));
      return;
    }
    if (options.yes === true) {
      await ctx.client.markVerified(report);
      ctx.printer.result(describeSafetyNumber(report).join("\n"), safetyReportData(report));
      return;
    }
    // Asking needs a person at a terminal; --json is for scripts, which say --yes when they mean it.
    if (!ctx.io.stdin.isTTY || ctx.printer.json) {
      const hint = `once ${username} sees the same number, mark them verified: telepound verify ${username} --yes`;
      ctx.printer.result([...lines, hint].join("\n"), safetyReportData(report));
      return;
    }
    ctx.printer.info(lines.join("\n"));
    const { default: confirm } = await import("@inquirer/confirm");
    const same = await confirm(
      { message: `Does ${username} see the same number?`, default: false },
      { input: ctx.io.stdin, output: ctx.io.stderr },
    );
    if (!same) {
      throw new KeyMismatchError(
        `the safety numbers differ, so ${username} was not marked verified. Check that ${username} ran ` +
          `\`telepound verify ${me.username}\`; if the numbers still differ, someone may be intercepting your ` +
          `messages: do not trust these keys`,
      );
    }
    const verifiedAt = await ctx.client.markVerified(report);
    ctx.printer.result(`${username} verified on ${verifiedAt}`, safetyReportData(report));
  },
};
