// File attachments in the CLI against the stub server, with real keys and real ciphertext: what `send
// --file` uploads (exact parts, a chunk crossing part boundaries), what `inbox` saves (and confirms), and
// that a damaged, refused or foreign file leaves nothing behind; safe names; the size limit.

import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { decodeUpload, encodeDelivery, signedPartWithSignature } from "../../../protocol/envelope.js";
import { MAX_FILE_BYTES, sealedFileSize } from "../../../protocol/limits.js";
import {
  type FileDigest,
  SenderKeyring,
  newFileSecrets,
  sealFile,
  sealMessage,
  toBase64,
} from "../../../client/crypto/index.js";
import { numberedName, safeFileName } from "../../../client/files.js";
import { placeUnique } from "../../../cli-client/platform/node-files.js";
import {
  type TestUser,
  answerUploads,
  deliveryFrom,
  loggedInHome,
  makeUser,
  nextSequence,
  serveKeys,
} from "./fixtures.js";
import { type StubServer, fakeIo, sendWelcome, startStubServer, tempDir, runCaptured } from "./helpers.js";

let alice: TestUser;
let bob: TestUser;
vi.setConfig({ testTimeout: 30_000, hookTimeout: 60_000 });

let server: StubServer;
let dir: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  [alice, bob] = await Promise.all([makeUser("alice"), makeUser("bob")]);
});

beforeEach(async () => {
  server = await startStubServer();
  serveKeys(server, [alice, bob]);
  dir = await tempDir();
});

afterEach(async () => {
  await server.close();
  await dir.remove();
});

const cli = runCaptured;

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function pattern(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 131 + 7) & 0xff;
  return bytes;
}

const BLOB_ID = `alice.${"ab".repeat(16)}`;

/** What a sender's `send --file` leaves on the stub: every request, the parts, the message upload. */
function acceptUploads(partBytes: number) {
  const requests: string[] = [];
  const parts = new Map<number, Buffer>();
  let announced = 0;
  server.http.set("POST /v1/blobs", (_request, body) => {
    requests.push(`POST /v1/blobs ${body}`);
    announced = (JSON.parse(body) as { size: number }).size;
    const count = Math.max(1, Math.ceil(announced / partBytes));
    return { status: 201, body: { id: BLOB_ID, partBytes, parts: count, expiresAt: Date.now() + 1000 } };
  });
  for (let n = 1; n <= 10; n++) {
    server.http.set(`PUT /v1/blobs/${BLOB_ID}/parts/${n}`, (request, _body, bytes) => {
      requests.push(`PUT part ${n}`);
      expect(request.headers["content-length"]).toBe(String(bytes.length));
      parts.set(n, bytes);
      return { status: 204 };
    });
  }
  server.http.set(`POST /v1/blobs/${BLOB_ID}/complete`, () => {
    requests.push("complete");
    return { status: 204 };
  });
  server.http.set(`DELETE /v1/blobs/${BLOB_ID}`, () => {
    requests.push("withdraw");
    return { status: 204 };
  });
  const uploads = answerUploads(server, "stored");
  const ciphertext = () => Buffer.concat([...parts.keys()].sort((a, b) => a - b).map((n) => parts.get(n)!));
  return { requests, parts, uploads, ciphertext, announced: () => announced };
}

/** Bob's inbox on a fresh stub: the delivery, then GET of the blob answered by `blob`; records the rest. */
function serveToBob(
  frame: Uint8Array,
  blob: () => { status: number; raw?: Uint8Array; body?: unknown },
  /** Deliveries pushed before the file's message. */
  before: Uint8Array[] = [],
) {
  const requests: string[] = [];
  const acked: string[] = [];
  server.http.set(`GET /v1/blobs/${BLOB_ID}`, () => {
    requests.push("GET");
    return blob();
  });
  server.http.set(`DELETE /v1/blobs/${BLOB_ID}`, () => {
    requests.push("DELETE");
    return { status: 204 };
  });
  server.onSocket = (socket) => {
    sendWelcome(socket.ws, "bob");
    for (const earlier of before) socket.ws.send(earlier);
    socket.ws.send(frame);
    socket.ws.send(JSON.stringify({ type: "synced" }));
    socket.ws.on("message", (data: Buffer, isBinary) => {
      if (!isBinary) acked.push(...((JSON.parse(data.toString()) as { ids?: string[] }).ids ?? []));
    });
  };
  return { requests, acked };
}

function deliveryFor(upload: ReturnType<typeof decodeUpload>, recipient: string): Uint8Array {
  const slot = upload.slots.findIndex((s) => s.recipient === recipient);
  return encodeDelivery(signedPartWithSignature(upload), upload.slotBytes[slot]!);
}

