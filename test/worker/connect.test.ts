// The balancer: who may connect, how connections spread over shards, and what happens when the
// shard count is raised while users are connected.

import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { fromHex } from "../../protocol/bytes.js";
import { decodeDelivery } from "../../protocol/envelope.js";
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
      for (const ws of state.getWebSockets()) {
        const attachment = ws.deserializeAttachment() as { session: string; expiresAt: number } | null;
        if (attachment?.session === session.sessionId)
          ws.serializeAttachment({ ...attachment, expiresAt: Date.now() - 1 });
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
    expect(welcome).toMatchObject({ user: name, shard: expect.stringMatching(/^shard-\d+$/) });
    socket!.close();
  });

  it("spreads connections over the least-loaded shards", async () => {
    const before = (await (await api("/v1/stats", { headers: OPERATOR_HEADERS })).json()) as {
      connections: Record<string, number>;
    };
    const sessions = await Promise.all(Array.from({ length: 8 }, (_, i) => signup(uniqueName(`spread${i}`))));
    const sockets = [];
    for (const session of sessions) sockets.push(await online(session.token));
    const counts = new Map<string, number>();
    for (const socket of sockets) {
      const shard = String((await socket.waitForJson("welcome")).shard);
      counts.set(shard, (counts.get(shard) ?? 0) + 1);
    }
    // Eight new users over four shards: every shard gets some, none gets more than its fair share
    // plus what it was short of before.
    expect(counts.size).toBe(4);
    const stats = (await (await api("/v1/stats", { headers: OPERATOR_HEADERS })).json()) as {
      connections: Record<string, number>;
    };
    const loads = Object.values(stats.connections);
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(
      Math.max(
        1,
        Math.max(...Object.values(before.connections), 0) - Math.min(...Object.values(before.connections), 0),
      ),
    );
    for (const socket of sockets) socket.close();
  });

  it("rebuilds its counts from the shards after losing them (a restarted balancer)", async () => {
    const sockets = [];
    for (let i = 0; i < 3; i++) sockets.push(await online((await signup(uniqueName(`restart${i}`))).token));
    const stats = async () =>
      (
        (await (await api("/v1/stats", { headers: OPERATOR_HEADERS })).json()) as {
          connections: Record<string, number>;
        }
      ).connections;
    const before = await stats();
    // Forget everything, as a balancer replaced by the runtime would.
    await runInDurableObject(env.BALANCER.get(env.BALANCER.idFromName("balancer")), (instance) => {
      const state = instance as unknown as { loads: Map<string, number>; known: Set<string> };
      state.loads.clear();
      state.known.clear();
    });
    expect(await stats()).toEqual(before);
    for (const socket of sockets) socket.close();
  });

  it("sends new connections to new shards when SHARD_COUNT is raised, losing nothing", async () => {
    const wider = { ...env, SHARD_COUNT: "6" } as Env;
    const alice = await signup(uniqueName("wide-a"));
    const bob = await signup(uniqueName("wide-b"));
    const aliceSocket = await online(alice.token);
    // Bob is offline while the shard count changes: his queued message must survive it.
    const queued = await fakeUpload({ sender: alice.username, target: bob.username });
    aliceSocket.ws.send(queued.frame);
    expect(await aliceSocket.waitForJson("sent")).toMatchObject({ id: queued.id, status: "stored" });

    const landed = new Set<string>();
    const extra = [];
    for (let i = 0; i < 6; i++) {
      const session = await signup(uniqueName(`wide${i}`));
      const socket = await online(session.token, "", wider);
      landed.add(String((await socket.waitForJson("welcome")).shard));
      extra.push(socket);
    }
    expect([...landed].some((shard) => shard === "shard-4" || shard === "shard-5")).toBe(true);

    const bobSocket = await online(bob.token, "", wider);
    const delivered = bobSocket.binaries().map((bytes) => decodeDelivery(bytes).messageIdHex);
    expect(delivered).toContain(queued.id);
    expect(fromHex(queued.id)).toHaveLength(16);
    for (const socket of [aliceSocket, bobSocket, ...extra]) socket.close();
  });
});
