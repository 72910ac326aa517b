// The Hono app: the HTTP API and the WebSocket entry, all under /v1. Errors from any route come out
// through one handler as { "error": { "code", "message" } }.

import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { HealthResponse } from "../protocol/http.js";
import { PROTOCOL_VERSION } from "../protocol/version.js";
import type { AppEnv } from "./env.js";
import { ApiError, handleError, handleNotFound } from "./errors.js";
import { accounts } from "./routes/accounts.js";
import { blobs } from "./routes/blobs.js";
import { connect } from "./routes/connect.js";
import { groups } from "./routes/groups.js";
import { sessions } from "./routes/sessions.js";
import { users } from "./routes/users.js";
import { shardPolicy } from "./shard-policy.js";

/** Largest JSON body accepted: a signup is about 3 KiB, a 1024-name group or lookup about 40 KiB. */
const MAX_BODY_BYTES = 64 * 1024;

export const app = new Hono<AppEnv>();

const jsonBodyLimit = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new ApiError("too_large", `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
  },
});
// File parts are the one body that is not JSON; their size is checked exactly by their own route.
app.use("/v1/*", (c, next) =>
  /^\/v1\/blobs\/[^/]+\/parts\//.test(c.req.path) ? next() : jsonBodyLimit(c, next),
);
// Also how a client learns, before it signs up or logs in, which protocol this server speaks.
app.get("/v1/health", (c) =>
  c.json({ ok: true, protocol: PROTOCOL_VERSION, shards: shardPolicy(c.env).max } satisfies HealthResponse),
);
app.route("/v1", accounts);
app.route("/v1", sessions);
app.route("/v1", users);
app.route("/v1", connect);
app.route("/v1", groups);
app.route("/v1", blobs);
app.onError(handleError);
app.notFound(handleNotFound);