/** Alice sends `content` as `name` to bob through the CLI; returns the delivery and the blob's bytes. */
async function aliceSends(content: Buffer, name = "report.pdf", partBytes = 50_000) {
  const aliceHome = await loggedInHome(join(dir.path, "alice"), server.url, alice, [bob]);
  const path = join(dir.path, name);
  await writeFile(path, content);
  const sent = acceptUploads(partBytes);
  const result = await cli([
    "--home",
    aliceHome.location,
    "send",
    "bob",
    "--file",
    path,
    "see",
    "attached",
    "--json",
  ]);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return { ...sent, result, frame: deliveryFor(sent.uploads[0]!, "bob") };
}

async function bobHome() {
  return loggedInHome(join(dir.path, "bob"), server.url, bob, [alice]);
}

function flipped(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 1;
  return copy;
}

/** Files in a folder, hidden ones (a leftover temp file would be one) included. */
function listing(folder: string): string[] {
  return existsSync(folder) ? readdirSync(folder).sort() : [];
}

describe("send --file", () => {
  it("uploads exactly sealedFileSize bytes in parts of partBytes, then sends the descriptor", async () => {
    const content = pattern(3 * 65536 + 1234);
    const { requests, parts, uploads, ciphertext, announced, result } = await aliceSends(content);
    expect(announced()).toBe(sealedFileSize(content.length));
    // 50,000-byte parts: every sealed chunk (65,552 bytes) straddles a part boundary.
    const lengths = [...parts.values()].map((part) => part.length);
    expect(lengths.slice(0, -1).every((length) => length === 50_000)).toBe(true);
    expect(lengths.reduce((a, b) => a + b, 0)).toBe(sealedFileSize(content.length));
    expect(requests).toEqual([
      `POST /v1/blobs {"to":"bob","size":${sealedFileSize(content.length)}}`,
      ...lengths.map((_, i) => `PUT part ${i + 1}`),
      "complete",
    ]);
    expect(uploads).toHaveLength(1);
    expect(JSON.parse(result.stdout)).toMatchObject({
      to: "bob",
      status: "stored",
      file: { name: "report.pdf", size: content.length, sha256: sha256(content), blob: BLOB_ID },
    });
    // The server sees ciphertext only: no 64-byte run of the file appears in what was uploaded.
    const uploaded = ciphertext();
    for (let offset = 0; offset + 64 <= content.length; offset += 4096) {
      expect(uploaded.includes(content.subarray(offset, offset + 64))).toBe(false);
    }
  });

  it("sends the next part while the server is still storing the previous one, two parts at most", async () => {
    const content = pattern(3 * 65536 + 1234);
    const events: string[] = [];
    let secondArrived: () => void = () => undefined;
    const arrived = new Promise<void>((resolve) => (secondArrived = resolve));
    const sent = acceptUploads(50_000);
    for (const n of [1, 2, 3]) {
      const store = server.http.get(`PUT /v1/blobs/${BLOB_ID}/parts/${n}`)!;
      server.http.set(`PUT /v1/blobs/${BLOB_ID}/parts/${n}`, async (request, body, bytes) => {
        events.push(`part ${n} received`);
        if (n === 2) secondArrived();
        // Part 1 is answered only once part 2 has arrived (or after 2 s, so that a client that waits
        // fails the test instead of hanging it).
        if (n === 1) await Promise.race([arrived, new Promise((resolve) => setTimeout(resolve, 2000))]);
        events.push(`part ${n} answered`);
        return store(request, body, bytes);
      });
    }
    const aliceHome = await loggedInHome(join(dir.path, "alice"), server.url, alice, [bob]);
    const path = join(dir.path, "report.pdf");
    await writeFile(path, content);
    const result = await cli(["--home", aliceHome.location, "send", "bob", "--file", path, "--json"]);
    expect(result.code).toBe(0);
    expect(events.slice(0, 2)).toEqual(["part 1 received", "part 2 received"]);
    expect(events.indexOf("part 1 answered")).toBeGreaterThan(events.indexOf("part 2 received"));
    // Part 3 starts only after part 1 was answered: never more than two parts in flight.
    expect(events.indexOf("part 3 received")).toBeGreaterThan(events.indexOf("part 1 answered"));
    expect(sent.ciphertext().length).toBe(sealedFileSize(content.length));
  });

  it("refuses a file over MAX_FILE_BYTES with exit 7 before any request", async () => {
    const home = await loggedInHome(join(dir.path, "alice"), server.url, alice, [bob]);
    const big = join(dir.path, "big.bin");
    await writeFile(big, "");
    await truncate(big, MAX_FILE_BYTES + 1);
    const requests: string[] = [];
    server.http.set("POST /v1/blobs", () => {
      requests.push("POST");
      return { status: 500 };
    });
    server.onSocket = () => requests.push("socket");
    const { code, stderr } = await cli(["--home", home.location, "send", "bob", "--file", big]);
    expect(code).toBe(7);
    expect(stderr).toBe(
      `telepound: too large: ${big} is ${MAX_FILE_BYTES + 1} bytes; files may be at most ${MAX_FILE_BYTES} bytes (128 MiB)\n`,
    );
    expect(requests).toEqual([]);
    const missing = await cli(["--home", home.location, "send", "bob", "--file", join(dir.path, "nope")]);
    expect(missing.code).toBe(2);
  });

  it("exits 6 when the server's upload limit refuses the blob (429), without uploading a part", async () => {
    const home = await loggedInHome(join(dir.path, "alice"), server.url, alice, [bob]);
    const path = join(dir.path, "a.txt");
    await writeFile(path, "hello");
    const requests: string[] = [];
    server.http.set("POST /v1/blobs", () => {
      requests.push("POST");
      return {
        status: 429,
        headers: { "retry-after": "42" },
        body: { error: { code: "rate_limited", message: "too many requests" } },
      };
    });
    server.onSocket = () => requests.push("socket");
    const { code, stderr } = await cli(["--home", home.location, "send", "bob", "--file", path]);
    expect(code).toBe(6);
    expect(stderr).toBe("telepound: rate limited by the server: try again in 42 seconds\n");
    expect(requests).toEqual(["POST"]);
  });

  it("withdraws the blob when the message cannot be sent", async () => {
    const aliceHome = await loggedInHome(join(dir.path, "alice"), server.url, alice, [bob]);
    const path = join(dir.path, "a.txt");
    await writeFile(path, "hello");
    const { requests } = acceptUploads(1000);
    server.onSocket = (socket) => {
      sendWelcome(socket.ws);
      socket.ws.on("message", (data: Buffer) => {
        const id = decodeUpload(new Uint8Array(data)).messageIdHex;
        socket.ws.send(JSON.stringify({ type: "error", code: "forbidden", message: "no", id }));
      });
    };
    const { code } = await cli(["--home", aliceHome.location, "send", "bob", "--file", path]);
    expect(code).toBe(7);
    expect(requests).toEqual([
      expect.stringContaining("POST /v1/blobs"),
      "PUT part 1",
      "complete",
      "withdraw",
    ]);
  });
});

