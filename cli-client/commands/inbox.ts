// telepound inbox [--wait SEC] [--out DIR]: prints every pending message and those arriving within SEC
// seconds, saving received files in DIR; acknowledges them (after saving, printing, recording) and exits 0.

import { InterruptedError } from "../../client/errors.js";
import { heldNotice } from "../../client/trust.js";
import { whenFlushed } from "../output.js";
import { showProgress } from "../progress.js";
import { parseSeconds } from "./args.js";
import type { CommandSpec } from "./command.js";

export const inbox: CommandSpec = {
  name: "inbox",
  summary: "print pending messages (and those arriving within --wait seconds), acknowledge them",
  options: [
    {
      flags: "--wait <seconds>",
      description: "keep listening this many seconds after the backlog",
      defaultValue: "0",
    },
    {
      flags: "--out <dir>",
      description: "where received files are saved (default: the home's downloads folder)",
    },
  ],
  examples: [
    "telepound inbox",
    "telepound inbox --wait 30 --json",
    "telepound inbox --out ./received  # save received files here",
  ],
  async run(ctx, { options }) {
    const waitSeconds = parseSeconds(String(options.wait ?? "0"), "--wait");
    await showProgress(ctx.client.events, ctx.io.stderr, ctx.printer.json);
    const reception = await ctx.client.receive({
      command: "inbox",
      mode: "backlog",
      ...(typeof options.out === "string" ? { outDir: options.out } : {}),
      // Printed lines must have left the process before their messages are acknowledged.
      flushed: () => whenFlushed(ctx.io.stdout),
    });
    // Whatever ends the wait early: the connection dropping, a processing failure, or Ctrl-C.
    const onSignal = () => reception.stop(new InterruptedError());
    process.once("SIGINT", onSignal);
    try {
      await Promise.race([reception.synced, reception.ended]);
      if (waitSeconds > 0) await Promise.race([delay(waitSeconds * 1000), reception.ended]);
      await reception.finish();
    } catch (error) {
      // Show and acknowledge what already arrived before reporting why we stopped.
      await reception.finish().catch(() => undefined);
      throw error;
    } finally {
      process.removeListener("SIGINT", onSignal);
    }
    const { shown, events, held } = reception.counts;
    if (shown === 0 && events === 0 && held === 0) ctx.printer.info("no new messages");
    for (const [sender, count] of reception.heldFrom) ctx.printer.warn(heldNotice(sender, count));
  },
};

function delay(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
