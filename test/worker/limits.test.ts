// Abuse limits: per-address signup and login limits, per-user upload limits, and per-user flood control
// on each shard that refuses, then disconnects, a flooding client while other users are served.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { FloodControl, FLOOD_DISCONNECT_AFTER } from "../../durable-objects/shard/flood-control.js";
import worker from "../../worker/index.js";
import { BASE, authKeyFor, fakeUpload, online, signup, signupBody, uniqueName } from "./helpers.js";

function call(path: string, init: RequestInit, vars: Record<string, string>, ip?: string): Promise<Response> {
  const headers = new Headers(init.headers);
  if (ip) headers.set("CF-Connecting-IP", ip);
  if (init.body) headers.set("Content-Type", "application/json");
  const context = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
  return Promise.resolve(
    worker.fetch(new Request(`${BASE}${path}`, { ...init, headers }), { ...env, ...vars } as Env, context),
  );
}

async function waitUntil(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("HTTP limits", () => {
  it("limit signups per client address, not per name, and not other addresses", async () => {
    const vars = { SIGNUPS_PER_IP_PER_HOUR: "3" };
    const ip = `203.0.113.${Math.floor(Math.random() * 250)}`;
    const statuses = [];
    for (let i = 0; i < 5; i++) {
      statuses.push(
        (await call("/v1/signup", { method: "POST", body: await signupBody(uniqueName("flood")) }, vars, ip))
          .status,
      );
    }
    expect(statuses).toEqual([201, 201, 201, 429, 429]);
    const limited = await call(
      "/v1/signup",
      { method: "POST", body: await signupBody(uniqueName("flood")) },
      vars,
      ip,
    );
    expect(Number(limited.headers.get("Retry-After"))).toBeGreaterThan(0);
    const elsewhere = await call(
      "/v1/signup",
      { method: "POST", body: await signupBody(uniqueName("calm")) },
      vars,
      "198.51.100.7",
    );
    expect(elsewhere.status).toBe(201);
  });

  it("limit login attempts per client address across usernames", async () => {
    const vars = { LOGINS_PER_IP_PER_MINUTE: "4" };
    const ip = `192.0.2.${Math.floor(Math.random() * 250)}`;
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      const body = JSON.stringify({ username: uniqueName("spray"), authKey: authKeyFor("guess") });
      statuses.push((await call("/v1/login", { method: "POST", body }, vars, ip)).status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
  });

  it("limit blob uploads per user", async () => {
    const vars = { UPLOADS_PER_USER_PER_MINUTE: "2" };
    const [alice, bob] = await Promise.all([signup(uniqueName("alice")), signup(uniqueName("bob"))]);
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      const response = await call(
        "/v1/blobs",
        {
          method: "POST",
          headers: { Authorization: `Bearer ${alice.token}` },
          body: JSON.stringify({ to: bob.username, size: 100 }),
        },
        vars,
      );
      statuses.push(response.status);
    }
    expect(statuses).toEqual([201, 201, 429]);
  });
});

describe("flood control", () => {
  it("refuses over the rate, forgives a client that slows down, disconnects one that does not", () => {
    const flood = new FloodControl(10);
    const start = 1_000_000;
    const burst = Array.from({ length: 25 }, () => flood.admit("a", start));
    expect(burst.filter((r) => r === "ok")).toHaveLength(20);
    expect(burst.slice(20)).toEqual(Array(5).fill("refuse"));
    // A second later the bucket has 10 tokens again: half full, so the refusals are forgiven.
    expect(flood.admit("a", start + 1000)).toBe("ok");
    expect(flood.admit("b", start)).toBe("ok");
    let last = "ok";
    for (let i = 0; i < FLOOD_DISCONNECT_AFTER + 100 && last !== "disconnect"; i++)
      last = flood.admit("c", start + i);
    expect(last).toBe("disconnect");
  });

  it("counts every socket of a user on a shard against one budget: a second socket buys no more frames", async () => {
    const [mallory, alice] = await Promise.all(["mallory", "alice"].map((n) => signup(uniqueName(n))));
    // One shard, so both of mallory's sockets (and alice's) are on it.
    const oneShard = { ...env, SHARDS_MAX: "1", BALANCER_SLICES: "1" } as Env;
    const first = await online(mallory!.token, "?receive=0", oneShard);
    const second = await online(mallory!.token, "?receive=0", oneShard);
    const bystander = await online(alice!.token, "?receive=0", oneShard);
    await runInDurableObject(env.SHARDS.getByName("shard:any:0:0"), async (instance, state) => {
      const socketsOf = (user: string) =>
        state
          .getWebSockets()
          .filter((ws) => (ws.deserializeAttachment() as { user?: string } | null)?.user === user);
      const [one, two] = socketsOf(mallory!.username);
      const [hers] = socketsOf(alice!.username);
      const buckets = (
        instance as unknown as { flood: { buckets: Map<string, { tokens: number; updatedAt: number }> } }
      ).flood.buckets;
      // Not the exact PING_TEXT, which the runtime answers itself without the shard (and its budget).
      const ping = '{ "type": "ping" }';
      await instance.webSocketMessage(one!, ping);
      // One budget for mallory, by name: spend it all, with no refill for a minute (waiting out a real
      // burst would race the clock).
      const budget = buckets.get(mallory!.username);
      expect(budget).toBeDefined();
      budget!.tokens = 0;
      budget!.updatedAt = Date.now() + 60_000;
      await instance.webSocketMessage(two!, ping);
      await instance.webSocketMessage(hers!, ping);
    });
    const answers = (socket: typeof first, what: string) =>
      socket.received.filter((r) => r.kind === "json" && (r.frame.type === what || r.frame.code === what))
        .length;
    // Mallory's other socket is refused; alice, on the same shard, is not.
    await waitUntil(() => answers(first, "rate_limited") + answers(second, "rate_limited") === 1);
    expect(answers(first, "pong") + answers(second, "pong")).toBe(1);
    await bystander.waitFor((r) => r.kind === "json" && r.frame.type === "pong", 20_000);
    for (const s of [first, second, bystander]) s.close();
  }, 60_000);

  it("keeps other users' messages flowing while one socket floods", async () => {
    const [mallory, alice, bob] = await Promise.all(
      ["mallory", "alice", "bob"].map((n) => signup(uniqueName(n))),
    );
    const m = await online(mallory!.token);
    const a = await online(alice!.token);
    const b = await online(bob!.token);
    const rate = Number(env.MESSAGES_PER_USER_PER_SECOND);
    // Far more than a burst plus what refills while the shard works through them, on any machine.
    for (let i = 0; i < rate * 10 + FLOOD_DISCONNECT_AFTER * 2; i++) m.ws.send("{}");
    const upload = await fakeUpload({ sender: alice!.username, target: bob!.username });
    a.ws.send(upload.frame);
    await b.waitFor((r) => r.kind === "binary", 10_000);
    await m.waitFor((r) => r.kind === "json" && r.frame.code === "rate_limited", 20_000);
    await m.waitFor(() => m.closed, 20_000).catch(() => undefined);
    expect(m.closeCode).toBe(1008);
    for (const s of [a, b]) s.close();
  }, 60_000);
});
