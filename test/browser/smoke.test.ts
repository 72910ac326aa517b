// The whole client core in Chromium on the browser adapter, against `wrangler dev`: a browser user signs
// up, exchanges messages both ways with a user of the Node platform, keeps its session across a reload,
// and wipes this browser's copy at log out. Also the adapter's socket against the real server: the token
// as a subprotocol, and a refused handshake explained by its status.

import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodePlatform } from "../../cli-client/platform/index.js";
import type { ShownMessage } from "../../client/events.js";
import { TelepoundClient } from "../../client/telepound-client.js";
import { type LocalServer, freePort, startLocalServer } from "../support/local-server.js";
import { rememberSecret } from "../support/privacy.js";
import { call, launchChromium, openHarnessPage } from "./support/chromium.js";

let server: LocalServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let bob: TelepoundClient;
const PASSWORD = "browser smoke test password";
rememberSecret("the smoke test's password", PASSWORD);
for (const text of ["hello from chromium", "me too", "hello from node", "a file", "after the reload"])
  rememberSecret("a message of the smoke test", text);
for (const name of ["from-node.bin", "from chromium.bin"]) rememberSecret("a file's name", name);

beforeAll(async () => {
  [server, browser] = await Promise.all([startLocalServer(), launchChromium()]);
  context = await browser.newContext({ bypassCSP: true });
  page = await openHarnessPage(context, server.url, "server");
  bob = await TelepoundClient.open(nodePlatform(), {
    home: join(mkdtempSync(join(tmpdir(), "telepound-smoke-")), "bob"),
    server: server.url,
  });
});
afterAll(async () => {
  await bob?.close();
  await context?.close();
  await browser?.close();
  await server?.stop();
});

/** What bob's backlog brings within `timeoutMs`, once `count` messages came. */
async function bobReceives(count: number, timeoutMs: number): Promise<ShownMessage[]> {
  const messages: ShownMessage[] = [];
  const gotAll = new Promise<void>((resolve) => {
    const stop = bob.events.on("message", (message) => {
      messages.push(message);
      if (messages.length >= count) {
        stop();
        resolve();
      }
    });
  });
  const reception = await bob.receive({ command: "test", mode: "backlog" });
  await Promise.race([gotAll, new Promise((resolve) => setTimeout(resolve, timeoutMs))]);
  await reception.finish();
  return messages;
}

