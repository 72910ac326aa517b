// A 100 MiB file each way between a CLI user and a browser user keeps the page's memory flat: received
// files go piece by piece into the Origin Private File System and are saved from there, sent files are
// read piece by piece from the picked File, and no more than one upload part (8 MiB) is gathered at once.
// The page's memory is sampled through the DevTools protocol (test/support/page-memory.ts) while the file
// moves; its peak over what the idle page used before may be well under the file's size.

import { createHash } from "node:crypto";
import { createReadStream, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type WatchedPage, launchBrowser, watchPage } from "../support/browser.js";
import { type CliUser, cliOk, cliReceiveFile, newHome } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { type MemoryPeaks, sampleMemory } from "../support/page-memory.js";
import { rememberSecret } from "../support/privacy.js";
import { writeRandomFile } from "../support/random-file.js";
import { messages, notSent, openChatWith, signUpInPage } from "../support/web-user.js";

const MIB = 1024 * 1024;
const SIZE = 100 * MIB;
/**
 * Growth of what the page's JavaScript holds (heap in use and ArrayBuffer backing stores, garbage
 * collected before each sample) over the idle page, allowed while 100 MiB move. Sending, the core
 * gathers one upload part (8 MiB) while the one before it is on its way: two parts, 16 MiB, plus small
 * change. 32 MiB leaves room for that and fails long before a whole file, or a third of one, is held.
 */
const MAX_EXTRA_JS_MIB = 32;
/** The renderer's resident set also holds Blink's and the allocator's buffers; a looser bound, same aim. */
const MAX_EXTRA_RSS_MIB = 80;

let server: LocalServer;
let browser: Browser;
let context: BrowserContext;
let watched: WatchedPage;
let cli: CliUser;
const WEB = "memweb";
const WEB_PASSWORD = "web memory test password";

beforeAll(async () => {
  [server, browser] = await Promise.all([startLocalServer(), launchBrowser()]);
  cli = { home: newHome("memcli"), server: server.url, password: "cli memory test password" };
  rememberSecret("password of memcli", cli.password);
  rememberSecret(`password of ${WEB}`, WEB_PASSWORD);
  await cliOk(cli, ["signup", "memcli"]);
  context = await browser.newContext({ acceptDownloads: true });
  watched = await watchPage(context);
  await watched.page.goto(server.url + "/");
  await signUpInPage(watched.page, WEB, WEB_PASSWORD);
  await openChatWith(watched.page, "memcli");
});
afterAll(async () => {
  await context?.close();
  await browser?.close();
  await server?.stop();
});

async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const piece of createReadStream(path)) hash.update(piece as Buffer);
  return hash.digest("hex");
}

function describePeaks(what: string, baseline: MemoryPeaks, peak: MemoryPeaks): string {
  const rss =
    peak.rendererRssMiB === null
      ? "renderer RSS unavailable"
      : `renderer RSS ${baseline.rendererRssMiB!.toFixed(0)} → ${peak.rendererRssMiB.toFixed(0)} MiB`;
  return (
    `page memory, ${what} 100 MiB: JS heap + ArrayBuffers ${baseline.jsMiB.toFixed(1)} → ` +
    `${peak.jsMiB.toFixed(1)} MiB, ${rss}`
  );
}

function expectWithinBounds(baseline: MemoryPeaks, peak: MemoryPeaks): void {
  expect(peak.jsMiB - baseline.jsMiB).toBeLessThan(MAX_EXTRA_JS_MIB);
  if (peak.rendererRssMiB !== null && baseline.rendererRssMiB !== null)
    expect(peak.rendererRssMiB - baseline.rendererRssMiB).toBeLessThan(MAX_EXTRA_RSS_MIB);
}

/** One transfer for `whileMovingFile`: what it is called in the log, the file's name, and its two steps. */
interface FileMove<Moved> {
  what: "receiving" | "sending";
  name: string;
  /** Moves the file at `path`; resolves once it has arrived, with what `verify` needs. */
  move: (path: string) => Promise<Moved>;
  /** Checks what arrived against the file's SHA-256; runs after the peak is taken. */
  verify: (moved: Moved, expected: string) => Promise<void>;
}

/**
 * Writes the random file, then moves it with the page's memory sampled from an idle baseline: the
 * peak of the move alone is held to the bounds, and the page may have logged no error meanwhile.
 */
async function whileMovingFile<Moved>({ what, name, move, verify }: FileMove<Moved>): Promise<void> {
  const folder = mkdtempSync(join(tmpdir(), "telepound-web-memory-"));
  rememberSecret("name of a file", name);
  const path = join(folder, name);
  const expected = await writeRandomFile(path, SIZE, name);

  const sampler = await sampleMemory(browser, watched.page);
  try {
    const baseline = await sampler.sampleNow();
    sampler.reset();
    const moved = await move(path);
    const peak = sampler.peaks();
    console.log(describePeaks(what, baseline, peak));
    await verify(moved, expected);
    expectWithinBounds(baseline, peak);
  } finally {
    await sampler.stop();
  }
  expect(watched.errors).toEqual([]);
}

describe("a 100 MiB file and the page's memory", () => {
  it("is received and saved by the page with flat memory", async () => {
    const { page } = watched;
    const name = "big-to-page.bin";
    await whileMovingFile({
      what: "receiving",
      name,
      move: async (path) => {
        await cliOk(cli, ["send", WEB, "--file", path]);
        const download = messages(page).getByRole("button", { name: `Download ${name}` });
        await download.waitFor({ timeout: 100_000 });
        const [saved] = await Promise.all([page.waitForEvent("download"), download.click()]);
        return { saved, savedPath: await saved.path() };
      },
      verify: async ({ saved, savedPath }, expected) => {
        expect(saved.suggestedFilename()).toBe(name);
        expect(await sha256Of(savedPath)).toBe(expected);
      },
    });
  }, 240_000);

  it("is sent from the page with flat memory", async () => {
    const { page } = watched;
    const name = "big-from-page.bin";
    await whileMovingFile({
      what: "sending",
      name,
      move: async (path) => {
        // By path: a local Chromium gets the file itself, as a person's pick would give it, not a copy
        // in the page.
        await page.getByLabel("Attach a file").setInputFiles(path);
        await page.getByRole("button", { name: "Send" }).click();
        await messages(page).getByText(name, { exact: false }).first().waitFor();
        await expect
          .poll(() => messages(page).getByText("sending…").count(), { timeout: 200_000, interval: 500 })
          .toBe(0);
      },
      verify: async (_sent, expected) => {
        expect(await notSent(page).count()).toBe(0);
        const file = await cliReceiveFile(cli, "memory-received");
        expect(file?.name).toBe(name);
        expect(await sha256Of(file!.path)).toBe(expected);
      },
    });
  }, 300_000);
});
