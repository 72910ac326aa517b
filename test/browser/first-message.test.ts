// How long a person waits, on this machine against `wrangler dev`, from opening the page to their first
// message sent to a CLI user: as a newcomer (sign up: the password's scrypt in a worker, an RSA-3072 and
// an Ed25519 key made in WebCrypto, the account stored) and as a returning user (a reload: the session is
// kept, nothing to type but the message). The clock runs from page.goto until the page shows the message
// with no "sending…" left, and the CLI user then reads it. Typing takes the robot no time, so these are
// the machine's share of the wait; they are printed, and bounded only loosely (a machine that needs ten
// times longer is broken, not slow).

import type { Browser, BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type WatchedPage, launchBrowser, watchPage } from "../support/browser.js";
import { type CliUser, cliOk, jsonLines, newHome } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { rememberSecret } from "../support/privacy.js";
import { messages, notSent, openChatWith, sendInPage, signUpInPage } from "../support/web-user.js";

let server: LocalServer;
let browser: Browser;
let context: BrowserContext;
let watched: WatchedPage;
let cli: CliUser;

beforeAll(async () => {
  [server, browser] = await Promise.all([startLocalServer(), launchBrowser()]);
  cli = { home: newHome("firstcli"), server: server.url, password: "first message cli password" };
  rememberSecret("password of firstcli", cli.password);
  await cliOk(cli, ["signup", "firstcli"]);
  context = await browser.newContext();
  watched = await watchPage(context);
});
afterAll(async () => {
  await context?.close();
  await browser?.close();
  await server?.stop();
});

/** Waits until `text` is in the open conversation and nothing in it is still being sent. */
async function shownAsSent(text: string): Promise<void> {
  const { page } = watched;
  await messages(page).getByText(text, { exact: true }).waitFor({ timeout: 30_000 });
  await expect
    .poll(() => messages(page).getByText("sending…").count(), { timeout: 30_000, interval: 20 })
    .toBe(0);
  expect(await notSent(page).count()).toBe(0);
}

async function cliReads(): Promise<string[]> {
  return jsonLines(await cliOk(cli, ["--json", "inbox"]))
    .map((line) => line.text)
    .filter((text): text is string => typeof text === "string");
}

describe("the first message from the page", () => {
  it("is sent within seconds of opening the page, by a newcomer and by a returning user", async () => {
    const { page } = watched;
    const first = "hello, my first message from a browser";
    const again = "and one more after coming back";

    const newcomerStart = performance.now();
    await page.goto(server.url + "/");
    await signUpInPage(page, "firstweb", "first message web password");
    await openChatWith(page, "firstcli");
    await sendInPage(page, first);
    await shownAsSent(first);
    const newcomerMs = performance.now() - newcomerStart;

    const returningStart = performance.now();
    await page.reload();
    await page.getByText("Logged in as firstweb").waitFor({ timeout: 30_000 });
    await page.getByRole("button", { name: /^firstcli/ }).click();
    await page.getByRole("heading", { name: "firstcli", level: 2 }).waitFor();
    await sendInPage(page, again);
    await shownAsSent(again);
    const returningMs = performance.now() - returningStart;

    console.log(
      `time from opening the page to the first message sent: newcomer ${(newcomerMs / 1000).toFixed(2)} s ` +
        `(sign-up included), returning user ${(returningMs / 1000).toFixed(2)} s (reload, session kept)`,
    );
    expect(await cliReads()).toEqual([first, again]);
    expect(newcomerMs).toBeLessThan(60_000);
    expect(returningMs).toBeLessThan(30_000);
    expect(watched.errors).toEqual([]);
  }, 180_000);
});
