// A newcomer signs up in the page and talks to a CLI user: messages both ways, live and from the
// backlog, a file each way with the same bytes, hostile text and file names shown as text, a reload that
// keeps the session, and a logout that wipes this browser's copy.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, BrowserContext } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type WatchedPage, launchBrowser, watchPage } from "../support/browser.js";
import { type CliUser, cliOk, cliReceiveFile, cliUser, jsonLines, newHome } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { rememberSecret } from "../support/privacy.js";
import { messages, notSent, openChatWith, sendInPage, signUpInPage } from "../support/web-user.js";

let server: LocalServer;
let browser: Browser;
let context: BrowserContext;
let watched: WatchedPage;
let serial = 0;

beforeAll(async () => {
  [server, browser] = await Promise.all([startLocalServer(), launchBrowser()]);
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
});
beforeEach(async () => {
  context = await browser.newContext({ acceptDownloads: true });
  watched = await watchPage(context);
});
afterEach(async () => {
  await context?.close();
});

/** Names unique to the test, so the tests of the file share one server without meeting. */
function names(): { web: string; cli: string } {
  serial += 1;
  return { web: `web${serial}`, cli: `cli${serial}` };
}

async function cliInbox(user: CliUser, wait = 0): Promise<Array<Record<string, unknown>>> {
  return jsonLines(await cliOk(user, ["--json", "inbox", "--wait", String(wait)])).filter(
    (line) => typeof line.text === "string",
  );
}

describe("a browser user and a CLI user", () => {
  it("sign up, and exchange messages both ways, live and from the backlog", async () => {
    const { web, cli } = names();
    const { page } = watched;
    await page.goto(server.url + "/");
    await signUpInPage(page, web, "a long web password");
    const bob = await cliUser(server.url, cli);

    // From the backlog: sent by the CLI before the page opens the conversation.
    rememberSecret("a message sent from the CLI", "hello from the terminal");
    await cliOk(bob, ["send", web, "hello from the terminal"]);
    await expect
      .poll(() => page.getByRole("button", { name: `${cli}, 1 unread` }).count(), { timeout: 20_000 })
      .toBe(1);
    await page.getByRole("button", { name: `${cli}, 1 unread` }).click();
    await messages(page).getByText("hello from the terminal").waitFor();

    await sendInPage(page, "hello from the browser");
    await messages(page).getByText("hello from the browser").waitFor();
    await expect.poll(() => messages(page).getByText("sending…").count(), { timeout: 20_000 }).toBe(0);
    expect((await cliInbox(bob)).map((line) => line.text)).toEqual(["hello from the browser"]);

    // Live: the page is open on the conversation while the CLI sends.
    rememberSecret("a message sent from the CLI", "and live");
    await cliOk(bob, ["send", web, "and live"]);
    await messages(page).getByText("and live").waitFor({ timeout: 20_000 });

    // A reload keeps the session and the history.
    await page.reload();
    await page.getByText(`Logged in as ${web}`).waitFor({ timeout: 30_000 });
    await page.getByRole("button", { name: cli }).click();
    await messages(page).getByText("hello from the browser").waitFor();
    await messages(page).getByText("and live").waitFor();
    expect(await watched.violations()).toEqual([]);
  });

  it("show hostile text and file names as text", async () => {
    const { web, cli } = names();
    const { page } = watched;
    await page.goto(server.url + "/");
    await signUpInPage(page, web, "a long web password");
    const bob = await cliUser(server.url, cli);
    const hostile = `<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>`;
    const hostileName = `<img src=x onerror=window.pwned=3>.txt`;
    const path = join(newHome("hostile-file"), hostileName);
    writeFileSync(path, "harmless bytes");
    rememberSecret("a hostile file name", hostileName);
    rememberSecret("a message sent from the CLI", hostile);
    await cliOk(bob, ["send", web, hostile]);
    rememberSecret("a message sent from the CLI", "here is a file");
    await cliOk(bob, ["send", web, "here is a file", "--file", path]);

    await openChatWith(page, cli);
    await messages(page).getByText(hostile, { exact: true }).waitFor({ timeout: 20_000 });
    await messages(page).getByText(hostileName, { exact: false }).first().waitFor({ timeout: 20_000 });
    expect(await messages(page).locator("img, script").count()).toBe(0);
    expect(await page.evaluate(() => "pwned" in window)).toBe(false);
    expect(await watched.violations()).toEqual([]);
  });

  it("send a file each way with the same bytes", async () => {
    const { web, cli } = names();
    const { page } = watched;
    await page.goto(server.url + "/");
    await signUpInPage(page, web, "a long web password");
    const bob = await cliUser(server.url, cli);
    const folder = newHome("files");
    const fromCli = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 251));
    writeFileSync(join(folder, "from-cli.bin"), fromCli);
    rememberSecret("content of from-cli.bin", fromCli);
    rememberSecret("a file's name", "from-cli.bin");
    rememberSecret("a message sent from the CLI", "a file for you");
    await cliOk(bob, ["send", web, "a file for you", "--file", join(folder, "from-cli.bin")]);

    await openChatWith(page, cli);
    const download = messages(page).getByRole("button", { name: "Download from-cli.bin" });
    await download.waitFor({ timeout: 30_000 });
    const [saved] = await Promise.all([page.waitForEvent("download"), download.click()]);
    expect(saved.suggestedFilename()).toBe("from-cli.bin");
    expect(readFileSync(await saved.path()).equals(fromCli)).toBe(true);

    const fromPage = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 13) % 256));
    rememberSecret("content of from-page.bin", fromPage);
    rememberSecret("a file's name", "from-page.bin");
    await page.getByLabel("Attach a file").setInputFiles({
      name: "from-page.bin",
      mimeType: "application/octet-stream",
      buffer: fromPage,
    });
    await page.getByRole("button", { name: "Send" }).click();
    await expect.poll(() => messages(page).getByText("sending…").count(), { timeout: 30_000 }).toBe(0);
    expect(await notSent(page).count()).toBe(0);
    const file = await cliReceiveFile(bob, "received");
    expect(file).toBeDefined();
    expect(file!.name).toBe("from-page.bin");
    expect(readFileSync(file!.path).equals(fromPage)).toBe(true);
  });

  it("log out wipes this browser's copy", async () => {
    const { web } = names();
    const { page } = watched;
    await page.goto(server.url + "/");
    await signUpInPage(page, web, "a long web password");
    const databases = () => page.evaluate(async () => (await indexedDB.databases()).map((db) => db.name));
    expect((await databases()).length).toBeGreaterThan(0);
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByText("Logged out").waitFor({ timeout: 20_000 });
    expect(await databases()).toEqual([]);
    await page.reload();
    await page.getByRole("button", { name: "Log in" }).waitFor();
  });
});
