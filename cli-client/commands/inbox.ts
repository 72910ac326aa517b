// telepound inbox [--wait SEC] [--out DIR]: prints every pending message and those arriving within SEC
// seconds, saving received files in DIR; acknowledges them (after saving, printing, recording) and exits 0.

import type { HistoryStore } from "../../client/store/history.js";
import { resolve } from "node:path";
import { Connection } from "../../client/net/connection.js";
import { Contacts } from "../../client/contacts.js";
import type { Context } from "../context.js";
import { InterruptedError } from "../../client/errors.js";
import { ensureFolder } from "../../client/files.js";
import { GroupDirectory } from "../../client/groups.js";
import { Receiver } from "../../client/incoming.js";
import { whenFlushed } from "../output.js";
import { progressBars } from "../progress.js";
import { type LoggedIn, loadSession } from "../../client/session.js";
import { heldNotice } from "../../client/trust.js";
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
    const me = await loadSession(ctx);
    const outDir = typeof options.out === "string" ? resolve(options.out) : ctx.home.downloads;
    // A folder given on purpose is checked (and made) now, not at the first file.
    if (typeof options.out === "string") await ensureFolder(outDir);

    const claim = await ctx.home.claimReceiver("inbox");
    let history: HistoryStore | null = null;
    try {
      history = await ctx.home.openHistory(me.username);
      const receiver = await receiveBacklog(ctx, me, history, outDir, waitSeconds);
      const { shown, events, held } = receiver.counts;
      if (shown === 0 && events === 0 && held === 0) ctx.printer.info("no new messages");
      for (const [sender, count] of receiver.heldFrom) ctx.printer.warn(heldNotice(sender, count));
    } finally {
      history?.close();
      await claim.release();
    }
  },
};

/** Connects, prints and acknowledges the backlog and whatever arrives within `waitSeconds`. */
async function receiveBacklog(
  ctx: Context,
  me: LoggedIn,
  history: HistoryStore,
  outDir: string,
  waitSeconds: number,
): Promise<Receiver> {
  // Whatever ends the wait early: the connection dropping, a processing failure, or Ctrl-C.
  let stop: (error: unknown) => void = () => undefined;
  const stopped = new Promise<never>((_, reject) => (stop = reject));
  stopped.catch(() => undefined);

  let connection: Connection | null = null;
  const contacts = new Contacts(ctx.home, me);
  const receiver = await Receiver.create({
    home: ctx.home,
    me,
    contacts,
    printer: ctx.printer,
    groups: await GroupDirectory.load(ctx.home, me, contacts),
    history,
    files: { outDir, progress: progressBars(ctx.io.stderr, ctx.printer.json) },
    ack: (id) => connection?.ack(id),
    // Printed lines must have left the process before their messages are acknowledged.
    flushed: () => whenFlushed(ctx.io.stdout),
    onFatal: stop,
  });
  connection = await Connection.open({
    server: me.server,
    token: me.session.token,
    receive: true,
    onDelivery: (frame) => receiver.push(frame),
    onEvent: (event) => receiver.pushEvent(event),
    onServerError: (error) => ctx.printer.warn(error.message),
    onClose: stop,
  });
  const onSignal = () => stop(new InterruptedError());
  process.once("SIGINT", onSignal);
  try {
    await Promise.race([connection.synced, stopped]);
    if (waitSeconds > 0) await Promise.race([delay(waitSeconds * 1000), stopped]);
    await receiver.drain();
  } catch (error) {
    // Show and acknowledge what already arrived before reporting why we stopped.
    await receiver.drain().catch(() => undefined);
    throw error;
  } finally {
    process.removeListener("SIGINT", onSignal);
    await connection.close();
  }
  return receiver;
}

function delay(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
