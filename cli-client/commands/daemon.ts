// telepound daemon: stays connected as the home's one receiver and serves JSON-RPC 2.0 (one JSON object
// per line) on stdin/stdout and on the Unix socket daemon.sock in the home, for bots and scripts; while
// it runs, the other commands go through it (daemon/thin-client.ts). Ends on Ctrl-C or SIGTERM (exit 0)
// or when the session ends (exit 3). The methods and notifications are in README "The daemon".

import { TelepoundClient } from "../../client/telepound-client.js";
import { daemonSocketPath } from "../platform/home-dir.js";
import type { CommandSpec } from "./command.js";

export const daemon: CommandSpec = {
  name: "daemon",
  summary: "serve JSON-RPC on stdin/stdout and the home's socket; other commands then go through it",
  examples: [
    "telepound daemon",
    "telepound --home ~/tp-bot daemon  # JSON-RPC on stdin/stdout and on ~/tp-bot/daemon.sock",
  ],
  async run(ctx) {
    // A client of its own: the context's one prints what the core reports, and stdout is JSON-RPC here.
    const client = await TelepoundClient.open(ctx.client.platform, {
      home: ctx.home.location,
      server: ctx.server,
      serverChosen: ctx.serverChosen,
    });
    // Loaded when the daemon starts, not with the command table: the daemon runs the table's commands
    // itself (daemon/requests.ts), so a static import would make the table import itself.
    const { Daemon } = await import("../daemon/server.js");
    const log = (line: string) => ctx.io.stderr.write(`telepound daemon: ${line}\n`);
    try {
      const running = await Daemon.start({
        client,
        socketPath: daemonSocketPath(ctx.home.location),
        stdin: ctx.io.stdin,
        stdout: ctx.io.stdout,
        log,
      });
      const onSignal = () => running.stop();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      try {
        await running.ended;
      } finally {
        process.removeListener("SIGINT", onSignal);
        process.removeListener("SIGTERM", onSignal);
        await running.close();
        log("stopped");
      }
    } finally {
      await client.close();
    }
  },
};
