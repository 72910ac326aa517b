// Failed logins limited per (username, client address) with a doubling delay, and per username over all
// addresses: a stranger guessing from anywhere cannot lock the owner out of their own account.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { LOGIN_DELAY_MAX_MS, LOGIN_FREE_FAILURES_PER_ADDRESS } from "../../protocol/limits.js";
import worker from "../../worker/index.js";
import { BASE, authKeyFor, signupBody, uniqueName } from "./helpers.js";

function call(path: string, body: string, ip: string, vars: Record<string, string> = {}): Promise<Response> {
  const headers = new Headers({ "Content-Type": "application/json", "CF-Connecting-IP": ip });
  const context = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
  return Promise.resolve(
    worker.fetch(
      new Request(`${BASE}${path}`, { method: "POST", headers, body }),
      { ...env, ...vars } as Env,
      context,
    ),
  );
}

const login = (name: string, key: string, ip: string, vars?: Record<string, string>) =>
  call("/v1/login", JSON.stringify({ username: name, authKey: authKeyFor(key) }), ip, vars);

let addressCounter = 0;
/** A documentation-range address no other test in this file uses. */
function address(): string {
  addressCounter++;
  return `198.18.${addressCounter >> 8}.${addressCounter & 0xff}`;
}

async function account(ip: string): Promise<string> {
  const name = uniqueName("owner");
  expect((await call("/v1/signup", await signupBody(name), ip)).status).toBe(201);
  return name;
}

/** Lets the address's current delay run out at once, as if its Retry-After had passed. */
async function endDelays(name: string): Promise<void> {
  await runInDurableObject(env.HOMES.get(env.HOMES.idFromName(`user:${name}`)), (_, state) => {
    state.storage.sql.exec("UPDATE login_address_failures SET blocked_until = 0");
  });
}

describe("failed logins", () => {
  it("from one address never lock out the owner logging in from another", async () => {
    const home = address();
    const name = await account(home);
    const attacker = address();
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await login(name, "guess", attacker)).status);
    expect(statuses.slice(0, LOGIN_FREE_FAILURES_PER_ADDRESS + 1)).toEqual(
      Array(LOGIN_FREE_FAILURES_PER_ADDRESS + 1).fill(401),
    );
    expect(statuses.slice(LOGIN_FREE_FAILURES_PER_ADDRESS + 1)).toEqual(Array(14).fill(429));
    // The owner, from their own address and from a new one: the right key works at once.
    expect((await login(name, name, home)).status).toBe(200);
    expect((await login(name, name, address())).status).toBe(200);
    // The attacker's address is still waiting, even with the right key.
    expect((await login(name, name, attacker)).status).toBe(429);
  });

  it("make the failing address wait a delay doubling from 1 s up to 15 min", async () => {
    const name = await account(address());
    const attacker = address();
    for (let i = 0; i < LOGIN_FREE_FAILURES_PER_ADDRESS; i++)
      expect((await login(name, "guess", attacker)).status).toBe(401);
    const waits: number[] = [];
    for (let i = 0; i < 14; i++) {
      expect((await login(name, "guess", attacker)).status).toBe(401);
      const refused = await login(name, "guess", attacker);
      expect(refused.status).toBe(429);
      expect(await refused.json()).toMatchObject({ error: { code: "rate_limited" } });
      waits.push(Number(refused.headers.get("Retry-After")));
      await endDelays(name);
    }
    expect(waits).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900]);
    expect(LOGIN_DELAY_MAX_MS).toBe(900_000);
  });

  it("a success clears that address's failures", async () => {
    const name = await account(address());
    const typist = address();
    for (let i = 0; i < LOGIN_FREE_FAILURES_PER_ADDRESS - 1; i++)
      expect((await login(name, "typo", typist)).status).toBe(401);
    expect((await login(name, name, typist)).status).toBe(200);
    for (let i = 0; i < LOGIN_FREE_FAILURES_PER_ADDRESS; i++)
      expect((await login(name, "typo", typist)).status).toBe(401);
  });

  it("past the per-username bound, only addresses the account has logged in from may try", async () => {
    const vars = { LOGIN_FAILURES_PER_USER_PER_HOUR: "12" };
    const home = address();
    const name = await account(home);
    const laptop = address();
    expect((await login(name, name, laptop, vars)).status).toBe(200);
    // A botnet: 12 addresses, one guess each, none of them delayed on its own.
    for (let i = 0; i < 12; i++) expect((await login(name, "guess", address(), vars)).status).toBe(401);
    const stranger = await login(name, name, address(), vars);
    expect(stranger.status).toBe(429);
    expect(Number(stranger.headers.get("Retry-After"))).toBeGreaterThan(3000);
    expect((await login(name, "guess", address(), vars)).status).toBe(429);
    // The owner's signup address and the laptop still get in with the right key.
    expect((await login(name, name, home, vars)).status).toBe(200);
    expect((await login(name, name, laptop, vars)).status).toBe(200);
  });

  it("the default per-username bound stops 100 guesses an hour from 100 addresses", async () => {
    const name = await account(address());
    for (let i = 0; i < 100; i++) expect((await login(name, "guess", address())).status).toBe(401);
    expect((await login(name, "guess", address())).status).toBe(429);
    expect((await login(name, name, address())).status).toBe(429);
  });
});