describe("chat /file", () => {
  it("uploads the file for the current conversation and sends its descriptor", async () => {
    const aliceHome = await loggedInHome(join(dir.path, "alice"), server.url, alice, [bob]);
    const path = join(dir.path, "with space.txt");
    await writeFile(path, "chat file");
    const sent = acceptUploads(1000);
    const io = fakeIo({}, `/file ${path}\n/msg bob\n/file ${path}\n`);
    const { code, stdout, stderr } = await cli(["--home", aliceHome.location, "chat"], io);
    expect(code).toBe(0);
    expect(stderr).toBe("telepound: no conversation yet: type /msg USER or /group G first\n");
    expect(stdout).toContain("sent with space.txt\n");
    expect(sent.requests).toEqual([
      `POST /v1/blobs {"to":"bob","size":${sealedFileSize(9)}}`,
      "PUT part 1",
      "complete",
    ]);
    const home = await bobHome();
    serveToBob(deliveryFor(sent.uploads[0]!, "bob"), () => ({ status: 200, raw: sent.ciphertext() }));
    const received = JSON.parse((await cli(["--home", home.location, "inbox", "--json"])).stdout);
    expect(received.file.name).toBe("with space.txt");
    expect(readFileSync(received.file.path, "utf8")).toBe("chat file");
  });
});

