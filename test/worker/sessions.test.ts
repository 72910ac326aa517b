// Sessions as devices: the cap per account (a login past it ends the longest-idle session, as a logout
// would, and names it), device names and last seen, and GET/DELETE /v1/sessions limited to one's own.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { groupStub } from "../../durable-objects/names.js";
import type { SessionListResponse, SessionResponse } from "../../protocol/http.js";
import { createGroup, writeTo } from "./group-changes.js";
import {
  api,
  authKeyFor,
  fakeUpload,
  onShard,
  online,
  postGroup,
  signup,
  signupBody,
  uniqueName,
  type TestSocket,
} from "./helpers.js";

const CAP = Number(env.MAX_SESSIONS_PER_ACCOUNT);

const openSockets: TestSocket[] = [];
afterEach(() => {
  for (const socket of openSockets.splice(0)) if (!socket.closed) socket.close();
});

async function connected(token: string, query = ""): Promise<TestSocket> {
  const socket = await online(token, query);
  openSockets.push(socket);
  return socket;
}

function home(username: string) {
  return env.HOMES.get(env.HOMES.idFromName(`user:${username}`));
}

async function loginAs(username: string, deviceName?: string): Promise<SessionResponse> {
  const response = await api("/v1/login", {
    method: "POST",
    body: JSON.stringify({ username, authKey: authKeyFor(username), deviceName }),
  });
  if (response.status !== 200)
    throw new Error(`login ${username}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function sessionsOf(token: string): Promise<SessionListResponse> {
  const response = await api("/v1/sessions", { token });
  expect(response.status).toBe(200);
  return response.json();
}

/** Pending deliveries per session, read from the home's own tables. */
async function pendingBySession(username: string): Promise<Map<string, number>> {
  return runInDurableObject(home(username), (_, state) => {
    const rows = state.storage.sql
      .exec<{ session_id: string; count: number }>(
        "SELECT session_id, COUNT(*) AS count FROM deliveries GROUP BY session_id",
      )
      .toArray();
    return new Map(rows.map((row) => [row.session_id, row.count]));
  });
}

async function setLastSeen(username: string, sessionId: string, at: number): Promise<void> {
  await runInDurableObject(home(username), (_, state) => {
    state.storage.sql.exec("UPDATE sessions SET last_seen_at = ? WHERE id = ?", at, sessionId);
  });
}

async function sendTo(socket: TestSocket, sender: string, target: string): Promise<string> {
  const upload = await fakeUpload({ sender, target });
  const from = socket.received.length;
  socket.ws.send(upload.frame);
  await socket.waitFor(
    (r) => r.kind === "json" && r.frame.type === "sent" && r.frame.id === upload.id,
    5000,
    from,
  );
  return upload.id;
}

async function closedWith(socket: TestSocket): Promise<number | undefined> {
  await socket.waitFor(() => socket.closed, 5000).catch(() => undefined);
  return socket.closeCode;
}

describe("the session cap", () => {
  it(`keeps at most MAX_SESSIONS_PER_ACCOUNT (${CAP}): a login past it ends the longest-idle session, as a logout`, async () => {
    expect(CAP).toBe(10);
    const name = uniqueName("cap");
    const first = await signup(name);
    const sessions = [first];
    for (let i = 1; i < CAP; i++) sessions.push(await loginAs(name, `device ${i}`));
    expect((await sessionsOf(first.token)).sessions).toHaveLength(CAP);

    // The oldest-seen session has a receiving socket open, so it is in use and stays. The next idlest,
    // with only a send-only socket (which marks nothing as received), is the one to go.
    // (Connecting marks a session as seen, so the times are set after.)
    const inUse = sessions[0]!;
    const idlest = sessions[3]!;
    const inUseSocket = await connected(inUse.token);
    const idlestSocket = await connected(idlest.token, "?receive=0");
    const now = Date.now();
    for (const session of sessions) await setLastSeen(name, session.sessionId, now - 60 * 60_000);
    await setLastSeen(name, inUse.sessionId, now - 3 * 60 * 60_000);
    await setLastSeen(name, idlest.sessionId, now - 2 * 60 * 60_000);

    // Something waits in every session's queue, the idlest one's included.
    const sender = await signup(uniqueName("sender"));
    const senderSocket = await connected(sender.token, "?receive=0");
    const waiting = await sendTo(senderSocket, sender.username, name);
    expect((await pendingBySession(name)).get(idlest.sessionId)).toBe(1);

    const newest = await loginAs(name, "new laptop");
    expect(newest.endedSessions).toEqual([
      {
        id: idlest.sessionId,
        deviceName: "device 3",
        createdAt: expect.any(Number),
        lastSeenAt: now - 2 * 60 * 60_000,
      },
    ]);
    const listed = (await sessionsOf(newest.token)).sessions;
    expect(listed).toHaveLength(CAP);
    expect(listed.map((s) => s.id)).not.toContain(idlest.sessionId);
    expect(listed.map((s) => s.id)).toContain(inUse.sessionId);

    // Its token: 401 saying why; its sockets: closed 4401; its queue: dropped. The new login has the message.
    const refused = await api("/v1/whoami", { token: idlest.token });
    expect(refused.status).toBe(401);
    const body = (await refused.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("session_ended");
    expect(body.error.message).toMatch(/limit of sessions.*idle longest/);
    expect(await closedWith(idlestSocket)).toBe(4401);
    expect(idlestSocket.closeCode).toBe(4401);
    const pending = await pendingBySession(name);
    expect(pending.has(idlest.sessionId)).toBe(false);
    expect(pending.get(newest.sessionId)).toBe(1);
    expect(inUseSocket.closed).toBe(false);
    expect(inUseSocket.binaries()).toHaveLength(1);
    void waiting;

    // A connect with the ended token is refused the same way, before any socket exists.
    const connect = await api("/v1/connect", { token: idlest.token, headers: { Upgrade: "websocket" } });
    expect(connect.status).toBe(401);
    expect(await connect.text()).toContain("session_ended");
  });

  it("holds the attack review's 46 logins of one account to 10 sessions, so a message is kept 10 times, not 46", async () => {
    const name = uniqueName("many");
    await signup(name);
    let last: SessionResponse | undefined;
    for (let i = 1; i < 46; i++) last = await loginAs(name, `login ${i}`);
    const listed = (await sessionsOf(last!.token)).sessions;
    expect(listed).toHaveLength(CAP);
    // The newest ten stay: every older one was idler.
    expect(listed.map((session) => session.deviceName)).toEqual(
      Array.from({ length: CAP }, (_, i) => `login ${46 - CAP + i}`),
    );
    const sender = await signup(uniqueName("sender"));
    const socket = await connected(sender.token, "?receive=0");
    await sendTo(socket, sender.username, name);
    const rows = [...(await pendingBySession(name)).values()].reduce((sum, n) => sum + n, 0);
    expect(rows).toBe(CAP);
  });

  it("ends nothing below the cap, and says so with an empty list", async () => {
    const name = uniqueName("few");
    await signup(name);
    const second = await loginAs(name);
    expect(second.endedSessions).toEqual([]);
  });
});

describe("GET /v1/sessions", () => {
  it("lists this account's sessions with device name, created, last seen, and marks the caller's", async () => {
    const name = uniqueName("list");
    const signupResponse = await api("/v1/signup", {
      method: "POST",
      body: await signupBody(name, { deviceName: "desk" }),
    });
    const first = (await signupResponse.json()) as SessionResponse;
    const second = await loginAs(name, "laptop — Ubuntu");
    const third = await loginAs(name);
    await signup(uniqueName("stranger"));

    const { sessions } = await sessionsOf(second.token);
    expect(sessions.map((s) => [s.id, s.deviceName, s.current])).toEqual([
      [first.sessionId, "desk", false],
      [second.sessionId, "laptop — Ubuntu", true],
      [third.sessionId, null, false],
    ]);
    for (const session of sessions) {
      expect(session.createdAt).toBeGreaterThan(Date.now() - 60_000);
      expect(session.lastSeenAt).toBeGreaterThanOrEqual(session.createdAt);
      expect(session.expiresAt).toBeGreaterThan(Date.now());
      expect(session.connected).toBe(false);
    }
    const socket = await connected(third.token);
    expect((await sessionsOf(second.token)).sessions.find((s) => s.id === third.sessionId)?.connected).toBe(
      true,
    );
    socket.close();
  });

  it("updates last seen on requests, at most once a minute", async () => {
    const name = uniqueName("seen");
    const session = await signup(name);
    const longAgo = Date.now() - 10 * 60_000;
    await setLastSeen(name, session.sessionId, longAgo);
    const before = Date.now();
    await api("/v1/whoami", { token: session.token });
    const seen = (await sessionsOf(session.token)).sessions[0]!.lastSeenAt;
    expect(seen).toBeGreaterThanOrEqual(before);
    // Within the minute nothing is written again.
    const recent = Date.now() - 30_000;
    await setLastSeen(name, session.sessionId, recent);
    await api("/v1/whoami", { token: session.token });
    expect((await sessionsOf(session.token)).sessions[0]!.lastSeenAt).toBe(recent);
  });

  it("needs a session", async () => {
    expect((await api("/v1/sessions")).status).toBe(401);
  });
});

describe("DELETE /v1/sessions/:id", () => {
  it("ends another of one's own sessions: its token 401 'revoked', its sockets 4401, its queue dropped", async () => {
    const name = uniqueName("rev");
    const keeper = await signup(name);
    const lost = await loginAs(name, "stolen phone");
    const lostSocket = await connected(lost.token);
    const lostSender = await connected(lost.token, "?receive=0");
    const sender = await signup(uniqueName("friend"));
    const senderSocket = await connected(sender.token, "?receive=0");
    // Delivered live but not acknowledged: still in the lost session's queue.
    await sendTo(senderSocket, sender.username, name);
    expect((await pendingBySession(name)).get(lost.sessionId)).toBe(1);

    const response = await api(`/v1/sessions/${lost.sessionId}`, { method: "DELETE", token: keeper.token });
    expect(response.status).toBe(204);
    expect(await closedWith(lostSocket)).toBe(4401);
    expect(await closedWith(lostSender)).toBe(4401);
    expect((await pendingBySession(name)).has(lost.sessionId)).toBe(false);
    const refused = await api("/v1/whoami", { token: lost.token });
    expect(refused.status).toBe(401);
    const body = (await refused.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({ code: "session_ended" });
    expect(body.error.message).toContain("revoked from another of your devices");
    expect((await sessionsOf(keeper.token)).sessions.map((s) => s.id)).toEqual([keeper.sessionId]);
    // Ended once: a second revoke finds nothing.
    expect(
      (await api(`/v1/sessions/${lost.sessionId}`, { method: "DELETE", token: keeper.token })).status,
    ).toBe(404);
  });

  it("drops what the ended session's group rooms still held for it, as a logout does", async () => {
    const name = uniqueName("member");
    const keeper = await signup(name);
    const lost = await loginAs(name, "lost");
    const admin = await signup(uniqueName("admin"));
    const group = uniqueName("g");
    await writeTo(admin, [keeper]);
    expect((await createGroup(admin, group, [keeper])).status).toBe(201);
    const adminSocket = await connected(admin.token, "?receive=0");
    const { reply } = await postGroup(adminSocket, admin, group, 1, [admin.username, name]);
    expect(reply).toMatchObject({ type: "sent" });
    const pendingFor = (session: string) =>
      runInDurableObject(
        groupStub(env, group),
        (_, state) =>
          state.storage.sql
            .exec<{ n: number }>("SELECT count(*) AS n FROM pending WHERE session_id = ?", session)
            .one().n,
      );
    expect(await pendingFor(lost.sessionId)).toBe(1);
    expect(
      (await api(`/v1/sessions/${lost.sessionId}`, { method: "DELETE", token: keeper.token })).status,
    ).toBe(204);
    expect(await pendingFor(lost.sessionId)).toBe(0);
    expect(await pendingFor(keeper.sessionId)).toBe(1);
  });

  it("cannot end another user's session", async () => {
    const mallory = await signup(uniqueName("mallory"));
    const victim = await signup(uniqueName("victim"));
    const response = await api(`/v1/sessions/${victim.sessionId}`, {
      method: "DELETE",
      token: mallory.token,
    });
    expect(response.status).toBe(404);
    expect((await api("/v1/whoami", { token: victim.token })).status).toBe(200);
  });

  it("answers 400 to a malformed id, 404 to an unknown one, 401 without a session", async () => {
    const session = await signup(uniqueName("bad"));
    for (const id of ["xyz", "0".repeat(31), "G".repeat(32), `${"a".repeat(32)}x`]) {
      const response = await api(`/v1/sessions/${id}`, { method: "DELETE", token: session.token });
      expect(response.status, id).toBe(400);
    }
    expect(
      (await api(`/v1/sessions/${"a".repeat(32)}`, { method: "DELETE", token: session.token })).status,
    ).toBe(404);
    expect((await api(`/v1/sessions/${session.sessionId}`, { method: "DELETE" })).status).toBe(401);
  });
});

describe("device names", () => {
  it("are optional, at most 64 characters, with no control or formatting characters", async () => {
    const name = uniqueName("named");
    await signup(name);
    for (const deviceName of ["x".repeat(65), "", "evil\u001b[2Jname", "line\nbreak", "rtl\u202eeman"]) {
      const response = await api("/v1/login", {
        method: "POST",
        body: JSON.stringify({ username: name, authKey: authKeyFor(name), deviceName }),
      });
      expect(response.status, JSON.stringify(deviceName)).toBe(400);
    }
    const signupResponse = await api("/v1/signup", {
      method: "POST",
      body: await signupBody(uniqueName("named"), { deviceName: 7 }),
    });
    expect(signupResponse.status).toBe(400);
    expect((await loginAs(name, "y".repeat(64))).sessionId).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe("an ended session's sockets", () => {
  /** Shards of this test's own, so the balancer's choice does not decide where the sockets are. */
  const shardNamed = (label: string) => `shard-${uniqueName(label)}`;

  it("are closed by a logout where they are: a receiving one and a send-only one on two shards", async () => {
    const user = await signup(uniqueName("logout"));
    const [receivingShard, sendingShard] = [shardNamed("recv"), shardNamed("send")];
    const receiving = await onShard(user, receivingShard);
    const sending = await onShard(user, sendingShard, { receive: false });
    openSockets.push(receiving, sending);
    // Another session's socket on the same shard stays open: only the ended session's close.
    const other = await loginAs(user.username);
    const kept = await onShard(other, sendingShard, { receive: false });
    openSockets.push(kept);

    expect((await api("/v1/logout", { method: "POST", token: user.token })).status).toBe(204);
    expect(await closedWith(receiving)).toBe(4401);
    expect(await closedWith(sending)).toBe(4401);
    expect(sending.received.length).toBeGreaterThan(0);
    expect(kept.closed).toBe(false);
  });

  it("are reached on a shard a push found stale, where the session still has a send-only socket", async () => {
    const name = uniqueName("stale");
    const keeper = await signup(name);
    const lost = await loginAs(name);
    const shard = shardNamed("stale");
    const sending = await onShard(lost, shard, { receive: false });
    openSockets.push(sending);
    // As a restarted shard leaves it: the home believes a receiving socket of this session is there.
    await runInDurableObject(home(name), (_, state) => {
      state.storage.sql.exec("UPDATE presence SET sockets = 1 WHERE shard = ?", shard);
    });
    // A message to the user is pushed there, finds no receiving socket, and the home stops pushing there.
    const friend = await signup(uniqueName("friend"));
    const friendSocket = await connected(friend.token, "?receive=0");
    await sendTo(friendSocket, friend.username, name);
    const rows = await runInDurableObject(home(name), (_, state) =>
      state.storage.sql
        .exec<{ sockets: number; senders: number }>(
          "SELECT sockets, senders FROM presence WHERE shard = ?",
          shard,
        )
        .toArray(),
    );
    expect(rows).toEqual([{ sockets: 0, senders: 1 }]);

    const response = await api(`/v1/sessions/${lost.sessionId}`, { method: "DELETE", token: keeper.token });
    expect(response.status).toBe(204);
    expect(await closedWith(sending)).toBe(4401);
  });
});
