// The bearer-token middleware: every route behind it knows, from c.var.user, who is calling.

import { createMiddleware } from "hono/factory";
import { homeStub } from "../durable-objects/names.js";
import type { AppEnv } from "./env.js";
import { ApiError } from "./errors.js";
import { parseToken, sha256Hex } from "./tokens.js";

export const requireSession = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header("Authorization") ?? "";
  const match = /^Bearer (\S+)$/.exec(header);
  if (!match) throw new ApiError("unauthorized", "missing bearer token: log in first");
  const token = parseToken(match[1]!);
  if (!token) throw new ApiError("unauthorized", "malformed session token");
  const check = await homeStub(c.env, token.username).authenticate(
    token.sessionId,
    await sha256Hex(token.secret),
  );
  if (!check.ok) {
    throw new ApiError(
      "unauthorized",
      check.reason === "expired"
        ? "session expired: log in again"
        : "session revoked or unknown: log in again",
    );
  }
  c.set("user", token.username);
  c.set("sessionId", token.sessionId);
  c.set("expiresAt", check.expiresAt);
  await next();
});
