// The local history (history.db) and the `history` command; the one-receiver-per-home claim.

import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BusyError, ExitCode } from "../../../client/errors.js";
import { type HistoryQuery, type NewEntry, OrderedHistory } from "../../../client/store/history.js";
import { HISTORY_FILE, SqliteHistory } from "../../../cli-client/platform/sqlite-history.js";
import type { Home } from "../../../client/store/home.js";
import { nodeHome } from "../../../cli-client/platform/node-home.js";
import { runCaptured } from "./helpers.js";

function freshHome(): Home {
  return nodeHome(join(mkdtempSync(join(tmpdir(), "telepound-history-")), "home"));
}

/** The home's history, as the CLI opens it. */
function openHistory(home: Home, owner: string): Promise<SqliteHistory> {
  return SqliteHistory.open(home.storage, owner);
}

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

describe("History", () => {
  it("keeps each conversation apart, both directions together, newest last within the limit", async () => {
    const history = await openHistory(freshHome(), "alice");
    await history.record([
      message({ from: "alice", to: "bob", text: "hi bob" }),
      message({ from: "bob", to: "alice", text: "hi alice" }),
      message({ from: "carol", to: "alice", text: "hello from carol" }),
      message({ from: "bob", to: "team", group: "team", text: "to the team" }),
      message({ from: "alice", to: "bob", text: "bye bob" }),
    ]);
    const texts = async (query: HistoryQuery) => (await history.list(query)).map((entry) => entry.text);
    expect(await texts({ user: "bob", limit: 10 })).toEqual(["hi bob", "hi alice", "bye bob"]);
    expect(await texts({ user: "bob", limit: 2 })).toEqual(["hi alice", "bye bob"]);
    expect(await texts({ group: "team", limit: 10 })).toEqual(["to the team"]);
    expect(await texts({ limit: 100 })).toHaveLength(5);
    history.close();
  });

  it("searches text case-insensitively and literally: % and _ are not wildcards", async () => {
    const history = await openHistory(freshHome(), "alice");
    await history.record([
      message({ from: "bob", to: "alice", text: "The Invoice is attached" }),
      message({ from: "bob", to: "alice", text: "100% done" }),
      message({ from: "bob", to: "alice", text: "1000 done" }),
      message({ from: "bob", to: "alice", text: "snake_case" }),
      message({ from: "bob", to: "alice", text: "snakeXcase" }),
    ]);
    const found = async (search: string) =>
      (await history.list({ search, limit: 10 })).map((entry) => entry.text);
    expect(await found("invoice")).toEqual(["The Invoice is attached"]);
    expect(await found("0%")).toEqual(["100% done"]);
    expect(await found("e_c")).toEqual(["snake_case"]);
    expect(await found("nothing like it")).toEqual([]);
    history.close();
  });

  it("records a redelivered message once, keeps files and events, and shows other users of the home nothing", async () => {
    const home = freshHome();
    const history = await openHistory(home, "alice");
    const withFile = message({ from: "bob", to: "alice", text: "", file: { name: "a.pdf", size: 3 } });
    await history.record([withFile]);
    await history.record([withFile]);
    await history.record([
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
    const entries = await history.list({ limit: 10 });
    expect(entries).toHaveLength(2);
    expect(entries[0]!.file).toEqual({ name: "a.pdf", size: 3 });
    expect(entries[1]).toMatchObject({ kind: "event", group: "team", event: { event: "added", epoch: 2 } });
    history.close();

    const other = await openHistory(home, "mallory");
    expect(await other.list({ limit: 10 })).toEqual([]);
    other.close();
  });

  it("is owner-only on disk", async () => {
    const home = freshHome();
    (await openHistory(home, "alice")).close();
    expect(statSync(join(home.location, HISTORY_FILE)).mode & 0o777).toBe(0o600);
  });

  it("lets two processes open a new home at once (the schema is created once)", async () => {
    const home = freshHome();
    const [one, two] = await Promise.all([openHistory(home, "alice"), openHistory(home, "alice")]);
    await one.record([message({ from: "bob", to: "alice", text: "one" })]);
    expect((await two.list({ limit: 5 })).map((entry) => entry.text)).toEqual(["one"]);
    one.close();
    two.close();
  });
});

describe("OrderedHistory (one process's receiver and sends sharing the history)", () => {
  it("writes what was shown before a send that followed it, and before any read", async () => {
    const history = new OrderedHistory(await openHistory(freshHome(), "alice"));
    // Shown by the receiver, not yet written: its batch is committed with the acks, later.
    history.hold([message({ from: "bob", to: "alice", text: "question" })]);
    await history.record([message({ from: "alice", to: "bob", text: "answer" })]);
    history.hold([message({ from: "bob", to: "alice", text: "thanks" })]);
    const texts = (await history.list({ user: "bob", limit: 10 })).map((entry) => entry.text);
    expect(texts).toEqual(["question", "answer", "thanks"]);
  });

  it("keeps what it held when a write fails, ahead of what was shown since", async () => {
    const store = await openHistory(freshHome(), "alice");
    let failNext = true;
    const flaky = {
      record: (entries: readonly NewEntry[]) => {
        if (!failNext) return store.record(entries);
        failNext = false;
        return Promise.reject(new Error("disk full"));
      },
      list: (query: HistoryQuery) => store.list(query),
      close: () => store.close(),
    };
    const history = new OrderedHistory(flaky);
    history.hold([message({ from: "bob", to: "alice", text: "first" })]);
    await expect(history.record([])).rejects.toThrow("disk full");
    history.hold([message({ from: "bob", to: "alice", text: "second" })]);
    const texts = (await history.list({ user: "bob", limit: 10 })).map((entry) => entry.text);
    expect(texts).toEqual(["first", "second"]);
  });
});

describe("telepound history", () => {
  async function homeWithHistory(): Promise<string> {
    const home = freshHome();
    await home.write("session.json", {
      server: "http://127.0.0.1:1",
      username: "alice",
      token: "alice.x.y",
      sessionId: "x",
      // Expired: reading the local history needs neither a live session nor the server.
      expiresAt: Date.now() - 1000,
    });
    const history = await openHistory(home, "alice");
    await history.record([
      message({ from: "alice", to: "bob", text: "lunch?" }),
      message({ from: "bob", to: "alice", text: "yes, lunch at 1" }),
      message({ from: "bob", to: "team", group: "team", text: "standup moved" }),
    ]);
    history.close();
    return home.location;
  }

  it("prints one conversation, or a search across all, as JSON lines with ISO times", async () => {
    const dir = await homeWithHistory();
    const direct = await runCaptured(["--home", dir, "--json", "history", "bob"]);
    expect(direct.code).toBe(0);
    const lines = direct.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(lines.map((line) => line.text)).toEqual(["lunch?", "yes, lunch at 1"]);
    expect(lines[0]).toMatchObject({ direction: "out", from: "alice", to: "bob" });
    expect(lines[0].sentAt).toMatch(/^\d{4}-\d\d-\d\dT/);

    const search = await runCaptured(["--home", dir, "history", "--search", "LUNCH", "--limit", "1"]);
    expect(search.code).toBe(0);
    expect(search.stdout).toMatch(/^\[[^\]]+\] bob → alice: yes, lunch at 1\n$/);

    const group = await runCaptured(["--home", dir, "history", "--group", "team"]);
    expect(group.stdout).toMatch(/#team bob: standup moved/);
  });

  it("refuses a user and a group together, a bad limit, and a home without a session", async () => {
    const dir = await homeWithHistory();
    expect((await runCaptured(["--home", dir, "history", "bob", "--group", "team"])).code).toBe(
      ExitCode.usage,
    );
    expect((await runCaptured(["--home", dir, "history", "--limit", "0"])).code).toBe(ExitCode.usage);
    expect((await runCaptured(["--home", dir, "history", "--limit", "ten"])).code).toBe(ExitCode.usage);
    expect((await runCaptured(["--home", freshHome().location, "history"])).code).toBe(ExitCode.auth);
  });
});

describe("one receiver per home", () => {
  it("refuses a second claim with BusyError naming the holder, and frees the claim on release", async () => {
    const home = freshHome();
    const first = await home.claimReceiver("listen");
    const second = home.claimReceiver("inbox");
    await expect(second).rejects.toBeInstanceOf(BusyError);
    await expect(second).rejects.toThrow(/listen, pid \d+/);
    await first.release();
    const third = await home.claimReceiver("inbox");
    await third.release();
  });

  it("takes over a claim whose process is gone", async () => {
    const home = freshHome();
    await home.ensure();
    const { writeFile } = await import("node:fs/promises");
    // A pid far above any real one on Linux (pid_max is at most 2^22).
    await writeFile(join(home.location, "receiver.lock"), "99999999\nlisten\n");
    const claim = await home.claimReceiver("inbox");
    await claim.release();
  });
});
