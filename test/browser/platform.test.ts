// The browser adapter's storage in real Chromium: the home's documents and records in IndexedDB, its
// locks between two pages (Web Locks), the history with the SQLite history's semantics (the same cases
// as test/node/cli/history.test.ts), received files in OPFS, picked files read piece by piece, and
// scrypt in its worker while the page keeps running.

import { scryptSync } from "node:crypto";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { HistoryQuery, NewEntry } from "../../client/store/history.js";
import { freePort } from "../support/local-server.js";
import { call, launchChromium, openHarnessPage } from "./support/chromium.js";

let browser: Browser;
let origin: string;
let context: BrowserContext;
let page: Page;

beforeAll(async () => {
  browser = await launchChromium();
  // Any loopback origin is a secure context; this one's pages are served by the test (openPage).
  origin = `http://127.0.0.1:${await freePort()}`;
});
afterAll(async () => {
  await browser?.close();
});
beforeEach(async () => {
  context = await browser.newContext();
  page = await openHarnessPage(context, origin, "routed");
});
afterEach(async () => {
  await context?.close();
});

let nextId = 0;
function message(fields: Partial<NewEntry> & Pick<NewEntry, "from" | "to" | "text">): NewEntry {
  return {
    id: `m${nextId++}`,
    kind: "message",
    direction: fields.from === "alice" ? "out" : "in",
    sentAt: 1_700_000_000_000 + nextId,
    ...fields,
  };
}

describe("the home in IndexedDB", () => {
  it("keeps documents apart per home, replaces and removes them", async () => {
    await call(page, "writeDocument", "one", "session.json", '{"a":1}');
    await call(page, "writeDocument", "one", "session.json", '{"a":2}');
    await call(page, "writeDocument", "two", "session.json", '{"b":1}');
    expect(await call(page, "readDocument", "one", "session.json")).toBe('{"a":2}');
    expect(await call(page, "readDocument", "two", "session.json")).toBe('{"b":1}');
    expect(await call(page, "readDocument", "one", "state.json")).toBeNull();
    await call(page, "removeDocument", "one", "session.json");
    expect(await call(page, "readDocument", "one", "session.json")).toBeNull();
    expect(await call(page, "readDocument", "two", "session.json")).toBe('{"b":1}');
    expect(await call(page, "describe", "one", "identity.json")).toBe("one/identity.json");
  });

  it("keeps documents across a reload", async () => {
    await call(page, "writeDocument", "home", "contacts.json", "pins");
    await page.reload();
    const again = await openHarnessPage(context, origin, "routed");
    expect(await call(again, "readDocument", "home", "contacts.json")).toBe("pins");
  });

  it("keeps folders of records apart, lists, reads, replaces and removes them", async () => {
    await call(page, "writeRecord", "home", ["held", "alice"], "m1", "00ff");
    await call(page, "writeRecord", "home", ["held", "alice"], "m2", "0102");
    await call(page, "writeRecord", "home", ["held", "alice"], "m2", "0a0b0c");
    await call(page, "writeRecord", "home", ["held", "alicea"], "m3", "01");
    await call(page, "writeRecord", "home", ["held"], "m4", "02");
    expect(await call(page, "listRecords", "home", ["held", "alice"])).toEqual(["m1", "m2"]);
    expect(await call(page, "listRecords", "home", ["held", "bob"])).toEqual([]);
    expect(await call(page, "readRecord", "home", ["held", "alice"], "m2")).toBe("0a0b0c");
    expect(await call(page, "readRecord", "home", ["held", "alice"], "m3")).toBeNull();
    await call(page, "removeRecordNow", "home", ["held", "alice"], "m1");
    // removeNow returns at once; the delete commits on its own and is seen by the next read.
    await expect.poll(() => call(page, "listRecords", "home", ["held", "alice"])).toEqual(["m2"]);
    expect(await call(page, "listRecords", "home", ["held", "alicea"])).toEqual(["m3"]);
  });

  it("lets one page at a time hold the short lock, across pages", async () => {
    const other = await openHarnessPage(context, origin, "routed");
    const holdMs = 600;
    const heldAt = await call(page, "holdLock", "home", holdMs);
    const otherAt = await call(other, "lockedAt", "home");
    expect(otherAt - heldAt).toBeGreaterThanOrEqual(holdMs - 20);
    // Another home's lock is another lock.
    const freeAt = Date.now();
    await call(page, "holdLock", "home", 2_000);
    expect((await call(other, "lockedAt", "elsewhere")) - freeAt).toBeLessThan(1_000);
  });

  it("lets one page receive: another is told a tab holds it, until it is released or the tab closes", async () => {
    const other = await openHarnessPage(context, origin, "routed");
    expect(await call(page, "claim", "home", "listen")).toBe("claimed");
    const refused = await call(other, "claim", "home", "listen");
    expect(refused).toMatchObject({ heldBy: "another tab" });
    expect(await call(other, "claim", "elsewhere", "listen")).toBe("claimed");
    await call(page, "release", "home");
    expect(await call(other, "claim", "home", "listen")).toBe("claimed");
    // Held by `other` now; closing that tab lets it go.
    expect(await call(page, "claim", "home", "listen")).toMatchObject({ heldBy: "another tab" });
    await other.close();
    await expect.poll(() => call(page, "claim", "home", "listen")).toBe("claimed");
  });
});

