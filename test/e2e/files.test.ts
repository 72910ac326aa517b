// End to end: encrypted file attachments from the real CLI against `wrangler dev` (R2 on disk): 1:1 to an
// offline recipient who logs in later (kept until each session it was sent to has it), a multi-part
// file, a group file to three members, a download refused to an outsider, a hostile name saved safely, a
// file over the limit refused before upload, and neither names nor content in the persisted state, which
// holds the ciphertext.

import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_FILE_BYTES, sealedFileSize } from "../../protocol/limits.js";
import { type CliUser, cliOk, jsonLines, newHome, runCli } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { filesUnder, findSecrets, rememberSecret, secretsOf } from "../support/privacy.js";

let server: LocalServer;
let files: string;
const users: Record<string, CliUser> = {};
/** Everything that must not appear in the server's state: names and contents of the files sent. */
const secrets: Array<{ name: string; content: Buffer }> = [];

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A file of random bytes with a unique name, remembered for the privacy scan. */
async function makeFile(
  label: string,
  size: number,
  name = `${label}-${randomBytes(6).toString("hex")}.bin`,
) {
  const content = randomBytes(size);
  const path = join(files, name);
  await writeFile(path, content);
  secrets.push({ name, content });
  rememberSecret(`name of file ${label}`, name);
  rememberSecret(`content of file ${label}`, content);
  return { path, name, content };
}

function token(user: CliUser): string {
  return (JSON.parse(readFileSync(join(user.home, "session.json"), "utf8")) as { token: string }).token;
}

async function fetchBlob(user: CliUser, id: string): Promise<number> {
  const response = await fetch(`${server.url}/v1/blobs/${id}`, {
    headers: { authorization: `Bearer ${token(user)}` },
  });
  await response.body?.cancel();
  return response.status;
}

/** Sends a file with --json and returns the CLI's report. */
async function sendFile(from: CliUser, target: string[], path: string): Promise<Record<string, unknown>> {
  return jsonLines(await cliOk(from, ["--json", "send", ...target, "--file", path]))[0]!;
}

async function receive(user: CliUser, out: string): Promise<Array<Record<string, unknown>>> {
  return jsonLines(await cliOk(user, ["inbox", "--json", "--out", out])).filter((line) => line.file);
}

function blobFiles(): string[] {
  return filesUnder(server.persistDir).filter((path) => path.includes(`${"/"}r2${"/"}`));
}

