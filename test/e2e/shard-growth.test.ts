// Shards that come and go with load, under `wrangler dev` with real CLI processes: a balancer with a target
// of three sockets a shard opens a second and a third shard as listeners arrive, drains one when they leave,
// sends no new user to it, and closes it once its last user has moved on. Through all of it every 1:1 and
// group message, live or queued, reaches each recipient exactly once, on every shard that appears.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StatsResponse } from "../../protocol/http.js";
import { CliProcess, type CliUser, cliOk, jsonLines, newHome } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { OPERATOR_HEADERS } from "../support/operator-token.js";
import { rememberSecret } from "../support/privacy.js";

let server: LocalServer;
const USERS = 7;
let users: CliUser[] = [];
let bob: CliUser;

function user(label: string): CliUser {
  const password = `pw-${label}-${Math.random().toString(36).slice(2)}`;
  rememberSecret(`password of ${label}`, password);
  return { home: newHome(label), server: server.url, password };
}

function text(label: string): string {
  const value = `${label} ${Math.random().toString(36).slice(2)} growth-marker`;
  rememberSecret(`message "${label}"`, value);
  return value;
}

async function stats(): Promise<StatsResponse> {
  return (await (
    await fetch(`${server.url}/v1/stats`, { headers: OPERATOR_HEADERS })
  ).json()) as StatsResponse;
}

/** The shards of the (only) balancer, by name. */
async function shards(): Promise<Map<string, { state: string; connections: number }>> {
  const all = (await stats()).balancers.flatMap((balancer) => balancer.shards);
  return new Map(all.map(({ shard, state, connections }) => [shard, { state, connections }]));
}

async function waitFor<T>(probe: () => Promise<T | undefined>, what: string | (() => string)): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${typeof what === "string" ? what : what()}: ${JSON.stringify(await stats())}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const total = (map: Map<string, { connections: number }>) =>
  [...map.values()].reduce((sum, { connections }) => sum + connections, 0);

/** The listeners this test holds open: once the counts settle, exactly the sockets the balancer reports. */
let listening = 0;

/**
 * The counts once every socket but the test's listeners has been counted out. A CLI command that has
 * exited may still hold a count for a moment (its shard counts its close, then reports): a snapshot
 * taken then would hide the next listener's socket behind that one's leaving.
 */
async function settled(): Promise<Map<string, { state: string; connections: number }>> {
  return waitFor(async () => {
    const now = await shards();
    return total(now) === listening ? now : undefined;
  }, `the counts to settle at ${listening}`);
}

/** Starts a listener and returns it with the shard it landed on: the one whose count went up by one. */
async function listen(who: CliUser): Promise<{ process: CliProcess; shard: string }> {
  const before = await settled();
  const process = new CliProcess(who, ["inbox", "--wait", "120", "--json"]);
  const shard = await waitFor(
    async () => {
      if (process.child.exitCode !== null)
        throw new Error(`the listener exited ${process.child.exitCode}: ${process.stderr}`);
      const now = await shards();
      if (total(now) !== total(before) + 1) return undefined;
      return [...now].find(
        ([name, { connections }]) => connections === (before.get(name)?.connections ?? 0) + 1,
      )?.[0];
    },
    () => `a listener to connect (its stderr: ${JSON.stringify(process.stderr)})`,
  );
  listening++;
  return { process, shard };
}

async function stop(listener: CliProcess): Promise<Array<Record<string, unknown>>> {
  listener.child.kill("SIGINT");
  await listener.exited;
  listening--;
  return jsonLines(listener.stdout);
}

const indexOf = (shard: string) => Number(/:(\d+)$/.exec(shard)?.[1]);

beforeAll(async () => {
  server = await startLocalServer({
    vars: {
      SHARDS_MIN: "1",
      SHARDS_MAX: "3",
      SHARD_TARGET_CONNECTIONS: "3",
      BALANCER_SLICES: "1",
      // The group reaches two or three shards here: through its relays, and directly again once one is left.
      GROUP_RELAY_ABOVE_SHARDS: "1",
      SIGNUPS_PER_IP_PER_HOUR: "1000",
    },
  });
  users = Array.from({ length: USERS }, (_, i) => user(`usr${i}`));
  bob = user("bob");
  await Promise.all([...users.map((u, i) => cliOk(u, ["signup", `usr${i}`])), cliOk(bob, ["signup", "bob"])]);
  // Everyone writes to usr0 first, so usr0 may add them to a group at once (no invitation).
  for (let i = 1; i < USERS; i++) await cliOk(users[i]!, ["send", "usr0", "hello"]);
  await cliOk(users[0]!, ["inbox"]);
}, 180_000);

afterAll(async () => {
  await server?.stop();
});