describe("the history in IndexedDB (as the SQLite history)", () => {
  it("keeps each conversation apart, both directions together, newest last within the limit", async () => {
    await call(page, "record", "home", "alice", [
      message({ from: "alice", to: "bob", text: "hi bob" }),
      message({ from: "bob", to: "alice", text: "hi alice" }),
      message({ from: "carol", to: "alice", text: "hello from carol" }),
      message({ from: "bob", to: "team", group: "team", text: "to the team" }),
      message({ from: "alice", to: "bob", text: "bye bob" }),
    ]);
    const texts = async (query: HistoryQuery) =>
      (await call(page, "list", "home", "alice", query)).map((entry) => entry.text);
    expect(await texts({ user: "bob", limit: 10 })).toEqual(["hi bob", "hi alice", "bye bob"]);
    expect(await texts({ user: "bob", limit: 2 })).toEqual(["hi alice", "bye bob"]);
    expect(await texts({ group: "team", limit: 10 })).toEqual(["to the team"]);
    expect(await texts({ limit: 100 })).toHaveLength(5);
    expect(await texts({ limit: 2 })).toEqual(["to the team", "bye bob"]);
  });

  it("searches text case-insensitively (ASCII) and literally: % and _ are not wildcards", async () => {
    await call(page, "record", "home", "alice", [
      message({ from: "bob", to: "alice", text: "The Invoice is attached" }),
      message({ from: "bob", to: "alice", text: "100% done" }),
      message({ from: "bob", to: "alice", text: "1000 done" }),
      message({ from: "bob", to: "alice", text: "snake_case" }),
      message({ from: "bob", to: "alice", text: "snakeXcase" }),
      message({ from: "bob", to: "alice", text: "ÉCOLE" }),
      message({ from: "carol", to: "alice", text: "carol's invoice" }),
    ]);
    const found = async (search: string, user?: string) =>
      (await call(page, "list", "home", "alice", { search, limit: 10, ...(user ? { user } : {}) })).map(
        (entry) => entry.text,
      );
    expect(await found("invoice")).toEqual(["The Invoice is attached", "carol's invoice"]);
    expect(await found("invoice", "bob")).toEqual(["The Invoice is attached"]);
    expect(await found("0%")).toEqual(["100% done"]);
    expect(await found("e_c")).toEqual(["snake_case"]);
    expect(await found("école")).toEqual([]); // SQLite's LIKE folds ASCII only
    expect(await found("nothing like it")).toEqual([]);
  });

  it("records a redelivered message once (the first kept), keeps files and events, shows other users nothing", async () => {
    const withFile = message({ from: "bob", to: "alice", text: "", file: { name: "a.pdf", size: 3 } });
    await call(page, "record", "home", "alice", [withFile]);
    await call(page, "record", "home", "alice", [
      { ...withFile, text: "a second copy" },
      message({ from: "bob", to: "alice", text: "after it", outOfOrder: true, missedBefore: 2 }),
    ]);
    await call(page, "record", "home", "alice", [
      {
        id: "event/1",
        kind: "event",
        direction: "in",
        from: "bob",
        to: "team",
        group: "team",
        text: "group team: bob added alice",
        sentAt: 1,
        event: {
          event: "added",
          group: "team",
          by: "bob",
          user: "alice",
          epoch: 2,
          members: ["alice", "bob"],
          invited: [],
          admin: "bob",
          signedBy: "bob",
        },
      },
    ]);
    const entries = await call(page, "list", "home", "alice", { limit: 10 });
    expect(entries).toHaveLength(3);
    expect(entries[0]).toEqual({ ...withFile, recordedAt: entries[0]!.recordedAt });
    expect(entries[1]).toMatchObject({ text: "after it", outOfOrder: true, missedBefore: 2 });
    expect(entries[2]).toMatchObject({ kind: "event", group: "team", event: { event: "added", epoch: 2 } });
    expect(Object.keys(entries[0]!).sort()).toEqual(
      ["direction", "file", "from", "id", "kind", "recordedAt", "sentAt", "text", "to"].sort(),
    );
    expect(await call(page, "list", "home", "mallory", { limit: 10 })).toEqual([]);
  });

  it("lets two pages open a new home's history at once", async () => {
    expect(
      await call(
        page,
        "openTwiceAtOnce",
        "fresh",
        "alice",
        message({ from: "bob", to: "alice", text: "one" }),
      ),
    ).toEqual(["one"]);
  });
});

