// The telepound executable's entry point (bundled to dist/telepound.mjs): runs the CLI with the real
// process streams, and is the only place that calls process.exit.

import { runCli } from "./cli.js";

// `telepound inbox | head -1`: once the reader is gone, stop at once. Carrying on would acknowledge
// messages that were written into a closed pipe, and the server would then drop them unread.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

const exitCode = await runCli(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
// Exiting explicitly: a socket or stdin listener left behind must not keep a finished command alive.
// Wait for stdout first, so piped output is never cut short.
await new Promise<void>((done) => process.stdout.write("", () => done()));
process.exit(exitCode);
