// Real Chromium for the browser tests: Debian's /usr/bin/chromium driven by playwright-core, pages opened
// at a loopback origin (a secure context, as IndexedDB, OPFS, Web Locks and WebCrypto need) with a test
// harness bundled by esbuild from TypeScript and injected, so the adapter runs exactly as a page runs it.

import { build } from "esbuild";
import { type Browser, type BrowserContext, type Page, chromium } from "playwright-core";
import type { Harness } from "../harness/platform-harness.js";

const REPO_ROOT = new URL("../../../", import.meta.url).pathname;

export async function launchChromium(): Promise<Browser> {
  // Root (as in a container) cannot use Chromium's sandbox; anyone else keeps it.
  const asRoot = process.getuid?.() === 0;
  return chromium.launch({ executablePath: "/usr/bin/chromium", args: asRoot ? ["--no-sandbox"] : [] });
}

/** One file bundling `entry` (relative to the repository) for a browser, as a page script or a module worker. */
export async function bundle(entry: string, format: "iife" | "esm"): Promise<string> {
  const result = await build({
    entryPoints: [REPO_ROOT + entry],
    bundle: true,
    write: false,
    format,
    platform: "browser",
    target: "chrome120",
    logLevel: "silent",
  });
  return result.outputFiles[0]!.text;
}

/**
 * A page at `origin` with `scripts` run in it in order. With `document: "routed"` its document is served
 * by the test itself (an origin with no server behind it); with "server", the page is the server's
 * /v1/health, a real loopback document: Chromium lets only such a page open WebSockets to loopback
 * (Local Network Access), and a routed document counts as public. Its CSP is bypassed by the context.
 */
export async function openPage(
  context: BrowserContext,
  origin: string,
  scripts: string[],
  document: "routed" | "server",
): Promise<Page> {
  let documentUrl = `${origin}/v1/health`;
  if (document === "routed") {
    documentUrl = `${origin}/__browser-test`;
    await context.route(documentUrl, (route) =>
      route.fulfill({ status: 200, contentType: "text/html", body: "<!doctype html><title>test</title>" }),
    );
  }
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
  await page.goto(documentUrl);
  for (const content of scripts) await page.addScriptTag({ content });
  return page;
}

/** Calls `window.harness[name](...args)` in the page (test/browser/harness/platform-harness.ts). */
export function call<K extends keyof Harness>(
  page: Page,
  name: K,
  ...args: Parameters<Harness[K]>
): Promise<Awaited<ReturnType<Harness[K]>>> {
  return page.evaluate(
    ([method, params]) => (window.harness[method] as (...a: unknown[]) => unknown)(...(params as unknown[])),
    [name, args] as const,
  ) as Promise<Awaited<ReturnType<Harness[K]>>>;
}

/** A page with the platform harness set up (scrypt in its worker), at `origin`. */
export async function openHarnessPage(
  context: BrowserContext,
  origin: string,
  document: "routed" | "server",
): Promise<Page> {
  const [harness, worker] = await Promise.all([harnessBundle(), workerBundle()]);
  const page = await openPage(context, origin, [harness], document);
  await call(page, "setup", worker);
  return page;
}

let harnessBuild: Promise<string> | null = null;
let workerBuild: Promise<string> | null = null;
/** Built once per test file, on first use. */
const harnessBundle = () => (harnessBuild ??= bundle("test/browser/harness/platform-harness.ts", "iife"));
const workerBundle = () => (workerBuild ??= bundle("web-client/platform/scrypt-worker.ts", "esm"));
