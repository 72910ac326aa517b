// Which region a connect is balanced in (worker/placement.ts): the platform's location, mapped to the
// Durable Object location hint nearest to it, or "any" when the platform gives none.

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { balancerFor, regionOf, regionOfLocation } from "../../worker/placement.js";

describe("regionOfLocation", () => {
  it("maps the platform's continent (and, where a continent has two hints, longitude or country) to a hint", () => {
    expect(regionOfLocation({ continent: "NA", longitude: "-122.4" })).toBe("wnam");
    expect(regionOfLocation({ continent: "NA", longitude: "-73.9" })).toBe("enam");
    expect(regionOfLocation({ continent: "NA" })).toBe("enam");
    expect(regionOfLocation({ continent: "SA", longitude: "-46.6" })).toBe("sam");
    expect(regionOfLocation({ continent: "EU", longitude: "2.35" })).toBe("weur");
    expect(regionOfLocation({ continent: "EU", longitude: "37.6" })).toBe("eeur");
    expect(regionOfLocation({ continent: "AS", country: "AE" })).toBe("me");
    expect(regionOfLocation({ continent: "AS", country: "JP" })).toBe("apac");
    expect(regionOfLocation({ continent: "OC" })).toBe("oc");
    expect(regionOfLocation({ continent: "AF" })).toBe("afr");
    expect(regionOfLocation({ continent: "AN" })).toBe("any");
    expect(regionOfLocation(undefined)).toBe("any");
  });

  it("lets a request name its region only when the deployment says so, and only as a known region", () => {
    const named = (region: string) =>
      new Request("http://telepound.test/v1/connect", { headers: { "X-Telepound-Test-Location": region } });
    expect(regionOf(named("weur"), env)).toBe("any");
    const testing = { ...env, TEST_LOCATION_HEADER: "1" } as Env;
    expect(regionOf(named("weur"), testing)).toBe("weur");
    expect(regionOf(named("../etc"), testing)).toBe("any");
  });

  it("keeps a user on one balancer of a region, and spreads users over the slices", () => {
    const sliced = { ...env, BALANCER_SLICES: "4" } as Env;
    const request = new Request("http://telepound.test/v1/connect");
    const names = Array.from({ length: 64 }, (_, i) => `user${i}`);
    const balancers = names.map((name) => balancerFor(request, sliced, name));
    expect(names.map((name) => balancerFor(request, sliced, name))).toEqual(balancers);
    expect(new Set(balancers)).toEqual(new Set([0, 1, 2, 3].map((slice) => `balancer:any:${slice}`)));
  });
});
