// The global setup of the projects that start servers (e2e, browser): a ledger for the run-wide privacy
// check, and the check itself after the last of their files (test/support/privacy.ts): every server
// state folder of the run is scanned for every message text, file name, file content and password the
// tests used. Any finding fails the run (exit code 1).

import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LEDGER_ENV, filesUnder, findSecrets, readLedger } from "../support/privacy.js";

export default function setup(): () => void {
  // The e2e and browser projects both name this setup; in one run they share the first one's ledger, and
  // its teardown (after every project's tests) scans once for all.
  if (process.env[LEDGER_ENV]) return () => undefined;
  const ledger = join(mkdtempSync(join(tmpdir(), "telepound-privacy-")), "ledger.ndjson");
  writeFileSync(ledger, "");
  // Inherited by the test workers, which start after this.
  process.env[LEDGER_ENV] = ledger;
  return () => {
    const { secrets, stateDirs } = readLedger(ledger);
    const present = stateDirs.filter((dir) => existsSync(dir));
    const files = present.reduce((sum, dir) => sum + filesUnder(dir).length, 0);
    const found = findSecrets(present, secrets);
    console.log(
      `privacy scan: ${secrets.length} secrets looked for in ${files} files of ${present.length} server states: ` +
        `${found.length === 0 ? "none found" : `${found.length} found`}`,
    );
    if (found.length > 0) {
      // Vitest reports an error thrown by a global teardown but still exits 0; the exit code is set here.
      console.error(
        `PRIVACY SCAN FAILED: secrets found in the server's persisted state:\n${found.join("\n")}`,
      );
      process.exitCode = 1;
    }
  };
}