beforeAll(async () => {
  server = await startLocalServer();
  files = await mkdtemp(join(tmpdir(), "telepound-files-"));
  for (const name of ["alice", "bob", "carol", "dave", "eve"]) {
    users[name] = {
      home: newHome(name),
      server: server.url,
      password: `pw-${name}-${randomBytes(6).toString("hex")}`,
    };
  }
  await Promise.all(Object.entries(users).map(([name, user]) => cliOk(user, ["signup", name])));
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe("file attachments", () => {
  it("reach an offline recipient who logs in later, byte for byte, and are refused to anyone else", async () => {
    const { alice, bob, eve } = users as Record<string, CliUser>;
    const file = await makeFile("contract", 200_000);
    const sent = await sendFile(alice!, ["bob"], file.path);
    expect(sent).toMatchObject({ to: "bob", status: "stored", file: { name: file.name, size: 200_000 } });
    const blob = (sent.file as { blob: string }).blob;
    // Only bob (and alice, the owner) may fetch it.
    expect(await fetchBlob(eve!, blob)).toBe(403);

    const laptop = { ...bob!, home: newHome("bob-laptop") };
    await cliOk(laptop, ["login", "bob"]);
    const out = join(files, "bob-out");
    const [received] = await receive(laptop, out);
    expect(received).toMatchObject({
      from: "alice",
      to: "bob",
      file: { name: file.name, path: join(out, file.name), size: 200_000, sha256: sha256(file.content) },
    });
    expect(sha256(readFileSync(join(out, file.name)))).toBe(sha256(file.content));
    // Kept for the session bob had when it was sent (his first home), which has not fetched it yet.
    expect(await fetchBlob(alice!, blob)).toBe(200);
    const [again] = await receive(bob!, join(files, "bob-first-out"));
    expect(again).toMatchObject({ from: "alice", file: { name: file.name, sha256: sha256(file.content) } });
    // Every session it was sent to confirmed it: the server deleted it.
    expect(await fetchBlob(alice!, blob)).toBe(404);
    // The laptop's session would hold the files sent to bob from now on; the tests after this count one home.
    await cliOk(laptop, ["logout"]);
  });

  it("carry a multi-part file (over 8 MiB) through intact", async () => {
    const { alice, bob } = users as Record<string, CliUser>;
    const file = await makeFile("video", 9 * 1024 * 1024 + 12_345);
    await sendFile(alice!, ["bob"], file.path);
    const [received] = await receive(bob!, join(files, "bob-big"));
    expect((received!.file as { sha256: string }).sha256).toBe(sha256(file.content));
    expect(sha256(readFileSync((received!.file as { path: string }).path))).toBe(sha256(file.content));
  });

  it("go to every member of a group, and are deleted once all three have them", async () => {
    const { alice, bob, carol, dave } = users as Record<string, CliUser>;
    // Each member has written to alice, so her create makes them members at once.
    for (const member of [bob!, carol!, dave!]) await cliOk(member, ["send", "alice", "count me in"]);
    await cliOk(alice!, ["group", "create", "files", "bob", "carol", "dave"]);
    const file = await makeFile("minutes", 70_000);
    const sent = await sendFile(alice!, ["--group", "files"], file.path);
    expect(sent).toMatchObject({ to: "files", group: "files", epoch: 1 });
    const blob = (sent.file as { blob: string }).blob;
    for (const member of [bob!, carol!, dave!]) {
      expect(await fetchBlob(alice!, blob)).toBe(200);
      const [received] = await receive(member, await mkdtemp(join(files, "member-")));
      expect(received).toMatchObject({
        from: "alice",
        group: "files",
        file: { sha256: sha256(file.content) },
      });
    }
    expect(await fetchBlob(alice!, blob)).toBe(404);
    // Alice's own copy of the group message came back to her, and is not shown (nor saved) there.
    const own = await cliOk(alice!, ["inbox", "--json", "--out", join(files, "alice-out")]);
    expect(jsonLines(own).filter((line) => line.file)).toEqual([]);
  });

  it("save a hostile name as a plain name inside --out, next to (not over) an existing file", async () => {
    const { alice, carol } = users as Record<string, CliUser>;
    // Backslashes are ordinary characters in a Linux file name, and path separators on Windows.
    const file = await makeFile("hostile", 1000, "..\\..\\..\\.evil.sh");
    const out = join(files, "carol-out");
    await sendFile(alice!, ["carol"], file.path);
    const first = await receive(carol!, out);
    expect(first[0]!.file).toMatchObject({ name: "evil.sh", path: join(out, "evil.sh") });
    await sendFile(alice!, ["carol"], file.path);
    const second = await receive(carol!, out);
    expect(second[0]!.file).toMatchObject({ path: join(out, "evil (1).sh") });
    expect(readdirSync(out).sort()).toEqual(["evil (1).sh", "evil.sh"]);
    expect(statSync(join(out, "evil.sh")).mode & 0o777).toBe(0o600);
  });

  it("refuse a file over the limit before anything is uploaded", async () => {
    const { alice } = users as Record<string, CliUser>;
    const big = join(files, "too-big.bin");
    writeFileSync(big, "");
    await truncate(big, MAX_FILE_BYTES + 1);
    const before = blobFiles().length;
    const started = Date.now();
    const result = await runCli(alice!, ["send", "bob", "--file", big]);
    expect(result.code).toBe(7);
    expect(result.stderr).toMatch(
      /^telepound: too large: .* is 134217729 bytes; files may be at most 134217728 bytes/,
    );
    expect(blobFiles().length).toBe(before);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe("the persisted state", () => {
  it("holds file ciphertext only: no file name, no 64-byte run of any file's content", async () => {
    const { alice } = users as Record<string, CliUser>;
    // One file nobody fetches, so its ciphertext is still in R2 while we look: the scan must find that.
    const kept = await makeFile("kept", 300_000);
    const blob = ((await sendFile(alice!, ["dave"], kept.path)).file as { blob: string }).blob;
    const response = await fetch(`${server.url}/v1/blobs/${blob}`, {
      headers: { authorization: `Bearer ${token(alice!)}` },
    });
    const ciphertext = Buffer.from(await response.arrayBuffer());
    expect(ciphertext.length).toBe(sealedFileSize(300_000));
    const stored = filesUnder(server.persistDir).map((path) => ({ path, bytes: readFileSync(path) }));
    expect(stored.some(({ bytes }) => bytes.includes(ciphertext.subarray(100_000, 100_064)))).toBe(true);
    const looked = secrets.flatMap(({ name, content }) => [
      ...secretsOf(`name ${name}`, name),
      ...secretsOf(`content of ${name}`, content),
    ]);
    expect(findSecrets([server.persistDir], looked)).toEqual([]);
  });
});