describe("a browser user and a Node user", () => {
  it("sign up and exchange a message both ways", async () => {
    const signedUp = await call(page, "signup", "alice-home", server.url, "alice", PASSWORD);
    expect(signedUp.username).toBe("alice");
    expect(signedUp.fingerprint).toMatch(/^([0-9a-f]{4} ){15}[0-9a-f]{4}$/);
    await bob.signup("bob", { password: async () => PASSWORD });
    // The private keys are in the key vault as non-extractable CryptoKeys, not text in identity.json.
    expect(await call(page, "keysKept", "alice-home")).toEqual({
      identityKeys: ["encryptionPublic", "signingPublic"],
      vault: [
        { type: "private", extractable: false, algorithm: "RSA-OAEP" },
        { type: "public", extractable: true, algorithm: "RSA-OAEP" },
        { type: "private", extractable: false, algorithm: "Ed25519" },
      ],
    });

    const toAlice = await bob.send({ user: "alice" }, { text: "hello from node" });
    expect(toAlice.status).toBe("stored");
    expect(await call(page, "receive", "alice-home", 1, 20_000)).toEqual([
      { from: "bob", to: "alice", text: "hello from node" },
    ]);

    const toBob = await call(page, "send", "alice-home", "bob", "hello from chromium");
    expect(toBob.status).toBe("stored");
    const atBob = await bobReceives(1, 20_000);
    expect(atBob.map(({ from, to, text }) => ({ from, to, text }))).toEqual([
      { from: "alice", to: "bob", text: "hello from chromium" },
    ]);

    const history = await call(page, "history", "alice-home", { user: "bob", limit: 10 });
    expect(history.map((entry) => [entry.direction, entry.text])).toEqual([
      ["in", "hello from node"],
      ["out", "hello from chromium"],
    ]);
  });

  it("send each other files, saved with the same bytes (several upload parts, into OPFS)", async () => {
    const size = 9 * 1024 * 1024 + 12_345;
    const content = new Uint8Array(size).map((_, i) => (i * 13) & 0xff);
    rememberSecret("content of from-node.bin", content);
    const file = join(mkdtempSync(join(tmpdir(), "telepound-smoke-file-")), "from-node.bin");
    writeFileSync(file, content);
    await bob.send({ user: "alice" }, { text: "a file", file });
    const [atAlice] = await call(page, "receive", "alice-home", 1, 60_000);
    expect(atAlice?.file).toMatchObject({
      name: "from-node.bin",
      size,
      path: "/received/alice-home/from-node.bin",
    });
    const saved = await call(page, "download", atAlice!.file!.path);
    expect(saved).toEqual({ size, sha: createHash("sha256").update(content).digest("hex") });

    const sent = await call(page, "sendFile", "alice-home", "bob", "from chromium.bin", size);
    expect(sent.status).toBe("stored");
    const [atBob] = await bobReceives(1, 60_000);
    expect(atBob?.file).toMatchObject({ name: "from chromium.bin", size });
    expect(createHash("sha256").update(readFileSync(atBob!.file!.path)).digest("hex")).toBe(sent.sha);
  });

  it("keeps the session across a reload, and log out wipes this browser's copy", async () => {
    await page.reload();
    page = await openHarnessPage(context, server.url, "server");
    expect(await call(page, "reopen", "alice-home", server.url)).toBe("alice");
    // The vault's keys, loaded afresh, still open and sign.
    await bob.send({ user: "alice" }, { text: "after the reload" });
    expect(await call(page, "receive", "alice-home", 1, 20_000)).toEqual([
      { from: "bob", to: "alice", text: "after the reload" },
    ]);
    expect((await call(page, "send", "alice-home", "bob", "me too")).status).toBe("stored");
    expect(await call(page, "readDocument", "alice-home", "contacts.json")).not.toBeNull();
    expect(await call(page, "folderEntries", "/received/alice-home")).toEqual(["from-node.bin"]);
    const left = await call(page, "logoutAndWipe", "alice-home");
    expect(left).not.toContain("telepound-home:alice-home");
    expect(await call(page, "readDocument", "alice-home", "contacts.json")).toBeNull();
    expect(await call(page, "keysKept", "alice-home")).toEqual({ identityKeys: null, vault: null });
    // The file received above went with it.
    expect(await call(page, "folderEntries", "/received/alice-home")).toBeNull();
  });
});

describe("the browser's socket against the server", () => {
  it("is refused with 401 for a bad token, the status learned by a plain request", async () => {
    const url = `${server.url.replace("http:", "ws:")}/v1/connect`;
    const outcome = await call(page, "socketOutcome", url, "alice.not.a-token");
    expect(outcome.refused).toMatchObject({ status: 401 });
    expect(outcome.messages).toBeUndefined();
    expect(outcome.closed).toBeDefined();
  });

  it("fails as the network's fault, not a refusal, when nothing answers", async () => {
    const outcome = await call(
      page,
      "socketOutcome",
      `ws://127.0.0.1:${await freePort()}/v1/connect`,
      "a.b.c",
    );
    expect(outcome.refused).toBeUndefined();
    expect(outcome.error).toBe("network error");
    expect(outcome.closed).toMatchObject({ code: 1006 });
  });

  it("opens with a good token offered as the subprotocol, and enforces the payload limit", async () => {
    const { token } = (await call(
      page,
      "signup",
      "carol-home",
      server.url,
      "carol",
      PASSWORD,
    )) as unknown as {
      token?: string;
    };
    void token;
    const session = JSON.parse((await call(page, "readDocument", "carol-home", "session.json"))!) as {
      token: string;
    };
    const url = `${server.url.replace("http:", "ws:")}/v1/connect`;
    const opened = await call(page, "socketOutcome", url, session.token);
    expect(opened.refused).toBeUndefined();
    expect(opened.first).toMatch(/welcome/);
    expect(opened.closed).toMatchObject({ code: 1000 });
    // The welcome frame is larger than 16 bytes: the adapter ends the connection without handing it on.
    const limited = await call(page, "socketOutcome", url, session.token, 16);
    expect(limited.messages).toBeUndefined();
    expect(limited.closed).toEqual({ code: 1009, reason: "message too big" });
  });
});
