// The send queue (client/send-queue.ts): what waits is kept in the home in the order it was queued,
// survives a new process (a new queue over the same folder), is removed one by one, leaves no file when
// empty, and one left by another user of the home is never offered as this user's.

import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SendQueue } from "../../../client/send-queue.js";
import { nodeHome } from "../../../cli-client/platform/node-home.js";
import { tempDir } from "./helpers.js";

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await dir.remove();
});

describe("SendQueue", () => {
  it("keeps messages in order across processes and removes each once sent", async () => {
    let clock = 1000;
    const queue = new SendQueue(nodeHome(dir.path), "alice", () => clock++);
    const first = await queue.add({ kind: "user", name: "bob" }, { text: "one" });
    await queue.add({ kind: "group", name: "team" }, { text: "", file: "/tmp/notes.pdf" });
    await queue.add({ kind: "user", name: "bob" }, { text: "three" });

    // Another process on the same home sees the same queue, in the same order.
    const again = new SendQueue(nodeHome(dir.path), "alice", () => 0);
    expect((await again.list()).map((item) => [item.to, item.text, item.file, item.queuedAt])).toEqual([
      [{ kind: "user", name: "bob" }, "one", undefined, 1000],
      [{ kind: "group", name: "team" }, "", "/tmp/notes.pdf", 1001],
      [{ kind: "user", name: "bob" }, "three", undefined, 1002],
    ]);
    const onDisk = JSON.parse(await readFile(join(dir.path, "outbox.json"), "utf8")) as { owner: string };
    expect(onDisk.owner).toBe("alice");

    await again.remove(first.id);
    expect((await queue.list()).map((item) => item.text)).toEqual(["", "three"]);
    for (const item of await queue.list()) await queue.remove(item.id);
    expect(await queue.list()).toEqual([]);
    expect(existsSync(join(dir.path, "outbox.json"))).toBe(false);
  });

  it("never offers another user's waiting messages, and a new message replaces their queue", async () => {
    await new SendQueue(nodeHome(dir.path), "alice", () => 1).add(
      { kind: "user", name: "bob" },
      { text: "hi" },
    );
    const carol = new SendQueue(nodeHome(dir.path), "carol", () => 2);
    expect(await carol.list()).toEqual([]);
    await carol.add({ kind: "user", name: "dave" }, { text: "mine" });
    expect((await carol.list()).map((item) => item.text)).toEqual(["mine"]);
    expect(await new SendQueue(nodeHome(dir.path), "alice", () => 3).list()).toEqual([]);
  });
});
