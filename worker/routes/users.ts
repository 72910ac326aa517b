// User lookup (the seed's userExist): any logged-in user may learn whether a name exists and fetch its
// public keys. Clients pin what they get the first time and warn if it ever changes.

import { Hono } from "hono";
import { existingNames, nameExists } from "../../durable-objects/known-names.js";
import { homeStub } from "../../durable-objects/names.js";
import { LookupUsersRequest, type LookupUsersResponse, type UserResponse } from "../../protocol/http.js";
import { parseJson } from "../validate.js";
import { requireSession } from "../auth.js";
import { UNKNOWN_NAMES, byUser, charge, rateLimit } from "../rate-limit.js";
import type { AppEnv } from "../env.js";
import { ApiError } from "../errors.js";
import { parseName } from "./accounts.js";

export const users = new Hono<AppEnv>();
const lookupLimit = rateLimit({ name: "LOOKUPS_PER_USER_PER_MINUTE", windowMs: 60_000, key: byUser });

/** Many users' keys in one call: a sender to a 1000-member group should not make 1000 requests. */
users.post("/users/lookup", requireSession, lookupLimit, async (c) => {
  const { usernames } = await parseJson(c, LookupUsersRequest);
  const unique = [...new Set(usernames)];
  // Only names with an account reach a home: asking about invented names stores nothing.
  const existing = await existingNames(c.env, "user", unique);
  if (existing.size < unique.length) await charge(c, UNKNOWN_NAMES);
  const profiles = await Promise.all(
    unique.map((name) => (existing.has(name) ? homeStub(c.env, name).profile() : null)),
  );
  const response: LookupUsersResponse = {
    users: profiles.filter((profile) => profile !== null),
    missing: unique.filter((_, i) => profiles[i] === null),
  };
  return c.json(response);
});

users.get("/users/:username", requireSession, lookupLimit, async (c) => {
  const name = parseName(c.req.param("username"));
  if (!(await nameExists(c.env, "user", name))) {
    await charge(c, UNKNOWN_NAMES);
    throw new ApiError("not_found", `no such user: ${name}`);
  }
  const profile = await homeStub(c.env, name).profile();
  if (!profile) throw new ApiError("not_found", `no such user: ${name}`);
  return c.json(profile satisfies UserResponse);
});
