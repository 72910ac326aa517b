// The page in a group with two CLI users (an invitation accepted in the page, messages both ways, a
// removal seen in the page), a contact's key change that stops sending in the page, and two tabs of one
// user: only one receives, neither loses or repeats a message.

import type { Browser, BrowserContext } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type WatchedPage, launchBrowser, watchPage } from "../support/browser.js";
import { type CliUser, cliOk, cliSendToGroup, cliUser, jsonLines } from "../support/cli.js";
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
  context = await browser.newContext();
  watched = await watchPage(context);
});
afterEach(async () => {
  await context?.close();
});

function unique(prefix: string): string {
  serial += 1;
  return `${prefix}${serial}`;
}

async function cliTexts(user: CliUser): Promise<string[]> {
  return jsonLines(await cliOk(user, ["--json", "inbox"]))
    .filter((line) => typeof line.text === "string")
    .map((line) => line.text as string);
}

describe("the page", () => {
  it("joins a group by invitation, talks in it both ways and sees a removal", async () => {
    const web = unique("web");
    const [bobName, carolName, group] = [unique("bob"), unique("carol"), unique("team")];
    const { page } = watched;
    await page.goto(server.url + "/");
    await signUpInPage(page, web, "a long web password");
    const [bob, carol] = await Promise.all([cliUser(server.url, bobName), cliUser(server.url, carolName)]);
    await cliOk(bob, ["group", "create", group, web, carolName]);
    await cliOk(carol, ["group", "join", group]);

    const accept = page.getByRole("button", { name: `Accept the invitation to ${group}` });
    await accept.waitFor({ timeout: 20_000 });
    await accept.click();
    await page.getByRole("heading", { name: `Group ${group}` }).waitFor();

    await cliSendToGroup(bob, group, "welcome to the group");
    await messages(page).getByText("welcome to the group").waitFor({ timeout: 20_000 });
    await sendInPage(page, "glad to be here");
    await expect.poll(() => messages(page).getByText("sending…").count(), { timeout: 20_000 }).toBe(0);
    expect(await notSent(page).count()).toBe(0);
    expect(await cliTexts(carol)).toContain("glad to be here");

    await cliOk(bob, ["group", "remove", group, carolName]);
    await messages(page).getByText(`${bobName} removed ${carolName}`).waitFor({ timeout: 20_000 });
    await page.getByRole("button", { name: "Members" }).click();
    const members = page.getByRole("list", { name: "Members" });
    await members.getByText(web).waitFor();
    expect(await members.getByText(carolName).count()).toBe(0);
  });

  it("stops sending to a contact whose keys changed, and shows the warning", async () => {
    const web = unique("web");
    const [bobName, malloryName] = [unique("bob"), unique("mallory")];
    const { page } = watched;
    await page.goto(server.url + "/");
    await signUpInPage(page, web, "a long web password");
    const [bob] = await Promise.all([cliUser(server.url, bobName), cliUser(server.url, malloryName)]);
    await openChatWith(page, bobName);
    await sendInPage(page, "before the change");
    await expect.poll(() => messages(page).getByText("sending…").count(), { timeout: 20_000 }).toBe(0);
    expect(await cliTexts(bob)).toEqual(["before the change"]);

    // From now on the server answers for bob with mallory's keys: a substitution the page must notice.
    await page.route(`${server.url}/v1/users/**`, async (route) => {
      const request = route.request();
      const asMallory = (text: string) => text.replaceAll(`"${bobName}"`, `"${malloryName}"`);
      const response = await route.fetch({
        url: request.url().replace(`/v1/users/${bobName}`, `/v1/users/${malloryName}`),
        ...(request.postData() ? { postData: asMallory(request.postData()!) } : {}),
      });
      const body = (await response.text()).replaceAll(`"${malloryName}"`, `"${bobName}"`);
      await route.fulfill({ response, body });
    });
    await openChatWith(page, malloryName);
    await page.getByRole("button", { name: bobName }).click();
    const warning = page.getByRole("alert").filter({ hasText: `${bobName}'s keys changed` });
    await warning.waitFor({ timeout: 20_000 });
    expect(await page.getByRole("form", { name: `Message to ${bobName}` }).count()).toBe(0);
    await page.getByRole("button", { name: "Safety number" }).click();
    await page.getByText(`Safety number with ${bobName}'s NEW keys`).waitFor();
    expect(await cliTexts(bob)).toEqual([]);

    await page.getByRole("button", { name: `Accept the new keys of ${bobName}` }).click();
    await page.getByRole("form", { name: `Message to ${bobName}` }).waitFor();
    expect(await warning.count()).toBe(0);
  });

  it("in two tabs of one user neither loses nor repeats a message", async () => {
    const web = unique("web");
    const bobName = unique("bob");
    const first = watched.page;
    await first.goto(server.url + "/");
    await signUpInPage(first, web, "a long web password");
    const bob = await cliUser(server.url, bobName);
    const second = (await watchPage(context)).page;
    await second.goto(server.url + "/");
    await second.getByText(`Logged in as ${web}`).waitFor({ timeout: 30_000 });
    // One of the two holds the claim to receive; the other says so.
    await expect
      .poll(
        async () =>
          (await first.getByText("Another tab of this browser receives").count()) +
          (await second.getByText("Another tab of this browser receives").count()),
        { timeout: 20_000 },
      )
      .toBe(1);

    const texts = Array.from({ length: 5 }, (_, i) => `message ${i + 1}`);
    for (const text of texts) {
      rememberSecret("a message sent from the CLI", text);
      await cliOk(bob, ["send", web, text]);
    }
    for (const page of [first, second]) {
      await page.getByRole("button", { name: new RegExp(`^${bobName}`) }).click();
      for (const text of texts)
        await messages(page).getByText(text, { exact: true }).waitFor({ timeout: 20_000 });
    }
    // Each once, in each tab.
    for (const page of [first, second]) {
      for (const text of texts) expect(await messages(page).getByText(text, { exact: true }).count()).toBe(1);
    }
    // The receiving tab closes: the other takes over and receives what comes next.
    const receiving =
      (await first.getByText("Another tab of this browser receives").count()) === 0 ? first : second;
    const other = receiving === first ? second : first;
    await receiving.close();
    await expect
      .poll(() => other.getByText("Another tab of this browser receives").count(), { timeout: 20_000 })
      .toBe(0);
    rememberSecret("a message sent from the CLI", "after the other tab closed");
    await cliOk(bob, ["send", web, "after the other tab closed"]);
    await messages(other).getByText("after the other tab closed").waitFor({ timeout: 20_000 });
    expect(await messages(other).getByText("after the other tab closed").count()).toBe(1);
  });
});
