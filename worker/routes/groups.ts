// Groups (the seed's createGroup / modifyGroup / leaveGroup / groupExist): every rule is enforced by the
// group's room (durable-objects/group/membership.ts); these routes only authenticate and translate.

import { Hono } from "hono";
import { groupStub, homeStub } from "../../durable-objects/names.js";
import type { GroupResult } from "../../durable-objects/group-room.js";
import {
  AddMemberRequest,
  CreateGroupRequest,
  type GroupEpochResponse,
  type GroupListResponse,
  groupName,
  username,
} from "../../protocol/http.js";
import { requireSession } from "../auth.js";
import type { AppEnv } from "../env.js";
import { ApiError } from "../errors.js";
import { parseJson } from "../validate.js";

export const groups = new Hono<AppEnv>();
groups.use("/groups", requireSession);
groups.use("/groups/*", requireSession);

groups.get("/groups", async (c) => {
  return c.json({ groups: await homeStub(c.env, c.var.user).groupNames() } satisfies GroupListResponse);
});

groups.post("/groups", async (c) => {
  const body = await parseJson(c, CreateGroupRequest);
  const result = unwrap(await groupStub(c.env, body.name).create(body.name, c.var.user, body.members));
  return c.json(result.info, 201);
});

groups.get("/groups/:name", async (c) => {
  const name = parse(groupName, c.req.param("name"), "group names are 3–32 of a-z 0-9 _ -");
  return c.json(unwrap(await groupStub(c.env, name).info(c.var.user)).info);
});

groups.get("/groups/:name/epochs/:epoch", async (c) => {
  const name = parse(groupName, c.req.param("name"), "group names are 3–32 of a-z 0-9 _ -");
  const epoch = Number(c.req.param("epoch"));
  if (!Number.isSafeInteger(epoch) || epoch < 1)
    throw new ApiError("bad_request", "epochs are positive integers");
  const result = unwrap(await groupStub(c.env, name).membersAt(c.var.user, epoch));
  return c.json({ name, epoch, members: result.members } satisfies GroupEpochResponse);
});

groups.post("/groups/:name/members", async (c) => {
  const name = parse(groupName, c.req.param("name"), "group names are 3–32 of a-z 0-9 _ -");
  const body = await parseJson(c, AddMemberRequest);
  return c.json(unwrap(await groupStub(c.env, name).add(c.var.user, body.username)).info);
});

groups.delete("/groups/:name/members/:username", async (c) => {
  const name = parse(groupName, c.req.param("name"), "group names are 3–32 of a-z 0-9 _ -");
  const member = parse(username, c.req.param("username"), "usernames are 3–32 of a-z 0-9 _ -");
  return c.json(unwrap(await groupStub(c.env, name).remove(c.var.user, member)).info);
});

groups.post("/groups/:name/leave", async (c) => {
  const name = parse(groupName, c.req.param("name"), "group names are 3–32 of a-z 0-9 _ -");
  unwrap(await groupStub(c.env, name).leave(c.var.user));
  return c.body(null, 204);
});

/** A room's refusal becomes the matching HTTP error; success passes through. */
function unwrap<R extends GroupResult<object>>(result: R): Extract<R, { ok: true }> {
  if (!result.ok) {
    const refusal = result as Extract<GroupResult<object>, { ok: false }>;
    throw new ApiError(refusal.code, refusal.message);
  }
  return result as Extract<R, { ok: true }>;
}

function parse<T>(
  schema: { safeParse(value: unknown): { success: true; data: T } | { success: false } },
  raw: string,
  message: string,
): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new ApiError("bad_request", message);
  return parsed.data;
}