describe("files", () => {
  it("writes a received file piece by piece and shows it under its name only once committed", async () => {
    const folder = "/received/home";
    const pieces = Array.from({ length: 40 }, () => 64 * 1024);
    const first = await call(page, "receiveFile", folder, "report.pdf", pieces, true);
    expect(first.path).toBe("/received/home/report.pdf");
    expect(await call(page, "download", first.path!)).toEqual({ size: 40 * 64 * 1024, sha: first.sha });
    expect(await call(page, "statFile", first.path!)).toEqual({
      path: first.path,
      isFile: true,
      size: 40 * 64 * 1024,
    });
    // The same name again goes under the first free variant; nothing is replaced.
    const second = await call(page, "receiveFile", folder, "report.pdf", [10, 20], true);
    expect(second.path).toBe("/received/home/report (1).pdf");
    const aborted = await call(page, "receiveFile", folder, "report.pdf", [1000], false);
    expect(aborted.path).toBeNull();
    expect(await call(page, "folderEntries", folder)).toEqual(["report (1).pdf", "report.pdf"]);
    expect((await call(page, "download", first.path!)).sha).toBe(first.sha);
    await call(page, "deleteReceived", first.path!);
    expect(await call(page, "folderEntries", folder)).toEqual(["report (1).pdf"]);
    const third = await call(page, "receiveFile", folder, "report.pdf", [5], true);
    expect(third.path).toBe("/received/home/report.pdf");
  });

  it("reads a picked file piece by piece through its registered path, which goes once forgotten", async () => {
    const result = await call(page, "pickAndRead", "photo.jpg", 1_000_003, 65_536);
    expect(result.baseName).toBe("photo.jpg");
    expect(result.info).toEqual({ path: result.path, isFile: true, size: 1_000_003 });
    expect(result.read).toBe(1_000_003);
    expect(result.sha).toBe(result.expected);
    expect(result.gone).toBe("ENOENT");
  });
});

describe("scrypt in its worker", () => {
  it("derives what node:crypto derives while the page's own thread keeps running", async () => {
    const password = Buffer.from("correct horse battery staple");
    const salt = Buffer.alloc(32, 7);
    const result = await call(
      page,
      "scrypt",
      password.toString("hex"),
      salt.toString("hex"),
      2 ** 16,
      8,
      1,
      32,
    );
    expect(result.key).toBe(
      scryptSync(password, salt, 32, { N: 2 ** 16, r: 8, p: 1, maxmem: 256 << 20 }).toString("hex"),
    );
    // The page's 10 ms timer kept firing: the derivation did not run on its thread.
    expect(result.ticks).toBeGreaterThan((result.ms / 10) * 0.5);
  });
});
