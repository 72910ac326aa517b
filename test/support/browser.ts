// Debian's Chromium (/usr/bin/chromium), driven by playwright-core, for the browser tests: one browser per
// test file, a fresh context (its own storage: IndexedDB, OPFS, locks) per user, and on every page a record
// of what the page's Content-Security-Policy refused and what the page logged as an error.

import { type Browser, type BrowserContext, type Page, chromium } from "playwright-core";

export const CHROMIUM = process.env.TELEPOUND_CHROMIUM ?? "/usr/bin/chromium";

export async function launchBrowser(): Promise<Browser> {
  // Chromium's sandbox refuses to start as root (a container's CI user).
  const asRoot = process.getuid?.() === 0;
  return chromium.launch({ executablePath: CHROMIUM, args: asRoot ? ["--no-sandbox"] : [] });
}

/** What the page's policy blocked, as its securitypolicyviolation events said. */
export interface Violation {
  directive: string;
  blockedURI: string;
}

export interface WatchedPage {
  page: Page;
  /** Every CSP violation since the page started (any document of it, after a reload too). */
  violations(): Promise<Violation[]>;
  /** Console errors and uncaught exceptions of the page, in order. */
  readonly errors: string[];
}

/**
 * Records violations inside the page: the listener is added by the browser before any of the page's own
 * scripts run (an init script), so a violation at load is caught too. It runs outside the page's CSP, as
 * an extension would; the page itself still runs under its policy (the context does not bypass CSP).
 */
const RECORD_VIOLATIONS = `
  window.__violations = [];
  document.addEventListener("securitypolicyviolation", (event) => {
    window.__violations.push({ directive: event.effectiveDirective, blockedURI: event.blockedURI });
  });
`;

export async function watchPage(context: BrowserContext): Promise<WatchedPage> {
  const page = await context.newPage();
  await page.addInitScript(RECORD_VIOLATIONS);
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(`uncaught: ${error.message}`));
  return {
    page,
    errors,
    violations: () => page.evaluate(() => (window as unknown as { __violations: Violation[] }).__violations),
  };
}
