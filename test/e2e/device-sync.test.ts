// End to end, one user's devices kept in sync with the real CLI against `wrangler dev`, through an honest
// proxy (test/support/malicious-server.ts) that counts what goes over the wire: what carol sends bob from
// her laptop appears on her desktop as sent by her (text and file, the same bytes), in its inbox and its
// history; a file reaches every device of its recipient and of its sender; and with one session on the
// account no sent copy is uploaded at all.

import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, jsonLines, newHome } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { type MaliciousServer, startMaliciousServer } from "../support/malicious-server.js";
import { rememberSecret } from "../support/privacy.js";

let server: LocalServer;
let proxy: MaliciousServer;
let files: string;
let carolLaptop: CliUser;
let carolDesktop: CliUser;
let bobPhone: CliUser;
let bobTablet: CliUser;

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function home(label: string, password: string): CliUser {
  return { home: newHome(label), server: proxy.url, password };
}

function token(user: CliUser): string {
  return (JSON.parse(readFileSync(join(user.home, "session.json"), "utf8")) as { token: string }).token;
}

/** Sent copies (upload frames of kind 3) every client has uploaded through the proxy so far. */
function sentCopyUploads(): number {
  return proxy.sockets
    .flatMap((socket) => socket.fromClient)
    .filter((frame) => typeof frame !== "string" && frame[0] === 0x01 && frame[2] === 3).length;
}

/** The HTTP requests `user`'s session made, as "METHOD path". */
function requestsOf(user: CliUser): string[] {
  const bearer = `Bearer ${token(user)}`;
  return proxy.requests
    .filter((request) => request.headers.get("authorization") === bearer)
    .map((request) => `${request.method} ${request.path}`);
}

async function makeFile(label: string, size: number) {
  const name = `${label}-${randomBytes(6).toString("hex")}.bin`;
  const content = randomBytes(size);
  const path = join(files, name);
  await writeFile(path, content);
  rememberSecret(`name of file ${label}`, name);
  rememberSecret(`content of file ${label}`, content);
  return { path, name, content };
}

async function sendJson(from: CliUser, args: string[]): Promise<Record<string, unknown>> {
  return jsonLines(await cliOk(from, ["--json", "send", ...args]))[0]!;
}

type Received = Record<string, unknown> & { file?: { name: string; path: string; sha256: string } };

async function inboxJson(user: CliUser, out: string): Promise<Received[]> {
  return jsonLines(await cliOk(user, ["inbox", "--json", "--out", out])) as Received[];
}

beforeAll(async () => {
  server = await startLocalServer();
  proxy = await startMaliciousServer(server.url);
  files = await mkdtemp(join(tmpdir(), "telepound-device-sync-"));
  const carolPassword = `pw-carol-${randomBytes(6).toString("hex")}`;
  const bobPassword = `pw-bob-${randomBytes(6).toString("hex")}`;
  rememberSecret("password of carol", carolPassword);
  rememberSecret("password of bob", bobPassword);
  carolLaptop = home("carol-laptop", carolPassword);
  carolDesktop = home("carol-desktop", carolPassword);
  bobPhone = home("bob-phone", bobPassword);
  bobTablet = home("bob-tablet", bobPassword);
  await cliOk(bobPhone, ["signup", "bob", "--device-name", "phone"]);
  await cliOk(bobTablet, ["login", "bob", "--device-name", "tablet"]);
  await cliOk(carolLaptop, ["signup", "carol", "--device-name", "laptop"]);
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
});

