// The privacy check: everything the server persisted (SQLite files, R2 objects, write-ahead logs) must
// hold no message text, file name, file content or password used in the run.
//
// End-to-end tests remember each secret they use (rememberSecret) and every server they start registers
// its state folder (rememberStateDir), in a ledger file the e2e project's global setup creates; after
// the whole suite, the global teardown scans every registered folder for every remembered secret
// (test/e2e/global-setup.ts). A test file may also scan its own server at once (findSecrets).

import { appendFileSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** Set by the e2e global setup: the ledger of secrets and state folders for this run. */
export const LEDGER_ENV = "TELEPOUND_PRIVACY_LEDGER";

export interface Secret {
  /** What it is, for the report ("password of alice"); never the secret itself. */
  label: string;
  bytes: Buffer;
}

type LedgerLine = { secret: string; label: string } | { stateDir: string };

function appendToLedger(line: LedgerLine): void {
  const ledger = process.env[LEDGER_ENV];
  // Outside the e2e project (a test file run on its own without the setup) there is no run-wide scan.
  if (ledger) appendFileSync(ledger, `${JSON.stringify(line)}\n`);
}

/**
 * Remembers a secret for the scan after the suite. Text is looked for as UTF-8; binary content (a file)
 * as 64-byte windows spread over it, since any stored copy would contain them.
 */
export function rememberSecret(label: string, value: string | Uint8Array): void {
  for (const secret of secretsOf(label, value)) {
    appendToLedger({ label: secret.label, secret: secret.bytes.toString("hex") });
  }
}

export function rememberStateDir(dir: string): void {
  appendToLedger({ stateDir: dir });
}

export function secretsOf(label: string, value: string | Uint8Array): Secret[] {
  if (typeof value === "string") return [{ label, bytes: Buffer.from(value, "utf8") }];
  const content = Buffer.from(value);
  if (content.length <= 64) return [{ label, bytes: content }];
  // Sixteen windows: a stored copy of a sixteenth of the file or more contains one. More would multiply
  // the scan's time (each is searched for in every stored byte) for little gain.
  const step = Math.max(64, Math.floor(content.length / 16 / 64) * 64);
  const windows: Secret[] = [];
  for (let offset = 0; offset + 64 <= content.length; offset += step) {
    windows.push({
      label: `${label} (bytes ${offset}–${offset + 63})`,
      bytes: content.subarray(offset, offset + 64),
    });
  }
  return windows;
}

export function readLedger(path: string): { secrets: Secret[]; stateDirs: string[] } {
  const secrets: Secret[] = [];
  const stateDirs = new Set<string>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const entry = JSON.parse(line) as LedgerLine;
    if ("stateDir" in entry) stateDirs.add(entry.stateDir);
    else secrets.push({ label: entry.label, bytes: Buffer.from(entry.secret, "hex") });
  }
  return { secrets, stateDirs: [...stateDirs] };
}

/** Every file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** Where any secret appears in any file under the folders: "label in path", one per finding. */
export function findSecrets(dirs: readonly string[], secrets: readonly Secret[]): string[] {
  return dirs.flatMap((dir) => findSecretsInLiveDir(dir, secrets));
}

/**
 * A running server may fold a WAL into its database and delete the -wal/-shm files between listing and reading
 * them. Skipping a vanished file could miss a secret that moved into a database already read, so the whole
 * folder is scanned again until one pass sees every file it listed.
 */
function findSecretsInLiveDir(dir: string, secrets: readonly Secret[], attempts = 5): string[] {
  try {
    const found: string[] = [];
    for (const path of filesUnder(dir)) {
      const content = readFileSync(path);
      for (const secret of secrets)
        if (content.includes(secret.bytes)) found.push(`${secret.label} in ${path}`);
    }
    return found;
  } catch (error) {
    const vanished = (error as NodeJS.ErrnoException).code === "ENOENT";
    if (!vanished || attempts <= 1) throw error;
    return findSecretsInLiveDir(dir, secrets, attempts - 1);
  }
}
