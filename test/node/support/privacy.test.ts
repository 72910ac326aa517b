// The privacy scan the e2e suite ends with (test/support/privacy.ts) must find what it looks for.

import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  LEDGER_ENV,
  findSecrets,
  readLedger,
  rememberSecret,
  rememberStateDir,
  secretsOf,
} from "../../support/privacy.js";

function folder(): string {
  return mkdtempSync(join(tmpdir(), "telepound-privacy-test-"));
}

afterEach(() => {
  delete process.env[LEDGER_ENV];
});

describe("privacy scan", () => {
  it("finds a text in a nested file and names it by label, not by value", () => {
    const dir = folder();
    mkdirSync(join(dir, "do", "shard"), { recursive: true });
    writeFileSync(
      join(dir, "do", "shard", "db.sqlite"),
      Buffer.concat([randomBytes(500), Buffer.from("hunter22 pw"), randomBytes(500)]),
    );
    writeFileSync(join(dir, "clean"), randomBytes(1000));
    const found = findSecrets([dir], secretsOf("password of alice", "hunter22 pw"));
    expect(found).toEqual([`password of alice in ${join(dir, "do", "shard", "db.sqlite")}`]);
    expect(found.join()).not.toContain("hunter22");
    expect(findSecrets([dir], secretsOf("other", "not there"))).toEqual([]);
  });

  it("finds any stored sixteenth of a file's content, and nothing of a different file", () => {
    const content = randomBytes(64 * 1024);
    const dir = folder();
    writeFileSync(join(dir, "blob"), content.subarray(8 * 1024, 8 * 1024 + 4096));
    expect(findSecrets([dir], secretsOf("file", content)).length).toBeGreaterThan(0);
    expect(findSecrets([dir], secretsOf("file", randomBytes(64 * 1024)))).toEqual([]);
  });

  it("fails loudly, rather than skipping it, when a listed file never stays long enough to be read", () => {
    const dir = folder();
    writeFileSync(join(dir, "db.sqlite"), "hunter22 pw");
    symlinkSync(join(dir, "gone-sqlite-shm"), join(dir, "db.sqlite-shm"));
    expect(() => findSecrets([dir], secretsOf("pw", "hunter22 pw"))).toThrow(/ENOENT/);
  });

  it("keeps secrets and state folders in the run's ledger", () => {
    const ledger = join(folder(), "ledger.ndjson");
    writeFileSync(ledger, "");
    process.env[LEDGER_ENV] = ledger;
    rememberSecret("message", "hello secret");
    rememberStateDir("/tmp/state-a");
    rememberStateDir("/tmp/state-a");
    const { secrets, stateDirs } = readLedger(ledger);
    expect(secrets).toEqual([{ label: "message", bytes: Buffer.from("hello secret") }]);
    expect(stateDirs).toEqual(["/tmp/state-a"]);
  });
});