describe("receiving a file", () => {
  it("saves it under --out, checks it, confirms it, and reports it in --json", async () => {
    const content = pattern(2 * 65536 + 99);
    const sent = await aliceSends(content);
    const home = await bobHome();
    const out = join(dir.path, "out");
    const bobSide = serveToBob(sent.frame, () => ({ status: 200, raw: sent.ciphertext() }));
    const { code, stdout, stderr } = await cli(["--home", home.location, "inbox", "--out", out, "--json"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const line = JSON.parse(stdout);
    expect(line).toEqual({
      id: sent.uploads[0]!.messageIdHex,
      from: "alice",
      to: "bob",
      text: "see attached",
      sentAt: expect.any(String),
      file: {
        name: "report.pdf",
        path: join(out, "report.pdf"),
        size: content.length,
        sha256: sha256(content),
      },
    });
    expect(sha256(readFileSync(join(out, "report.pdf")))).toBe(sha256(content));
    expect(listing(out)).toEqual(["report.pdf"]);
    expect(bobSide.requests).toEqual(["GET", "DELETE"]);
    expect(bobSide.acked).toEqual([sent.uploads[0]!.messageIdHex]);

    // The same name again is saved beside it, never over it.
    writeFileSync(join(out, "report (1).pdf"), "mine");
    const again = await aliceSends(content);
    serveToBob(again.frame, () => ({ status: 200, raw: again.ciphertext() }));
    const second = JSON.parse((await cli(["--home", home.location, "inbox", "--out", out, "--json"])).stdout);
    expect(second.file.path).toBe(join(out, "report (2).pdf"));
    expect(readFileSync(join(out, "report (1).pdf"), "utf8")).toBe("mine");
  });

  it("goes to the home's downloads folder (0700) by default, and prints it for people", async () => {
    const sent = await aliceSends(pattern(10), "notes.txt");
    const home = await bobHome();
    serveToBob(sent.frame, () => ({ status: 200, raw: sent.ciphertext() }));
    const { stdout } = await cli(["--home", home.location, "inbox"]);
    const downloads = join(home.location, "downloads");
    expect(stdout).toMatch(
      new RegExp(
        `\\] alice: see attached\\n    \\[file notes\\.txt, 10 bytes, saved to ${downloads}/notes\\.txt\\]\\n$`,
      ),
    );
    expect(statSync(downloads).mode & 0o777).toBe(0o700);
    expect(statSync(join(downloads, "notes.txt")).mode & 0o777).toBe(0o600);
  });

  it.each([
    ["one flipped byte", (c: Buffer) => flipped(c, 70_000)],
    ["a missing last byte", (c: Buffer) => c.subarray(0, c.length - 1)],
    ["an extra chunk's worth", (c: Buffer) => Buffer.concat([c, c.subarray(0, 65552)])],
  ])("leaves nothing behind and still shows the text when the blob has %s", async (_label, damage) => {
    const sent = await aliceSends(pattern(3 * 65536));
    const home = await bobHome();
    const out = join(dir.path, "out");
    const bobSide = serveToBob(sent.frame, () => ({ status: 200, raw: damage(sent.ciphertext()) }));
    const { code, stdout, stderr } = await cli(["--home", home.location, "inbox", "--out", out, "--json"]);
    expect(code).toBe(0);
    const line = JSON.parse(stdout);
    expect(line).toMatchObject({ from: "alice", text: "see attached", fileError: expect.any(String) });
    expect(line.file).toBeUndefined();
    expect(JSON.parse(stderr).warning).toMatch(/the file from alice was not saved/);
    expect(listing(out)).toEqual([]);
    // Not confirmed (the sender's blob stays for a retry by hand), but acknowledged.
    expect(bobSide.requests).toEqual(["GET"]);
    expect(bobSide.acked).toEqual([sent.uploads[0]!.messageIdHex]);
  });

  it("reports a file the server refuses (403) or no longer has (404), and acknowledges the message", async () => {
    const sent = await aliceSends(pattern(100));
    const home = await bobHome();
    const bobSide = serveToBob(sent.frame, () => ({
      status: 403,
      body: { error: { code: "forbidden", message: "this file was not sent to you" } },
    }));
    const { code, stdout } = await cli(["--home", home.location, "inbox", "--json"]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout).fileError).toMatch(/refuses the file to you/);
    expect(bobSide.acked).toHaveLength(1);
  });

  it("keeps the message queued (not acknowledged, not recorded) when the server fails (500)", async () => {
    const sent = await aliceSends(pattern(100));
    const home = await bobHome();
    const before = await deliveryFrom(alice, bob, "just text");
    const bobSide = serveToBob(
      sent.frame,
      () => ({
        status: 500,
        body: { error: { code: "internal", message: "R2 is down" } },
      }),
      [before.frame],
    );
    const { code, stdout, stderr } = await cli(["--home", home.location, "inbox"]);
    expect(code).toBe(5);
    expect(stdout).toMatch(/alice: just text\n$/);
    expect(stderr).toMatch(/server error \(HTTP 500\)/);
    // The text before it is done with; the file's message is neither acknowledged nor marked as seen.
    expect(bobSide.acked).toEqual([before.id]);
    expect(JSON.stringify(await home.read("seen.json"))).not.toContain(sent.uploads[0]!.messageIdHex);
    expect(listing(join(home.location, "downloads")).filter((name) => name.endsWith(".part"))).toEqual([]);
    // Next time the server works: the file arrives after all.
    serveToBob(sent.frame, () => ({ status: 200, raw: sent.ciphertext() }));
    expect(JSON.parse((await cli(["--home", home.location, "inbox", "--json"])).stdout).file.name).toBe(
      "report.pdf",
    );
  });

  it("saves a sender's path-traversal name as a plain name inside the folder", async () => {
    const home = await bobHome();
    const out = join(dir.path, "out");
    const content = pattern(5000);
    const secrets = newFileSecrets();
    const digest: FileDigest = { ciphertextSha256: "", plaintextSha256: "" };
    const chunks: Uint8Array[] = [];
    for await (const chunk of sealFile([content], content.length, secrets, digest)) chunks.push(chunk);
    const descriptor = (name: string, blob = BLOB_ID) => ({
      v: 1,
      blob,
      name,
      size: content.length,
      chunk: 65536,
      key: toBase64(secrets.key),
      noncePrefix: toBase64(secrets.noncePrefix),
      sha256: digest.ciphertextSha256,
    });
    const sealFor = async (attachment: unknown) =>
      deliveryFor(
        decodeUpload(
          (
            await sealMessage({
              signingPrivateKey: alice.identity.signing.privateKey,
              sender: "alice",
              kind: "direct",
              target: "bob",
              epoch: 0,
              recipients: [
                {
                  username: "bob",
                  encryptionKey: bob.identity.encryption.publicKey,
                  fingerprint: bob.fingerprint,
                },
              ],
              payload: { text: "", attachment },
              counter: 1,
              ...nextSequence(alice, "u:bob"),
              keyring: new SenderKeyring(),
            })
          ).frame,
        ),
        "bob",
      );
    serveToBob(await sealFor(descriptor("../../../etc/evil\n.sh")), () => ({
      status: 200,
      raw: Buffer.concat(chunks),
    }));
    const saved = JSON.parse((await cli(["--home", home.location, "inbox", "--out", out, "--json"])).stdout);
    expect(saved.file).toMatchObject({
      name: "evil.sh",
      path: join(out, "evil.sh"),
      sha256: sha256(content),
    });
    expect(listing(out)).toEqual(["evil.sh"]);

    // A descriptor naming someone else's blob is refused without fetching anything.
    const bobSide = serveToBob(await sealFor(descriptor("x", `carol.${"cd".repeat(16)}`)), () => ({
      status: 200,
      raw: Buffer.concat(chunks),
    }));
    const foreign = JSON.parse(
      (await cli(["--home", home.location, "inbox", "--out", out, "--json"])).stdout,
    );
    expect(foreign.fileError).toMatch(/not alice's/);
    expect(bobSide.requests).toEqual([]);
  });
});

describe("safe names", () => {
  it.each([
    ["../../x", "x"],
    ["/etc/passwd", "passwd"],
    ["..", "file"],
    [".", "file"],
    ["", "file"],
    [".hidden", "hidden"],
    ["...config", "config"],
    ["a\u0000b\nc.txt", "abc.txt"],
    ["line\r\nbreak", "linebreak"],
    ["C:\\Users\\eve\\evil.exe", "evil.exe"],
    ["dir/", "file"],
    ["name\u202egnp.exe", "namegnp.exe"],
    ["  spaced  ", "spaced"],
    ["report.pdf", "report.pdf"],
  ])("%j becomes %j", (raw, safe) => {
    expect(safeFileName(raw)).toBe(safe);
  });

  it("shortens a very long name to 200 bytes, keeping the extension", () => {
    const name = safeFileName(`${"é".repeat(300)}.tar`);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(200);
    expect(name.endsWith(".tar")).toBe(true);
  });

  it("numbers a taken name before its extension and never overwrites", async () => {
    expect(numberedName("report.pdf", 0)).toBe("report.pdf");
    expect(numberedName("report.pdf", 1)).toBe("report (1).pdf");
    expect(numberedName("archive.tar.gz", 2)).toBe("archive.tar (2).gz");
    expect(numberedName("README", 3)).toBe("README (3)");
    writeFileSync(join(dir.path, "x.txt"), "original");
    writeFileSync(join(dir.path, ".tmp1"), "new one");
    const placed = await placeUnique(join(dir.path, ".tmp1"), dir.path, "x.txt");
    expect(placed).toBe(join(dir.path, "x (1).txt"));
    expect(readFileSync(join(dir.path, "x.txt"), "utf8")).toBe("original");
    expect(readFileSync(placed, "utf8")).toBe("new one");
    expect(existsSync(join(dir.path, ".tmp1"))).toBe(false);
  });
});
