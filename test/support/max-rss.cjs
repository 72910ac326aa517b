// Preloaded (NODE_OPTIONS=--require) into a CLI process by the memory test: on exit, prints the process's
// peak resident set size to stderr as "telepound-max-rss-kib N", for the test to read.
"use strict";
process.on("exit", () => {
  require("node:fs").writeSync(2, `telepound-max-rss-kib ${process.resourceUsage().maxRSS}\n`);
});
