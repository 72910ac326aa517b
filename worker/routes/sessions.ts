// A user's sessions as devices: list them (GET /v1/sessions) and end one from another (DELETE
// /v1/sessions/:id), with the same effect as that device's own logout. Only the caller's own account.

import { Hono } from "hono";
import { homeStub } from "../../durable-objects/names.js";
import { SESSION_ID_PATTERN, type SessionListResponse } from "../../protocol/http.js";
import { requireSession } from "../auth.js";
import type { AppEnv } from "../env.js";
import { ApiError } from "../errors.js";
import { CLOSE_REASONS, closeSessionSockets } from "../session-sockets.js";

export const sessions = new Hono<AppEnv>();

sessions.get("/sessions", requireSession, async (c) => {
  const listed = await homeStub(c.env, c.var.user).listSessions();
  return c.json({
    sessions: listed.map((session) => ({ ...session, current: session.id === c.var.sessionId })),
  } satisfies SessionListResponse);
});

sessions.delete("/sessions/:id", requireSession, async (c) => {
  const id = c.req.param("id");
  if (!SESSION_ID_PATTERN.test(id)) throw new ApiError("bad_request", "a session id is 32 hex digits");
  // The caller's home holds only the caller's sessions: another user's id is simply not found there.
  const shards = await homeStub(c.env, c.var.user).revokeSession(id);
  if (!shards) throw new ApiError("not_found", `no session ${id} on this account`);
  await closeSessionSockets(c.env, c.var.user, id, shards, CLOSE_REASONS.revoked);
  return c.body(null, 204);
});
