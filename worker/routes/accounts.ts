// Accounts (the seed's attemptSignup / attemptLogin): signup, login, logout, whoami. Passwords never arrive
// here: only a key derived from one, which is hashed at once. KDF parameters neither: the client derives them.

import { Hono } from "hono";
import { decodeBase64 } from "hono/utils/encode";
import { nameExists, registerName } from "../../durable-objects/known-names.js";
import { homeStub } from "../../durable-objects/names.js";
import {
  LoginRequest,
  PROTOCOL_1_KDF,
  SignupRequest,
  type SessionResponse,
  type WhoamiResponse,
  username,
} from "../../protocol/http.js";
import { requireSession } from "../auth.js";
import type { AppEnv } from "../env.js";
import { ApiError } from "../errors.js";
import { assertUsablePublicKeys } from "../public-keys.js";
import { issueSession, sha256Hex } from "../tokens.js";
import { addressBucket } from "../client-address.js";
import { byClientAddress, rateLimit } from "../rate-limit.js";
import { CLOSE_REASONS, closeSessionSockets } from "../session-sockets.js";
import { parseJson } from "../validate.js";

export const accounts = new Hono<AppEnv>();

accounts.post(
  "/signup",
  rateLimit({ name: "SIGNUPS_PER_IP_PER_HOUR", windowMs: 3_600_000, key: byClientAddress }),
  async (c) => {
    const body = await parseJson(c, SignupRequest);
    await assertUsablePublicKeys(body.publicKeys);
    const session = await issueSession(body.username);
    // Registered first, so no reader can miss an account that exists; a lost race registers it twice.
    await registerName(c.env, "user", body.username);
    const created = await homeStub(c.env, body.username).signup(
      {
        username: body.username,
        authKeyHash: await sha256Hex(decodeBase64(body.authKey)),
        publicKeys: body.publicKeys,
        sealedPrivateKeys: body.sealedPrivateKeys,
      },
      {
        id: session.id,
        secretHash: session.secretHash,
        expiresAt: session.expiresAt,
        deviceName: body.deviceName ?? null,
      },
      await loginAddress(c.req.header("CF-Connecting-IP")),
    );
    if (!created.ok) throw new ApiError("conflict", `the username ${body.username} is taken`);
    const response: SessionResponse = {
      username: body.username,
      token: session.token,
      sessionId: session.id,
      expiresAt: session.expiresAt,
      publicKeys: body.publicKeys,
      sealedPrivateKeys: body.sealedPrivateKeys,
    };
    return c.json(response, 201);
  },
);

// Protocol 1 clients asked here for the salt and cost before login. Gone, so no server can steer the KDF
// and no stranger can probe it; 410 with the reason, since a 404 would read as "no such user" to them.
accounts.get("/kdf/*", () => {
  throw new ApiError("gone", PROTOCOL_1_KDF);
});

accounts.post(
  "/login",
  rateLimit({ name: "LOGINS_PER_IP_PER_MINUTE", windowMs: 60_000, key: byClientAddress }),
  async (c) => {
    const body = await parseJson(c, LoginRequest);
    // No account: the same answer as a wrong password, and no home is woken (or made) for the name.
    const registered = await nameExists(c.env, "user", body.username);
    if (!registered && c.env.REGISTER_ACCOUNTS_ON_LOGIN !== "1")
      throw new ApiError("unauthorized", "wrong username or password");
    const session = await issueSession(body.username);
    const result = await homeStub(c.env, body.username).login(
      await sha256Hex(decodeBase64(body.authKey)),
      {
        id: session.id,
        secretHash: session.secretHash,
        expiresAt: session.expiresAt,
        deviceName: body.deviceName ?? null,
      },
      {
        address: await loginAddress(c.req.header("CF-Connecting-IP")),
        failuresPerUserPerHour: loginFailuresPerUserPerHour(c.env),
      },
    );
    if (!result.ok) {
      if (result.reason === "rate_limited") {
        const seconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
        const from = result.scope === "address" ? " from your address" : "";
        throw new ApiError(
          "rate_limited",
          `too many failed logins for ${body.username}${from}: try again in ${seconds} s`,
          { "Retry-After": String(seconds) },
        );
      }
      // One answer for "no such user" and "wrong password", so login does not confirm which it was.
      throw new ApiError("unauthorized", "wrong username or password");
    }
    if (!registered) await registerAccountMadeBeforeDirectory(c.env, result.username);
    const response: SessionResponse = {
      username: result.username,
      token: session.token,
      sessionId: session.id,
      expiresAt: session.expiresAt,
      publicKeys: result.publicKeys,
      sealedPrivateKeys: result.sealedPrivateKeys,
      endedSessions: result.endedSessions.map(({ id, deviceName, createdAt, lastSeenAt }) => ({
        id,
        deviceName,
        createdAt,
        lastSeenAt,
      })),
    };
    // The home has ended them (queues, rooms); their sockets are on the shards.
    await Promise.all(
      result.endedSessions.map((ended) =>
        closeSessionSockets(c.env, result.username, ended.id, ended.shards, CLOSE_REASONS.sessionCap),
      ),
    );
    return c.json(response);
  },
);

accounts.post("/logout", requireSession, async (c) => {
  const shards = await homeStub(c.env, c.var.user).logout(c.var.sessionId);
  await closeSessionSockets(c.env, c.var.user, c.var.sessionId, shards, CLOSE_REASONS.logout);
  return c.body(null, 204);
});

accounts.get("/whoami", requireSession, async (c) => {
  return c.json({
    username: c.var.user,
    sessionId: c.var.sessionId,
    expiresAt: c.var.expiresAt,
  } satisfies WhoamiResponse);
});

/**
 * An account made before the name directory existed (REGISTER_ACCOUNTS_ON_LOGIN, README), found by its
 * first login: it and its groups are registered, so every other route reaches them from now on.
 */
async function registerAccountMadeBeforeDirectory(env: Env, name: string): Promise<void> {
  await registerName(env, "user", name);
  const groups = await homeStub(env, name).groupNames();
  await Promise.all(groups.map((group) => registerName(env, "group", group)));
}

/** Default of LOGIN_FAILURES_PER_USER_PER_HOUR when the setting is missing or not a positive number. */
const DEFAULT_LOGIN_FAILURES_PER_USER_PER_HOUR = 100;

function loginFailuresPerUserPerHour(env: Env): number {
  const limit = Number(env.LOGIN_FAILURES_PER_USER_PER_HOUR);
  return Number.isFinite(limit) && limit > 0 ? limit : DEFAULT_LOGIN_FAILURES_PER_USER_PER_HOUR;
}

/**
 * What a home keeps of a login's client address: a digest of its rate-limit bucket (IPv6 by /64), so a
 * home's state never lists where its user has been.
 */
async function loginAddress(header: string | undefined): Promise<string> {
  return sha256Hex(`telepound/v1/login-address\0${addressBucket(header)}`);
}

export function parseName(raw: string): string {
  const parsed = username.safeParse(raw);
  if (!parsed.success) throw new ApiError("bad_request", "usernames are 3–32 of a-z 0-9 _ -");
  return parsed.data;
}
