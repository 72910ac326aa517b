// The telepound executable's entry point (bundled to dist/telepound.mjs): runs the CLI with the real
// process streams, and is the only place that calls process.exit.

import { runCli } from "./cli.js";

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
