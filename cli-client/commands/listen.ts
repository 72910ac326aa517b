// telepound listen: stays connected and prints every message and group event as it arrives (one JSON
// object per line with --json), for scripts and bots. Reconnects by itself after a drop; acknowledges
// a message only once its line has left the process, so a consumer that dies loses nothing. Ends on
// Ctrl-C or SIGTERM (exit 0, after acknowledging what was printed) or when the session ends (exit 3).

import { resolve } from "node:path";
import { Contacts } from "../../client/contacts.js";
import { ensureFolder } from "../../client/files.js";
import { GroupDirectory } from "../../client/groups.js";
import { Receiver } from "../../client/incoming.js";
import { LiveConnection } from "../../client/net/live-connection.js";
import { whenFlushed } from "../output.js";
import { noProgress } from "../progress.js";
import { loadSession } from "../../client/session.js";
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
    const me = await loadSession(ctx);
    const outDir = typeof options.out === "string" ? resolve(options.out) : ctx.home.downloads;
    if (typeof options.out === "string") await ensureFolder(outDir);
    const claim = await ctx.home.claimReceiver("listen");
    const history = await ctx.home.openHistory(me.username);
    const { printer } = ctx;

    let stop: (error: unknown) => void = () => undefined;
    const stopped = new Promise<void>((done, fail) => {
      stop = (error) => (error ? fail(error) : done());
    });
    let live: LiveConnection | null = null;
    const contacts = new Contacts(ctx.home, me);
    const receiver = await Receiver.create({
      home: ctx.home,
      me,
      contacts,
      printer,
      groups: await GroupDirectory.load(ctx.home, me, contacts),
      history,
      // A progress bar would interleave with the lines of a long-running listener; files are announced.
      files: { outDir, progress: noProgress },
      ack: (id) => live?.ack(id),
      // Written to a pipe, a line may still sit in this process's buffer: it must reach the reader
      // (or fail loudly) before its message is acknowledged.
      flushed: () => whenFlushed(ctx.io.stdout),
      onFatal: stop,
    });
    const onSignal = () => stop(null);
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
      live = await LiveConnection.open({
        me,
        onDelivery: (frame) => receiver.push(frame),
        onEvent: (event) => receiver.pushEvent(event),
        onServerError: (error) => printer.warn(error.message),
        onLost: (cause, retryInMs) =>
          printer.warn(
            `connection lost (${cause.message}); reconnecting in ${Math.ceil(retryInMs / 1000)} s`,
          ),
        onReconnected: () => printer.warn("reconnected"),
        onFatal: stop,
      });
      await stopped;
      await receiver.drain();
    } catch (error) {
      // Show and acknowledge what already arrived before reporting why we stopped.
      await receiver.drain().catch(() => undefined);
      throw error;
    } finally {
      process.removeListener("SIGINT", onSignal);
      process.removeListener("SIGTERM", onSignal);
      await live?.close();
      history.close();
      await claim.release();
    }
  },
};