describe("shards under load", () => {
  it("open as listeners arrive and drain as they leave, with every message delivered exactly once", async () => {
    // Seven listeners, three a shard: the first shard fills, then the second, then a third opens.
    const listeners: Array<{ process: CliProcess; shard: string }> = [];
    for (const u of users) listeners.push(await listen(u));
    expect(listeners.map(({ shard }) => indexOf(shard))).toEqual([0, 0, 0, 1, 1, 1, 2]);

    // A group made while everyone is connected: its room learns their shards from their homes.
    const created = jsonLines(
      await cliOk(users[0]!, [
        "--json",
        "group",
        "create",
        "grow",
        ...users.slice(1).map((_, i) => `usr${i + 1}`),
      ]),
    );
    expect(created[0]).toMatchObject({ name: "grow", members: users.map((_, i) => `usr${i}`) });
    const first = text("to all shards");
    expect(jsonLines(await cliOk(users[3]!, ["--json", "send", "--group", "grow", first]))[0]).toMatchObject({
      status: "delivered",
    });
    // Everyone but the sender, whose listener shares the session that sealed it.
    for (const [i, { process }] of listeners.entries())
      if (i !== 3) await process.waitForOutput((out) => out.includes(first));
    const queued = text("for bob, offline");
    expect(jsonLines(await cliOk(users[0]!, ["--json", "send", "bob", queued]))[0]).toMatchObject({
      status: "stored",
    });

    // Two leave the first shard and two the second: one socket on each of the three, which two shards
    // carry at half their target, so one drains (the first in order, as all hold one).
    const leaving = [1, 2, 4, 5];
    const leftWith = await Promise.all(leaving.map((i) => stop(listeners[i]!.process)));
    const draining = await waitFor(async () => {
      const now = await shards();
      return [...now].find(([, { state }]) => state === "draining")?.[0];
    }, "a shard to drain");
    expect((await shards()).get(draining)).toEqual({ state: "draining", connections: 1 });
    const stayer = [0, 3, 6].find((i) => listeners[i]!.shard === draining)!;
    expect(stayer).toBeDefined();

    // The user still on the draining shard gets live messages, 1:1 and group.
    const direct = text("to the draining shard");
    const toStayer = `usr${stayer}`;
    const from = stayer === 6 ? 3 : 6;
    expect(jsonLines(await cliOk(users[from]!, ["--json", "send", toStayer, direct]))[0]).toMatchObject({
      status: "delivered",
    });
    const second = text("while draining");
    await cliOk(users[from]!, ["--json", "send", "--group", "grow", second]);
    await listeners[stayer]!.process.waitForOutput((out) => out.includes(direct) && out.includes(second));

    // New listeners go to the open shards only.
    const returning = [];
    for (const i of [1, 2]) {
      const back = await listen(users[i]!);
      expect(back.shard).not.toBe(draining);
      returning.push({ i, ...back });
    }

    // The stayer moves on when it reconnects; the drained shard, empty, closes.
    const stayerSaw = await stop(listeners[stayer]!.process);
    const moved = await listen(users[stayer]!);
    expect(moved.shard).not.toBe(draining);
    await waitFor(
      async () => ((await shards()).has(draining) ? undefined : true),
      "the drained shard to close",
    );

    const third = text("after the drain");
    await cliOk(users[0]!, ["--json", "send", "--group", "grow", third]);
    const present = [
      ...[0, 3, 6].filter((i) => i !== stayer).map((i) => ({ i, process: listeners[i]!.process })),
      ...returning.map(({ i, process }) => ({ i, process })),
      { i: stayer, process: moved.process },
    ];
    for (const { i, process } of present)
      if (i !== 0) await process.waitForOutput((out) => out.includes(third));

    // Bob, offline through all of it, gets his message once.
    const bobSaw = jsonLines(await cliOk(bob, ["inbox", "--json"]));
    expect(bobSaw.filter((line) => line.text === queued)).toHaveLength(1);

    // Exactly once everywhere: each listener's output, then what each user's next inbox finds (the two
    // who left and never came back get what they missed there, once).
    const outputs = new Map<number, Array<Record<string, unknown>>>();
    for (const [k, i] of leaving.entries()) outputs.set(i, [...leftWith[k]!]);
    outputs.set(stayer, [...stayerSaw]);
    for (const { i, process } of present)
      outputs.set(i, [...(outputs.get(i) ?? []), ...(await stop(process))]);
    for (let i = 0; i < USERS; i++)
      outputs.get(i)!.push(...jsonLines(await cliOk(users[i]!, ["inbox", "--json"])));
    const senders = new Map([
      [first, 3],
      [second, from],
      [third, 0],
    ]);
    for (let i = 0; i < USERS; i++) {
      for (const [message, sender] of senders) {
        const copies = outputs.get(i)!.filter((line) => line.text === message).length;
        // A sender's own listener shares its session, which is never sent what that session sealed.
        if (i === sender) expect(copies, `usr${i}: ${message}`).toBe(0);
        else expect(copies, `usr${i}: ${message}`).toBe(1);
      }
    }
    expect(outputs.get(stayer)!.filter((line) => line.text === direct)).toHaveLength(1);
  });
});
