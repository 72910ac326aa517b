// The address abuse limits count under: CF-Connecting-IP with IPv6 by /64, and one shared bucket for a
// request without a usable one, so leaving the header out or sending junk in it buys no fresh budget.

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SHARED_ADDRESS_BUCKET, addressBucket } from "../../worker/client-address.js";
import worker from "../../worker/index.js";
import { BASE, authKeyFor, uniqueName } from "./helpers.js";

/** A login for a name nobody has: 401 while under the per-address limit, 429 past it. */
function login(ip: string | null, vars: Record<string, string>): Promise<Response> {
  const headers = new Headers({ "Content-Type": "application/json" });
  if (ip !== null) headers.set("CF-Connecting-IP", ip);
  const body = JSON.stringify({ username: uniqueName("probe"), authKey: authKeyFor("x") });
  const context = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
  return Promise.resolve(
    worker.fetch(
      new Request(`${BASE}/v1/login`, { method: "POST", headers, body }),
      { ...env, ...vars } as Env,
      context,
    ),
  );
}

const randomHex = () => Math.floor(Math.random() * 0xffff).toString(16);

describe("client address buckets", () => {
  it("key IPv4 whole, IPv6 by /64, and junk or nothing in the shared bucket", () => {
    expect(addressBucket("203.0.113.9")).toBe("203.0.113.9");
    expect(addressBucket("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(addressBucket("2001:0DB8:0001:0002:ffff:ffff:ffff:ffff")).toBe("2001:db8:1:2::/64");
    expect(addressBucket("[2001:db8:1:2::7]")).toBe("2001:db8:1:2::/64");
    expect(addressBucket("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
    expect(addressBucket("::ffff:198.51.100.4")).toBe("198.51.100.4");
    expect(addressBucket("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
    for (const junk of [
      undefined,
      null,
      "",
      "  ",
      "localhost",
      "1.2.3",
      "1.2.3.256",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      "x".repeat(100),
      "2001:db8::g",
    ])
      expect(addressBucket(junk)).toBe(SHARED_ADDRESS_BUCKET);
  });

  it("count requests without the header, together, instead of skipping them", async () => {
    const vars = { LOGINS_PER_IP_PER_MINUTE: "3" };
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await login(null, vars)).status);
    expect(statuses.filter((status) => status === 401).length).toBeLessThanOrEqual(3);
    expect(statuses.at(-1)).toBe(429);
    // Junk in the header, different every time, lands in the same bucket.
    for (let i = 0; i < 3; i++) expect((await login(`not-an-address-${i}`, vars)).status).toBe(429);
  });

  it("share one bucket across an IPv6 /64 and not across /64s", async () => {
    const vars = { LOGINS_PER_IP_PER_MINUTE: "4" };
    const prefix = `2001:db8:${randomHex()}:${randomHex()}`;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++)
      statuses.push((await login(`${prefix}:${randomHex()}::${i + 1}`, vars)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
    const neighbour = `2001:db8:${randomHex()}:${randomHex()}::1`;
    expect((await login(neighbour, vars)).status).toBe(401);
  });
});