describe("one user's devices in sync", () => {
  it("with one session on the account, a direct message goes without a sent copy", async () => {
    const before = sentCopyUploads();
    await sendJson(carolLaptop, ["bob", "before the desktop existed"]);
    expect(sentCopyUploads()).toBe(before);
  });

  it("what carol sends from her laptop appears on her desktop as sent by her, file and history too", async () => {
    await cliOk(carolDesktop, ["login", "carol", "--device-name", "desktop"]);
    const before = sentCopyUploads();
    const report = await makeFile("carol-report", 150_000);
    const text = await sendJson(carolLaptop, ["bob", "hello from the laptop"]);
    const withFile = await sendJson(carolLaptop, ["bob", "the report", "--file", report.path]);
    const blob = (withFile.file as { blob: string }).blob;
    // One copy per message, for the desktop.
    expect(sentCopyUploads()).toBe(before + 2);

    const out = await mkdtemp(join(tmpdir(), "telepound-desktop-out-"));
    const shown = await inboxJson(carolDesktop, out);
    expect(shown.map(({ from, to, direction, text }) => ({ from, to, direction, text }))).toEqual([
      { from: "carol", to: "bob", direction: "out", text: "hello from the laptop" },
      { from: "carol", to: "bob", direction: "out", text: "the report" },
    ]);
    const saved = shown[1]!.file!;
    expect(saved.name).toBe(report.name);
    expect(sha256(readFileSync(saved.path))).toBe(sha256(report.content));
    expect(saved.sha256).toBe(sha256(report.content));
    // The owner's other session confirms with POST: a DELETE from carol would withdraw it from bob.
    expect(requestsOf(carolDesktop)).toContain(`POST /v1/blobs/${blob}/fetched`);
    expect(requestsOf(carolDesktop)).not.toContain(`DELETE /v1/blobs/${blob}`);

    const history = jsonLines(await cliOk(carolDesktop, ["history", "bob", "--json"]));
    expect(history.map(({ direction, from, to, text }) => ({ direction, from, to, text }))).toEqual([
      { direction: "out", from: "carol", to: "bob", text: "hello from the laptop" },
      { direction: "out", from: "carol", to: "bob", text: "the report" },
    ]);
    expect(text.id).not.toBe(history[0]!.id);

    // Both of bob's devices get the file, with the same bytes: the server keeps it for each session.
    for (const device of [bobPhone, bobTablet]) {
      const received = await inboxJson(device, await mkdtemp(join(tmpdir(), "telepound-bob-out-")));
      const file = received.find((message) => message.file)?.file;
      expect(received.map((message) => message.text)).toEqual([
        "before the desktop existed",
        "hello from the laptop",
        "the report",
      ]);
      expect(sha256(readFileSync(file!.path))).toBe(sha256(report.content));
    }
  });

  it("people see a copy as you → bob", async () => {
    await cliOk(carolLaptop, ["send", "bob", "see you at five"]);
    const human = await cliOk(carolDesktop, ["inbox"]);
    expect(human).toMatch(/^\[[\d-]+ [\d:]+\] you → bob: see you at five$/m);
    for (const device of [bobPhone, bobTablet]) {
      expect(await cliOk(device, ["inbox"])).toMatch(/\] carol: see you at five$/m);
    }
  });

  it("a file from bob reaches both of carol's homes, and bob's other device sees it as sent by him", async () => {
    const photo = await makeFile("bob-photo", 40_000);
    await sendJson(bobPhone, ["carol", "a photo", "--file", photo.path]);
    for (const device of [carolLaptop, carolDesktop]) {
      const received = await inboxJson(device, await mkdtemp(join(tmpdir(), "telepound-carol-out-")));
      expect(received.map(({ from, text, direction }) => ({ from, text, direction }))).toEqual([
        { from: "bob", text: "a photo", direction: undefined },
      ]);
      expect(sha256(readFileSync(received[0]!.file!.path))).toBe(sha256(photo.content));
    }
    const tablet = await inboxJson(bobTablet, await mkdtemp(join(tmpdir(), "telepound-tablet-out-")));
    expect(tablet.map(({ from, to, direction, text }) => ({ from, to, direction, text }))).toEqual([
      { from: "bob", to: "carol", direction: "out", text: "a photo" },
    ]);
    expect(sha256(readFileSync(tablet[0]!.file!.path))).toBe(sha256(photo.content));
  });
});
