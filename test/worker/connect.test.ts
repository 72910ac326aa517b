// The balancers: who may connect, how connections spread over shards, how shards open as they fill and
// drain as load falls with nothing lost, and how a connect's region picks its balancer. Each test that
// counts shards names its own region (the test location header), so it has its balancer to itself.

import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { connectionOf, setConnection } from "../../durable-objects/shard/connection.js";
import { decodeDelivery } from "../../protocol/envelope.js";
import type { StatsResponse } from "../../protocol/http.js";
import { sha256Hex } from "../../worker/tokens.js";
import { OPERATOR_HEADERS } from "../support/operator-token.js";
import { TestSocket, api, connectSocket, fakeUpload, login, online, signup, uniqueName } from "./helpers.js";

describe("GET /v1/connect", () => {
  it("refuses a missing, malformed, forged or revoked token before any upgrade", async () => {
    const name = uniqueName("conn");
    const session = await signup(name);
    const [user, id, secret] = session.token.split(".") as [string, string, string];
    const forged = `${user}.${id}.${secret.replace(/.$/, (ch) => (ch === "0" ? "1" : "0"))}`;
    for (const token of [null, "nonsense", forged]) {
      const { response, socket } = await connectSocket(token);
      expect(socket, String(token)).toBeUndefined();
      expect(response.status).toBe(401);
    }
    await api("/v1/logout", { method: "POST", token: session.token });
    const revoked = await connectSocket(session.token);
    expect(revoked.response.status).toBe(401);
  });

  it("takes a browser's token from its offered subprotocols, selects only `telepound`, and never echoes the token", async () => {
    const session = await signup(uniqueName("web"));
    const offer = (token: string) =>
      exports.default.fetch(
        new Request("http://telepound.test/v1/connect", {
          headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": `telepound, telepound.bearer.${token}` },
        }),
      );
    const accepted = await offer(session.token);
    expect(accepted.status).toBe(101);
    expect(accepted.headers.get("Sec-WebSocket-Protocol")).toBe("telepound");
    const socket = new TestSocket(accepted.webSocket!);
    accepted.webSocket!.accept();
    expect((await socket.waitForJson("welcome")).type).toBe("welcome");
    socket.close();

    const [user, id, secret] = session.token.split(".") as [string, string, string];
    const forged = `${user}.${id}.${secret.replace(/.$/, (ch) => (ch === "0" ? "1" : "0"))}`;
    for (const token of [forged, "nonsense"]) {
      const refused = await offer(token);
      expect(refused.status, token).toBe(401);
      expect(refused.webSocket).toBeNull();
    }
    // Only the offered token counts: a subprotocol that merely mentions one is no credential.
    const unlabelled = await exports.default.fetch(
      new Request("http://telepound.test/v1/connect", {
        headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": `telepound, ${session.token}` },
      }),
    );
    expect(unlabelled.status).toBe(401);
  });

  it("closes open sockets of a session that logs out (4401), and only those", async () => {
    const name = uniqueName("bye");
    const first = await signup(name);
    const second = await login(name);
    const sending = await online(first.token, "?receive=0");
    const receiving = await online(first.token);
    const other = await online(second.token);
    expect((await api("/v1/logout", { method: "POST", token: first.token })).status).toBe(204);
    for (const socket of [sending, receiving]) {
      await socket.waitFor(() => socket.closed, 5000).catch(() => undefined);
      expect(socket.closeCode).toBe(4401);
    }
    expect(other.closed).toBe(false);
    other.close();
  });

  it("closes a socket whose session expired at its next frame", async () => {
    const session = await signup(uniqueName("late"));
    const socket = await online(session.token);
    const shard = String((await socket.waitForJson("welcome")).shard);
    await runInDurableObject(env.SHARDS.get(env.SHARDS.idFromName(shard)), (_, state) => {
      // Through the shard's own writer, which keeps its in-memory copy of the attachment.
      for (const ws of state.getWebSockets()) {
        const connection = connectionOf(ws);
        if (connection?.session === session.sessionId)
          setConnection(ws, { ...connection, expiresAt: Date.now() - 1 });
      }
    });
    socket.sendJson({ type: "ping", x: 1 });
    await socket.waitFor(() => socket.closed, 5000).catch(() => undefined);
    expect(socket.closeCode).toBe(4401);
  });

  it("insists on a WebSocket upgrade", async () => {
    const session = await signup(uniqueName("plain"));
    const response = await api("/v1/connect", { token: session.token });
    expect(response.status).toBe(400);
  });

  it("greets the user by name and says which shard holds the socket", async () => {
    const name = uniqueName("greet");
    const session = await signup(name);
    const { socket } = await connectSocket(session.token);
    const welcome = await socket!.waitForJson("welcome");
    expect(welcome).toMatchObject({ user: name, shard: expect.stringMatching(/^shard:[a-z]+:\d+:\d+$/) });
    socket!.close();
  });

  it("spreads connections over the least-loaded of a balancer's open shards", async () => {
    const four = inRegion({ SHARDS_MIN: "4" });
    const sessions = await Promise.all(Array.from({ length: 8 }, (_, i) => signup(uniqueName(`spread${i}`))));
    const sockets = [];
    for (const session of sessions) sockets.push(await online(session.token, "", four, at("sam")));
    const counts = new Map<string, number>();
    for (const socket of sockets) {
      const shard = String((await socket.waitForJson("welcome")).shard);
      counts.set(shard, (counts.get(shard) ?? 0) + 1);
    }
    // Eight new users over the four shards the region's balancer keeps open: two each.
    expect([...counts.keys()].sort()).toEqual([0, 1, 2, 3].map((i) => `shard:sam:0:${i}`));
    expect([...counts.values()]).toEqual([2, 2, 2, 2]);
    await waitForStats((stats) =>
      (balancerOf(stats, "balancer:sam:0")?.shards ?? []).every((s) => s.connections === 2),
    );
    for (const socket of sockets) socket.close();
  });

  it("puts a user's sockets on one shard, so more sockets buy no more frames", async () => {
    const four = inRegion({ SHARDS_MIN: "4" });
    const user = await signup(uniqueName("sticky"));
    const others = await Promise.all(Array.from({ length: 3 }, (_, i) => signup(uniqueName(`sticky${i}`))));
    const sockets = [await online(user.token, "", four, at("eeur"))];
    const home = String((await sockets[0]!.waitForJson("welcome")).shard);
    // Other users fill the other shards; least load alone would move this user's next sockets there.
    for (const other of others) sockets.push(await online(other.token, "", four, at("eeur")));
    for (let i = 0; i < 3; i++) {
      const again = await online(user.token, "?receive=0", four, at("eeur"));
      expect((await again.waitForJson("welcome")).shard).toBe(home);
      sockets.push(again);
    }
    for (const socket of sockets) socket.close();
  });

  it("rebuilds its counts from its shards after losing them (a restarted balancer)", async () => {
    const region = inRegion({ SHARDS_MIN: "2" });
    const sockets = [];
    for (let i = 0; i < 3; i++)
      sockets.push(await online((await signup(uniqueName(`restart${i}`))).token, "", region, at("oc")));
    const before = await waitForStats((stats) => connectionsOf(stats, "balancer:oc:0") === 3);
    // Forget everything in memory, as a balancer replaced by the runtime would.
    await runInDurableObject(env.BALANCER.getByName("balancer:oc:0"), (instance) => {
      const state = instance as unknown as { pool: unknown; known: Set<string>; policy: unknown };
      state.pool = null;
      state.known.clear();
      state.policy = null;
    });
    const after = await stats();
    expect(balancerOf(after, "balancer:oc:0")).toEqual(balancerOf(before, "balancer:oc:0"));
    for (const socket of sockets) socket.close();
  });

  it("opens shards as they fill and drains them as load falls, losing and doubling nothing", async () => {
    // Two sockets a shard, three shards at most.
    const small = inRegion({ SHARDS_MIN: "1", SHARDS_MAX: "3", SHARD_TARGET_CONNECTIONS: "2" });
    const where = at("afr");
    const bob = await signup(uniqueName("grow-b"));
    const users = await Promise.all(Array.from({ length: 6 }, (_, i) => signup(uniqueName(`grow${i}`))));
    const sockets = [];
    const landed: string[] = [];
    for (const user of users) {
      const socket = await online(user.token, "", small, where);
      landed.push(String((await socket.waitForJson("welcome")).shard));
      sockets.push(socket);
    }
    expect(landed).toEqual([0, 0, 1, 1, 2, 2].map((i) => `shard:afr:0:${i}`));

    // Bob is offline while shards open and drain: his queued message must survive it.
    const queued = await fakeUpload({ sender: users[0]!.username, target: bob.username });
    sockets[0]!.ws.send(queued.frame);
    expect(await sockets[0]!.waitForJson("sent")).toMatchObject({ id: queued.id, status: "stored" });
    // A live message from the first shard to a user on the last one arrives once.
    const live = await fakeUpload({ sender: users[0]!.username, target: users[5]!.username });
    sockets[0]!.ws.send(live.frame);
    const sent = await sockets[0]!.waitFor(
      (r) => r.kind === "json" && r.frame.type === "sent" && r.frame.id === live.id,
    );
    expect(sent).toMatchObject({ frame: { status: "delivered" } });
    await sockets[5]!.waitFor((r) => r.kind === "binary");

    // Load falls to one socket on the first shard and one on the last: the two would fit in one shard at
    // half its target, so the emptied middle one drains.
    for (const i of [1, 2, 3, 4]) sockets[i]!.close();
    const openShards = (stats: StatsResponse) =>
      (balancerOf(stats, "balancer:afr:0")?.shards ?? [])
        .filter(({ state }) => state === "open")
        .map(({ shard }) => shard);
    // Draining, and closed at once as it holds no socket.
    const drained = await waitForStats((stats) => !openShards(stats).includes("shard:afr:0:1"));
    // Each shard with its state and count, so that a failure shows what the balancer believed.
    expect(
      balancerOf(drained, "balancer:afr:0")?.shards.map(({ shard, state, connections }) => ({
        shard,
        state,
        connections,
      })),
    ).toEqual([
      { shard: "shard:afr:0:0", state: "open", connections: 1 },
      { shard: "shard:afr:0:2", state: "open", connections: 1 },
    ]);
    // New users go only to open shards with room: never to a drained one.
    const next = await online((await signup(uniqueName("grow-n"))).token, "", small, where);
    expect(openShards(drained)).toContain(String((await next.waitForJson("welcome")).shard));

    const bobSocket = await online(bob.token, "", small, where);
    const delivered = bobSocket.binaries().map((bytes) => decodeDelivery(bytes).messageIdHex);
    expect(delivered).toEqual([queued.id]);
    const liveCopies = sockets[5]!.binaries().map((bytes) => decodeDelivery(bytes).messageIdHex);
    expect(liveCopies).toEqual([live.id]);
    for (const socket of [...sockets, next, bobSocket]) socket.close();
  });

  it("never lets an older load report land after a newer one: a shard sends one at a time", async () => {
    const region = inRegion({ SHARDS_MIN: "1", SHARD_TARGET_CONNECTIONS: "1000" });
    const where = at("apac");
    // The balancer holds the first report it gets from its shard until told.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const received: number[] = [];
    await runInDurableObject(env.BALANCER.getByName("balancer:apac:0"), (instance) => {
      const prototype = Object.getPrototypeOf(instance) as {
        report: ((shard: string, load: { connections: number }) => unknown) & { held?: true };
      };
      const original = prototype.report;
      let first = true;
      prototype.report = Object.assign(
        async function (this: { ctx: DurableObjectState }, shard: string, load: { connections: number }) {
          if (this.ctx.id.name === "balancer:apac:0") {
            const mine = first;
            first = false;
            if (mine) await held;
            received.push(load.connections);
          }
          return original.call(this, shard, load);
        },
        { held: true as const },
      );
    });
    const one = await online((await signup(uniqueName("order-a"))).token, "", region, where);
    // The first report (one socket) is held; a second socket makes the shard's count two meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const two = await online((await signup(uniqueName("order-b"))).token, "", region, where);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received).toEqual([]);
    release();
    // The held report lands first, the newer one after it (sent once the first is answered).
    await vi.waitUntil(() => received.length >= 2, { timeout: 5000, interval: 10 });
    expect(received).toEqual([1, 2]);
    // The count the balancer keeps is the newer one.
    const settled = await waitForStats((now) => connectionsOf(now, "balancer:apac:0") === 2);
    expect(connectionsOf(settled, "balancer:apac:0")).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(connectionsOf(await stats(), "balancer:apac:0")).toBe(2);
    for (const socket of [one, two]) socket.close();
  });

  it("opens a shard for a busy one's frames per second, not only for its sockets", async () => {
    const busy = inRegion({ SHARD_TARGET_CONNECTIONS: "1000", SHARD_TARGET_FRAMES_PER_SECOND: "20" });
    const where = at("me");
    const chatty = await online((await signup(uniqueName("busy-a"))).token, "", busy, where);
    expect((await chatty.waitForJson("welcome")).shard).toBe("shard:me:0:0");
    // Frames for well over a second, so the shard reports its rate: about 50 a second.
    for (let i = 0; i < 70; i++) {
      // Not the bare ping text, which the runtime answers without waking the shard.
      chatty.sendJson({ type: "ping", n: i });
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await waitForStats((stats) =>
      (balancerOf(stats, "balancer:me:0")?.shards ?? []).some((shard) => shard.framesPerSecond >= 20),
    );
    const next = await online((await signup(uniqueName("busy-b"))).token, "", busy, where);
    expect((await next.waitForJson("welcome")).shard).toBe("shard:me:0:1");
    for (const socket of [chatty, next]) socket.close();
  });

  it("balances in the region the platform gives, and honours the test header only when told to", async () => {
    const user = await signup(uniqueName("where"));
    const ignored = await online(user.token, "", { ...env, BALANCER_SLICES: "1" } as Env, at("weur"));
    expect(String((await ignored.waitForJson("welcome")).shard)).toMatch(/^shard:any:0:\d+$/);
    const honoured = await online(user.token, "", inRegion({}), at("weur"));
    expect(String((await honoured.waitForJson("welcome")).shard)).toMatch(/^shard:weur:0:\d+$/);
    // A name that is no region is no region.
    const unknown = await online(user.token, "", inRegion({}), at("mars"));
    expect(String((await unknown.waitForJson("welcome")).shard)).toMatch(/^shard:any:0:\d+$/);
    for (const socket of [ignored, honoured, unknown]) socket.close();
  });
});

/** The suite's settings with the test location header honoured, one balancer a region, and `vars` over them. */
function inRegion(vars: Record<string, string>): Env {
  return { ...env, TEST_LOCATION_HEADER: "1", BALANCER_SLICES: "1", ...vars } as Env;
}

function at(region: string): Record<string, string> {
  return { "X-Telepound-Test-Location": region };
}

async function stats(): Promise<StatsResponse> {
  return (await (await api("/v1/stats", { headers: OPERATOR_HEADERS })).json()) as StatsResponse;
}

/** Shards report after a short delay: the stats that first satisfy `ready`. */
async function waitForStats(ready: (stats: StatsResponse) => boolean): Promise<StatsResponse> {
  let last: StatsResponse | undefined;
  await vi
    .waitUntil(
      async () => {
        last = await stats();
        return ready(last);
      },
      { timeout: 5000, interval: 25 },
    )
    .catch((error: unknown) => {
      throw new Error(`stats never ready: ${JSON.stringify(last)}`, { cause: error });
    });
  return last!;
}

function balancerOf(stats: StatsResponse, name: string) {
  return stats.balancers.find(({ balancer }) => balancer === name);
}

function connectionsOf(stats: StatsResponse, name: string): number {
  return (balancerOf(stats, name)?.shards ?? []).reduce((sum, shard) => sum + shard.connections, 0);
}

describe("a shard's socket count", () => {
  it("counts a socket that closes while its home answers once, whether the session is refused or let in", async () => {
    const user = await signup(uniqueName("count"));
    const [, session, secret] = user.token.split(".") as [string, string, string];
    const rightHash = await sha256Hex(secret);
    const shard = `shard-count-${uniqueName("s")}`;
    await runInDurableObject(env.SHARDS.getByName(shard), async (instance, state) => {
      const shardObject = instance as unknown as {
        fetch(request: Request): Promise<Response>;
        webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void>;
        connectionCount(): number;
      };
      expect(shardObject.connectionCount()).toBe(0);
      for (const [secretHash, status] of [
        ["0".repeat(64), 401],
        [rightHash, 101],
      ] as const) {
        const opening = shardObject.fetch(
          new Request("http://shard/connect", {
            headers: {
              Upgrade: "websocket",
              "X-Telepound-User": user.username,
              "X-Telepound-Session": session,
              "X-Telepound-Secret-Hash": secretHash,
            },
          }),
        );
        // Accepted at once, closed by its client before the home has answered.
        const socket = state.getWebSockets().find((ws) => ws.deserializeAttachment() !== null)!;
        await shardObject.webSocketClose(socket, 1000, "gone");
        expect((await opening).status).toBe(status);
        expect(shardObject.connectionCount()).toBe(0);
        // Not brought back to life by the home's late answer.
        expect(socket.deserializeAttachment()).toBeNull();
      }
    });
  });
});
