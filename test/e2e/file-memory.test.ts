// End to end: sending and receiving a 100 MiB file keeps the CLI's memory flat. Each CLI process reports
// its peak RSS (test/support/max-rss.cjs); the transfer may add little to what `whoami` alone needs.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, type CliUser, jsonLines, newHome, runCli } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { rememberSecret } from "../support/privacy.js";
import { writeRandomFile } from "../support/random-file.js";

const SIZE = 100 * 1024 * 1024;
/** Growth over the baseline allowed: the file is 100 MiB, plaintext and ciphertext together 200 MiB. */
const MAX_EXTRA_MIB = 60;
const PRELOAD = new URL("../support/max-rss.cjs", import.meta.url).pathname;

let server: LocalServer;
let alice: CliUser;
let bob: CliUser;

async function measured(user: CliUser, args: string[]): Promise<CliResult & { rssMiB: number }> {
  const result = await runCli(user, args, { NODE_OPTIONS: `--require ${PRELOAD}` });
  const match = /telepound-max-rss-kib (\d+)/.exec(result.stderr);
  if (result.code !== 0 || !match)
    throw new Error(`telepound ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
  return { ...result, rssMiB: Number(match[1]) / 1024 };
}

beforeAll(async () => {
  server = await startLocalServer();
  alice = { home: newHome("alice"), server: server.url, password: "memory-test-alice" };
  bob = { home: newHome("bob"), server: server.url, password: "memory-test-bob" };
  rememberSecret("password of alice", alice.password);
  rememberSecret("password of bob", bob.password);
  await Promise.all([runCli(alice, ["signup", "alice"]), runCli(bob, ["signup", "bob"])]);
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe("a 100 MiB file", () => {
  it("is sent and received with flat memory", async () => {
    const dir = await mkdtemp(join(tmpdir(), "telepound-memory-"));
    const path = join(dir, "big.bin");
    const expected = await writeRandomFile(path, SIZE, "big.bin");

    const baseline = Math.max(
      (await measured(alice, ["whoami"])).rssMiB,
      (await measured(bob, ["whoami"])).rssMiB,
    );
    const send = await measured(alice, ["--json", "send", "bob", "--file", path]);
    const receive = await measured(bob, ["--json", "inbox", "--out", join(dir, "in")]);
    const [line] = jsonLines(receive.stdout);
    expect((line!.file as { sha256: string }).sha256).toBe(expected);
    expect(
      createHash("sha256")
        .update(readFileSync(join(dir, "in", "big.bin")))
        .digest("hex"),
    ).toBe(expected);

    console.log(
      `peak RSS: whoami ${baseline.toFixed(0)} MiB, send 100 MiB ${send.rssMiB.toFixed(0)} MiB, ` +
        `receive 100 MiB ${receive.rssMiB.toFixed(0)} MiB`,
    );
    expect(send.rssMiB - baseline).toBeLessThan(MAX_EXTRA_MIB);
    expect(receive.rssMiB - baseline).toBeLessThan(MAX_EXTRA_MIB);
  }, 90_000);
});
