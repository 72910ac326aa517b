// The name directory: routes that name a user or group nobody has made answer without waking a home or
// room (each woken one is a stored database), users probing names are rate limited, and an account
// made before the directory existed is found and registered by its first login when the operator allows it.

import { listDurableObjectIds } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { decodeBase64 } from "hono/utils/encode";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index.js";
import { issueSession, sha256Hex } from "../../worker/tokens.js";
import { BASE, api, authKeyFor, publicKeys, signup, uniqueName } from "./helpers.js";

async function objectIds<T extends Rpc.DurableObjectBranded | undefined>(
  namespace: DurableObjectNamespace<T>,
): Promise<Set<string>> {
  return new Set((await listDurableObjectIds(namespace)).map((id) => id.toString()));
}

const forgedToken = () => `${uniqueName("ghost")}.${"ab".repeat(16)}.${"cd".repeat(32)}`;

describe("names that do not exist", () => {
  it("wake no home or room, by any route, and a user's misses are limited", async () => {
    const prober = await signup(uniqueName("prober"));
    const homes = await objectIds(env.HOMES);
    const rooms = await objectIds(env.GROUPS);
    const statuses: Record<string, number[]> = { login: [], token: [], user: [], group: [], blob: [] };
    for (let i = 0; i < 40; i++) {
      const login = await api("/v1/login", {
        method: "POST",
        body: JSON.stringify({ username: uniqueName("nobody"), authKey: authKeyFor("x") }),
      });
      statuses.login!.push(login.status);
      statuses.token!.push((await api("/v1/whoami", { token: forgedToken() })).status);
      statuses.user!.push((await api(`/v1/users/${uniqueName("nobody")}`, { token: prober.token })).status);
      statuses.group!.push((await api(`/v1/groups/${uniqueName("g")}`, { token: prober.token })).status);
    }
    const lookup = await api("/v1/users/lookup", {
      method: "POST",
      token: prober.token,
      body: JSON.stringify({
        usernames: Array.from({ length: 1024 }, (_, i) => `stranger-${Date.now()}-${i}`),
      }),
    });
    const blob = await api("/v1/blobs", {
      method: "POST",
      token: prober.token,
      body: JSON.stringify({ to: uniqueName("nobody"), size: 100 }),
    });
    expect(await objectIds(env.HOMES)).toEqual(homes);
    expect(await objectIds(env.GROUPS)).toEqual(rooms);
    expect(statuses.login).toEqual(Array(40).fill(401));
    expect(statuses.token).toEqual(Array(40).fill(401));
    // One budget of 30 unknown names a minute for the user, shared by users and groups.
    const misses = [...statuses.user!, ...statuses.group!].filter((status) => status === 404).length;
    expect(misses).toBe(30);
    expect(statuses.group!.slice(-10)).toEqual(Array(10).fill(429));
    expect(lookup.status).toBe(429);
    expect(blob.status).toBe(429);
    // The count does see a new home: a real signup makes exactly one.
    await signup(uniqueName("real"));
    expect((await objectIds(env.HOMES)).size).toBe(homes.size + 1);
  });

  it("is answered from the directory for names that do exist", async () => {
    const [alice, bob] = await Promise.all([signup(uniqueName("alice")), signup(uniqueName("bob"))]);
    const found = await api(`/v1/users/${bob.username}`, { token: alice.token });
    expect(found.status).toBe(200);
    const lookup = await api("/v1/users/lookup", {
      method: "POST",
      token: alice.token,
      body: JSON.stringify({ usernames: [bob.username, uniqueName("nobody")] }),
    });
    expect(await lookup.json()).toMatchObject({
      users: [{ username: bob.username }],
      missing: [expect.any(String)],
    });
  });
});

describe("an account made before the directory", () => {
  it("is found by its first login only when REGISTER_ACCOUNTS_ON_LOGIN is 1, then everywhere", async () => {
    const name = uniqueName("elder");
    // Made straight in its home, as every account was before signup registered names.
    const session = await issueSession(name);
    await env.HOMES.get(env.HOMES.idFromName(`user:${name}`)).signup(
      {
        username: name,
        authKeyHash: await sha256Hex(decodeBase64(authKeyFor(name))),
        publicKeys: await publicKeys(),
        sealedPrivateKeys: btoa("sealed"),
      },
      { id: session.id, secretHash: session.secretHash, expiresAt: session.expiresAt, deviceName: null },
    );
    const login = (vars: Record<string, string>) => {
      const context = {
        waitUntil() {},
        passThroughOnException() {},
        props: {},
      } as unknown as ExecutionContext;
      const request = new Request(`${BASE}/v1/login`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: name, authKey: authKeyFor(name) }),
      });
      return Promise.resolve(worker.fetch(request, { ...env, ...vars } as Env, context));
    };
    expect((await login({})).status).toBe(401);
    expect((await login({ REGISTER_ACCOUNTS_ON_LOGIN: "1" })).status).toBe(200);
    const again = await login({});
    expect(again.status).toBe(200);
    const { token } = (await again.json()) as { token: string };
    expect((await api("/v1/whoami", { token })).status).toBe(200);
  });
});
