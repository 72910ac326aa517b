// telepound trust USER: accepts the keys the server now gives for USER after a key change: they replace the
// pinned ones, sending to USER works again, held messages from USER are shown by the next receiver, and
// USER is no longer verified (new keys are verified anew). Says so and exits 0 if nothing changed.

import { describeTrust } from "../../client/trust.js";
import { parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

export const trust: CommandSpec = {
  name: "trust",
  summary: "accept the keys the server now gives for USER after a key change (USER is then unverified)",
  args: [{ syntax: "<user>", description: "the user whose new keys to accept" }],
  examples: [
    "telepound trust bob  # after `telepound verify bob` showed bob the same number",
    "telepound trust bob --json",
  ],
  async run(ctx, { args: [raw = ""] }) {
    const username = parseUsername(raw);
    const { result, held } = await ctx.client.trust(username);
    ctx.printer.result(describeTrust(result, held).join("\n"), {
      username,
      outcome: result.outcome,
      changed: result.outcome !== "unchanged",
      fingerprint: result.fingerprint,
      ...(result.previousFingerprint === null ? {} : { previousFingerprint: result.previousFingerprint }),
      safetyNumber: result.safetyNumber,
      verified: result.verifiedAt !== null,
      held,
    });
  },
};
