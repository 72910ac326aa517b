// telepound listen: stays connected and prints every message and group event as it arrives (one JSON
// object per line with --json), for scripts and bots. Reconnects by itself after a drop; acknowledges
// a message only once its line has left the process, so a consumer that dies loses nothing. Ends on
// Ctrl-C or SIGTERM (exit 0, after acknowledging what was printed) or when the session ends (exit 3).

import { whenFlushed } from "../output.js";
import type { CommandSpec } from "./command.js";

export const listen: CommandSpec = {
  name: "listen",
  summary: "stay connected and print messages and group events as they arrive (NDJSON with --json)",
  options: [
    {
      flags: "--out <dir>",
      description: "where received files are saved (default: the home's downloads folder)",
    },
  ],
  examples: [
    "telepound listen",
    "telepound listen --json | jq -r 'select(.text) | .from + \": \" + .text'",
    "telepound listen --json --out ~/incoming >> messages.ndjson",
  ],
  async run(ctx, { options }) {
    const { printer } = ctx;
    // "reconnecting" comes before every try; one line per outage says it.
    let down = false;
    ctx.client.events.on("connection", (change) => {
      if (change.state === "reconnecting" && !down) {
        down = true;
        printer.warn(`connection lost (${change.cause}); reconnecting (about every second)`);
      } else if (change.state === "reopened") {
        down = false;
        printer.warn("reconnected");
      }
    });
    // A progress bar would interleave with the lines of a long-running listener; files are announced.
    const reception = await ctx.client.receive({
      command: "listen",
      mode: "live",
      ...(typeof options.out === "string" ? { outDir: options.out } : {}),
      // Written to a pipe, a line may still sit in this process's buffer: it must reach the reader
      // (or fail loudly) before its message is acknowledged.
      flushed: () => whenFlushed(ctx.io.stdout),
    });
    const onSignal = () => reception.stop();
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
      await reception.ended;
      await reception.finish();
    } catch (error) {
      // Show and acknowledge what already arrived before reporting why we stopped.
      await reception.finish().catch(() => undefined);
      throw error;
    } finally {
      process.removeListener("SIGINT", onSignal);
      process.removeListener("SIGTERM", onSignal);
    }
  },
};
