// The bearer-token middleware: every route behind it knows, from c.var.user, who is calling. /v1/connect
// does not use it: the shard has the user's home check the session while attaching the socket.

import { createMiddleware } from "hono/factory";
import { nameExists } from "../durable-objects/known-names.js";
import { homeStub } from "../durable-objects/names.js";
import type { AppEnv } from "./env.js";
import { ApiError } from "./errors.js";
import { parseToken, sha256Hex } from "./tokens.js";

export const requireSession = createMiddleware<AppEnv>(async (c, next) => {
  const token = await bearerToken(c.req.header("Authorization"));
  // A token naming no account is refused without waking (and so creating) a home for that name.
  if (!(await nameExists(c.env, "user", token.username))) throw sessionRefused("unknown");
  const check = await homeStub(c.env, token.username).authenticate(token.sessionId, token.secretHash);
  if (!check.ok) throw sessionRefused(check.reason);
  c.set("user", token.username);
  c.set("sessionId", token.sessionId);
  c.set("expiresAt", check.expiresAt);
  await next();
});

/**
 * The token of an `Authorization: Bearer …` header, parsed, with the hash of its secret (what homes
 * store); 401 when there is none or it is malformed. Checking it is the user's home's job.
 */
export async function bearerToken(
  header: string | undefined,
): Promise<{ username: string; sessionId: string; secretHash: string }> {
  const match = /^Bearer (\S+)$/.exec(header ?? "");
  if (!match) throw new ApiError("unauthorized", "missing bearer token: log in first");
  const token = parseToken(match[1]!);
  if (!token) throw new ApiError("unauthorized", "malformed session token");
  return { username: token.username, sessionId: token.sessionId, secretHash: await sha256Hex(token.secret) };
}

/**
 * The 401 for a session the user's home refused. One ended by someone else's action says which, as
 * `session_ended`, so its device can tell its user why it must log in again.
 */
export function sessionRefused(reason: string): ApiError {
  switch (reason) {
    case "expired":
      return new ApiError("unauthorized", "session expired: log in again");
    case "session_cap":
      return new ApiError(
        "session_ended",
        "this session was ended: a login on another device reached the account's limit of sessions, and this one had been idle longest: log in again",
      );
    case "revoked":
      return new ApiError(
        "session_ended",
        "this session was revoked from another of your devices (telepound devices revoke): log in again",
      );
    default:
      return new ApiError("unauthorized", "session revoked or unknown: log in again");
  }
}
