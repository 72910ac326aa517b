// Attack: strangers and users naming accounts and groups that do not exist, by every route that names
// one, against a real `wrangler dev`. Each kind of probe runs 45 times; the state files of homes and rooms
// are counted before and after (none may appear), the rate limits must answer 429, and an honest pair
// keeps talking throughout, every message delivered in order.

import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { toHex } from "../../protocol/bytes.js";
import { encodeSignedPart, encodeUpload, membersDigest } from "../../protocol/envelope.js";
import type { SessionResponse } from "../../protocol/http.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { WsUser, fakeEnvelope, signupUser } from "../support/ws-user.js";

const PROBES = 45;
/** wrangler.toml's UNKNOWN_NAMES_PER_USER_PER_MINUTE: misses past it are answered 429. */
const UNKNOWN_NAMES_PER_MINUTE = 30;

let server: LocalServer;

beforeAll(async () => {
  server = await startLocalServer();
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

/** SQLite databases of one Durable Object class under the persist folder (the runtime's own excluded). */
function stateFiles(className: string): number {
  const folder = join(server.persistDir, "v3", "do", `telepound-${className}`);
  if (!existsSync(folder)) return 0;
  return readdirSync(folder).filter((file) => file.endsWith(".sqlite") && file !== "metadata.sqlite").length;
}

function counts(): Record<string, number> {
  return Object.fromEntries(
    ["UserHome", "GroupRoom", "Directory", "Throttle"].map((name) => [name, stateFiles(name)]),
  );
}

const stranger = (label: string) => `${label}-${toHex(randomBytes(6))}`;

function http(path: string, init: RequestInit & { token?: string; ip?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.token) headers.set("Authorization", `Bearer ${init.token}`);
  if (init.ip) headers.set("CF-Connecting-IP", init.ip);
  if (init.body) headers.set("Content-Type", "application/json");
  return fetch(`${server.url}${path}`, { ...init, headers });
}

/** A well-formed token for an account that does not exist. */
const forgedToken = () => `${stranger("ghost")}.${toHex(randomBytes(16))}.${toHex(randomBytes(32))}`;

/** The status a WebSocket upgrade is refused with (or 101 if it was accepted). */
function upgradeStatus(token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${server.url.replace(/^http/, "ws")}/v1/connect`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    socket.once("unexpected-response", (_, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.once("open", () => {
      resolve(101);
      socket.close();
    });
    socket.once("error", (error) =>
      error.message.includes("Unexpected server response") ? undefined : reject(error),
    );
  });
}

/** A group upload for a group nobody made: well-formed, so the shard routes it to the group. */
function groupUpload(sender: string, group: string): { id: string; frame: Uint8Array } {
  const messageId = randomBytes(16);
  const signedPart = encodeSignedPart({
    kind: "group",
    messageId,
    sentAt: Date.now(),
    counter: 1,
    sender,
    target: group,
    epoch: 1,
    membersDigest: membersDigest([sender]),
    keyCommitment: randomBytes(32),
    nonce: randomBytes(24),
    ciphertext: randomBytes(32),
  });
  const slot = {
    recipient: sender,
    conversationKeyWrap: randomBytes(384),
    msgKeyNonce: randomBytes(24),
    msgKeyBox: randomBytes(48),
  };
  return { id: toHex(messageId), frame: encodeUpload(signedPart, randomBytes(64), [slot]) };
}

async function statuses(run: (i: number) => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < PROBES; i++) out.push(await run(i));
  return out;
}

const tally = (list: number[]) =>
  Object.fromEntries([...new Set(list)].map((status) => [status, list.filter((s) => s === status).length]));

describe("probes for names that do not exist", () => {
  it("store nothing, are rate limited, and do not slow an honest conversation", async () => {
    const [alice, bob, ...probers] = await Promise.all(
      ["alice", "bob", "p-lookup", "p-user", "p-socket", "p-groups", "p-epochs", "p-blobs"].map((label) =>
        signupUser(server.url, stranger(label)),
      ),
    );
    const [lookupProber, userProber, socketProber, groupProber, epochProber, blobProber] =
      probers as SessionResponse[];
    const sender = new WsUser(server.url, alice!);
    const receiver = new WsUser(server.url, bob!);
    const prober = new WsUser(server.url, socketProber!);
    await Promise.all([sender.connect(), receiver.connect(), prober.connect()]);
    const before = counts();

    // The honest pair: 150 messages, one after another, while every probe below runs.
    const sent: string[] = [];
    const conversation = (async () => {
      for (let i = 0; i < 150; i++) {
        const envelope = await fakeEnvelope(alice!.username, bob!.username, `hello ${i}`);
        const answer = await sender.upload(envelope);
        expect(answer.type).toBe("sent");
        sent.push(envelope.id);
      }
    })();

    const results: Record<string, number[]> = {};
    const probes = {
      // Unauthenticated: a different claimed address each time, so no per-address limit hides the outcome.
      login: () =>
        statuses((i) =>
          http("/v1/login", {
            method: "POST",
            ip: `198.51.100.${i + 1}`,
            body: JSON.stringify({
              username: stranger("nobody"),
              authKey: randomBytes(32).toString("base64"),
            }),
          }).then((r) => r.status),
        ),
      kdf: () => statuses(() => http(`/v1/kdf/${stranger("nobody")}`).then((r) => r.status)),
      forgedToken: () => statuses(() => http("/v1/whoami", { token: forgedToken() }).then((r) => r.status)),
      forgedConnect: () => statuses(() => upgradeStatus(forgedToken())),
      // Authenticated users naming strangers.
      lookup: () =>
        statuses(() =>
          http("/v1/users/lookup", {
            method: "POST",
            token: lookupProber!.token,
            body: JSON.stringify({ usernames: Array.from({ length: 1024 }, () => stranger("n")) }),
          }).then((r) => r.status),
        ),
      userKeys: () =>
        statuses(() =>
          http(`/v1/users/${stranger("nobody")}`, { token: userProber!.token }).then((r) => r.status),
        ),
      groupInfo: () =>
        statuses((i) => {
          const group = stranger("g");
          const route = [
            { path: `/v1/groups/${group}`, method: "GET" },
            { path: `/v1/groups/${group}/epochs/1`, method: "GET" },
            { path: `/v1/groups/${group}/members`, method: "POST", body: "{}" },
            { path: `/v1/groups/${group}/leave`, method: "POST", body: "{}" },
            { path: `/v1/groups/${group}/members/${stranger("m")}`, method: "DELETE", body: "{}" },
          ][i % 5]!;
          return http(route.path, { ...route, token: groupProber!.token }).then((r) => r.status);
        }),
      nextEpoch: () =>
        statuses(async () => {
          const response = await http(`/v1/groups/${stranger("g")}/next-epoch`, {
            token: epochProber!.token,
          });
          expect(await response.json()).toMatchObject({ epoch: 1 });
          return response.status;
        }),
      blobs: () =>
        statuses((i) =>
          http("/v1/blobs", {
            method: "POST",
            token: blobProber!.token,
            body: JSON.stringify(
              i % 2 ? { to: stranger("nobody"), size: 100 } : { group: stranger("g"), size: 100 },
            ),
          }).then((r) => r.status),
        ),
      // Over the socket: sends to strangers, posts to groups nobody made, acks naming them.
      socket: async () => {
        const codes: number[] = [];
        for (let i = 0; i < PROBES; i++) {
          const direct = await prober.upload(await fakeEnvelope(socketProber!.username, stranger("nobody")));
          const group = await prober.upload(groupUpload(socketProber!.username, stranger("g")));
          prober.send(JSON.stringify({ type: "ack", ids: [toHex(randomBytes(16))], group: stranger("g") }));
          codes.push(
            direct.type === "error" && direct.code === "unknown_user" ? 404 : 0,
            group.type === "error" && group.code === "unknown_group" ? 404 : 0,
          );
        }
        // A ping answered after every ack frame above: the shard has handled them all.
        const from = prober.frames.length;
        prober.send(JSON.stringify({ type: "ping" }));
        await prober.waitFor((frame) => frame.type === "pong", 10_000, from);
        return codes;
      },
    };
    await Promise.all(
      Object.entries(probes).map(async ([name, run]) => {
        results[name] = await run();
      }),
    );
    await conversation;
    await receiver.waitFor(() => receiver.receivedIds.length >= sent.length, 20_000);
    const after = counts();
    console.log(
      "stranger probes:",
      JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, tally(v)]))),
    );
    console.log("state files before", JSON.stringify(before), "after", JSON.stringify(after));

    // Nothing stored for any name that has no account or group.
    expect(after.UserHome).toBe(before.UserHome);
    expect(after.GroupRoom).toBe(before.GroupRoom);
    // The directory and the throttles are fixed pools, whatever names and addresses are invented.
    expect(after.Directory).toBeLessThanOrEqual(16);
    expect(after.Throttle).toBeLessThanOrEqual(64);

    // Every probe got its answer; the users' ones are rate limited past the budget for unknown names.
    expect(results.login).toEqual(Array(PROBES).fill(401));
    expect(results.kdf).toEqual(Array(PROBES).fill(410));
    expect(results.forgedToken).toEqual(Array(PROBES).fill(401));
    expect(results.forgedConnect).toEqual(Array(PROBES).fill(401));
    expect(results.nextEpoch).toEqual(Array(PROBES).fill(200));
    expect(results.socket).toEqual(Array(PROBES * 2).fill(404));
    for (const name of ["lookup", "userKeys", "groupInfo", "blobs"] as const) {
      const list = results[name]!;
      expect(
        list.slice(0, UNKNOWN_NAMES_PER_MINUTE).every((status) => status !== 429),
        name,
      ).toBe(true);
      expect(list.slice(UNKNOWN_NAMES_PER_MINUTE), name).toEqual(
        Array(PROBES - UNKNOWN_NAMES_PER_MINUTE).fill(429),
      );
    }
    expect(tally(results.userKeys!.slice(0, UNKNOWN_NAMES_PER_MINUTE))).toEqual({
      404: UNKNOWN_NAMES_PER_MINUTE,
    });

    // The honest conversation: all 150, in the order sent, none twice.
    expect(receiver.receivedIds).toEqual(sent);
    await Promise.all([sender.close(), receiver.close(), prober.close()]);
  }, 180_000);
});
