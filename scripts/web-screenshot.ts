// Takes the README's picture of the web client (docs/web-client.png): a local server, two CLI users and a
// browser user who talks to one of them and in a group with both. Run by `npm run screenshot` after a
// build. The text is plain: Debian's Chromium here has no colour emoji font.

import { fileURLToPath } from "node:url";
import { launchBrowser } from "../test/support/browser.js";
import { cliOk, cliSendToGroup, cliUser } from "../test/support/cli.js";
import { startLocalServer } from "../test/support/local-server.js";
import { messages, openChatWith, sendInPage, signUpInPage } from "../test/support/web-user.js";

const OUTPUT = fileURLToPath(new URL("../docs/web-client.png", import.meta.url));

const server = await startLocalServer();
const browser = await launchBrowser();
try {
  const [bob, carol] = await Promise.all([cliUser(server.url, "bob"), cliUser(server.url, "carol")]);
  const context = await browser.newContext({ viewport: { width: 1100, height: 660 } });
  const page = await context.newPage();
  await page.goto(server.url + "/");
  await signUpInPage(page, "alice", "a long password of alice");

  const settled = () =>
    page.waitForFunction(() => !document.body.textContent?.includes("sending…"), undefined, {
      timeout: 20_000,
    });
  await openChatWith(page, "bob");
  await sendInPage(page, "hi bob, I am on the web client now");
  await settled();
  await cliOk(carol, ["send", "bob", "lunch at one?"]);
  await cliOk(bob, ["send", "alice", "welcome! the terminal sees you fine"]);
  await messages(page).getByText("welcome! the terminal sees you fine").waitFor({ timeout: 20_000 });
  await cliOk(bob, ["group", "create", "team", "alice", "carol"]);
  await cliSendToGroup(bob, "team", "release notes are in the doc");
  await cliSendToGroup(carol, "team", "reading them now");
  await sendInPage(page, "is our safety number the same on your side?");
  await settled();
  await cliOk(bob, ["send", "alice", "yes, it matches what I see"]);
  await messages(page).getByText("yes, it matches what I see").waitFor({ timeout: 20_000 });
  // The group's messages wait unread in the list beside the open conversation.
  await page.getByRole("button", { name: /^group team, 2 unread/ }).waitFor({ timeout: 20_000 });
  await page.screenshot({ path: OUTPUT });
  console.log(`wrote ${OUTPUT}`);
} finally {
  await browser.close();
  await server.stop();
}
