// The page as a browser gets it from `wrangler dev`: served from the Worker's static assets with its
// Content-Security-Policy, loading without a single violation, and the policy really enforced (a third
// party, an inline script and an inline style are refused while the same-origin WebSocket is allowed).

import type { Browser, BrowserContext } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type WatchedPage, launchBrowser, watchPage } from "../support/browser.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";

let server: LocalServer;
let browser: Browser;
let context: BrowserContext;
let watched: WatchedPage;

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

describe("the page", () => {
  it("is served at / with its security headers", async () => {
    const response = await watched.page.goto(server.url + "/");
    expect(response?.status()).toBe(200);
    const headers = response!.headers();
    const policy = headers["content-security-policy"] ?? "";
    const directives = new Map(
      policy.split(";").map((part) => {
        const [name = "", ...values] = part.trim().split(/\s+/);
        return [name, values.join(" ")] as const;
      }),
    );
    expect(directives.get("default-src")).toBe("'self'");
    expect(directives.get("script-src")).toBe("'self'");
    expect(directives.get("worker-src")).toBe("'self'");
    expect(directives.get("style-src")).toBe("'self'");
    expect(directives.get("connect-src")).toBe("'self'");
    expect(directives.get("frame-ancestors")).toBe("'none'");
    expect(policy).not.toContain("unsafe-inline");
    expect(policy).not.toContain("unsafe-eval");
    expect(headers["x-content-type-options"]).toBe("nosniff");
    expect(headers["referrer-policy"]).toBe("no-referrer");
  });

  it("loads its script and stylesheet with no CSP violation and no error", async () => {
    await watched.page.goto(server.url + "/");
    await expect.poll(() => watched.page.getByRole("heading", { name: "Telepound" }).count()).toBe(1);
    // The stylesheet applied: it is a file of the page's own origin, not an inline style.
    const sheets = await watched.page.evaluate(() => Array.from(document.styleSheets, (sheet) => sheet.href));
    expect(sheets).toHaveLength(1);
    expect(sheets[0]).toMatch(new RegExp(`^${server.url}/assets/style-[A-Z0-9]+\\.css$`));
    expect(await watched.violations()).toEqual([]);
    expect(watched.errors).toEqual([]);
  });

  it("keeps the API and the WebSocket on the Worker", async () => {
    const health = await fetch(server.url + "/v1/health");
    expect(health.headers.get("content-type")).toContain("application/json");
    expect(await health.json()).toMatchObject({ ok: true });
    // A path the assets do not have is the Worker's JSON 404, not a page.
    const missing = await fetch(server.url + "/no-such-page");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: "not_found" } });
  });

  it("allows the same-origin WebSocket and refuses third parties, inline script and inline style", async () => {
    const { page } = watched;
    await page.goto(server.url + "/");
    await page.getByRole("heading", { name: "Telepound" }).waitFor();
    // Without a token the server refuses the handshake: the socket closes, but CSP let it be attempted.
    const socketClosed = await page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          const socket = new WebSocket(`ws://${location.host}/v1/connect`, ["telepound"]);
          socket.onclose = (event) => resolve(event.code);
        }),
    );
    expect(socketClosed).toBe(1006);
    expect(await watched.violations()).toEqual([]);

    const fetched = await page.evaluate(() =>
      fetch("http://third-party.invalid/collect").then(
        () => "fetched",
        () => "refused",
      ),
    );
    expect(fetched).toBe("refused");
    await page.evaluate(() => {
      const script = document.createElement("script");
      script.textContent = "window.inlineRan = true";
      document.head.append(script);
      const style = document.createElement("style");
      style.textContent = "body { color: red }";
      document.head.append(style);
    });
    expect(await page.evaluate(() => "inlineRan" in window)).toBe(false);
    await expect
      .poll(async () => (await watched.violations()).map((violation) => violation.directive).sort())
      .toEqual(["connect-src", "script-src-elem", "style-src-elem"]);
  });
});
