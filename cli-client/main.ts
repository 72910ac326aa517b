#!/usr/bin/env node
// The telepound executable's entry point (bundled to dist/telepound.mjs): runs the CLI with the real
// process streams, and is the only place that calls process.exit.
//
// Nothing else is imported up front: `telepound --version` is answered before the CLI's modules are
// loaded (esbuild inlines package.json), so it costs about what starting Node costs. The CLI itself is
// the bundle dist/cli.cjs, loaded with its code cache (load-cli.ts).

import packageJson from "../package.json" with { type: "json" };

const argv = process.argv.slice(2);
// The same answer commander gives for these flags (cli.ts), without loading commander and every command.
if (argv[0] === "--version" || argv[0] === "-V") {
  process.stdout.write(`${packageJson.version}\n`);
} else {
  // `telepound inbox | head -1`: once the reader is gone, stop at once. Carrying on would acknowledge
  // messages that were written into a closed pipe, and the server would then drop them unread.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0);
    throw error;
  });

  // The bundle is minified: with TELEPOUND_DEBUG, the stack runCli prints names the TypeScript sources.
  if (process.env.TELEPOUND_DEBUG) process.setSourceMapsEnabled(true);
  const io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env };
  // While a daemon runs for the home, most commands go through it: this loads nothing but node:net.
  const { viaDaemon } = await import("./daemon/thin-client.js");
  const exitCode = (await viaDaemon(argv, io)) ?? (await (await cli()).runCli(argv, io));
  // Exiting explicitly: a socket or stdin listener left behind must not keep a finished command alive.
  // Wait for stdout first, so piped output is never cut short.
  await new Promise<void>((done) => process.stdout.write("", () => done()));
  process.exit(exitCode);
}

/** The CLI's bundle beside this file (dist/), with its code cache. */
async function cli(): Promise<import("./load-cli.js").CliModule> {
  const { loadCli } = await import("./load-cli.js");
  return loadCli(new URL("./cli.cjs", import.meta.url), new URL("./cli.v8cache", import.meta.url));
}
