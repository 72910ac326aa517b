// Groups (the seed's createGroup / modifyGroup / leaveGroup / groupExist, and the consent steps invite,
// join and decline): every change is a statement signed by its sender; every rule is enforced by the
// group's room (durable-objects/group/membership.ts), these routes only authenticate, rate-limit, decode
// and translate.

import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { decodeBase64, encodeBase64 } from "hono/utils/encode";
import type { SignedStatement } from "../../durable-objects/group/membership.js";
import { nameExists, registerName } from "../../durable-objects/known-names.js";
import { groupStub, homeStub } from "../../durable-objects/names.js";
import type { GroupResult } from "../../durable-objects/contracts.js";
import { FormatError } from "../../protocol/bytes.js";
import {
  type GroupStatement,
  type StatementActionName,
  decodeStatement,
} from "../../protocol/group-statement.js";
import {
  CreateGroupRequest,
  type GroupEpochResponse,
  type GroupListResponse,
  type NextEpochResponse,
  SignedStatementRequest,
  groupName,
  username,
} from "../../protocol/http.js";
import { requireSession } from "../auth.js";
import type { AppEnv } from "../env.js";
import { ApiError } from "../errors.js";
import { GROUP_ADDS, GROUP_CREATES, UNKNOWN_NAMES, charge, refund } from "../rate-limit.js";
import { parseJson } from "../validate.js";

export const groups = new Hono<AppEnv>();
groups.use("/groups", requireSession);
groups.use("/groups/*", requireSession);

/**
 * Every route naming a group checks that it exists before its room is woken (a woken room is a stored
 * database): an unknown group is a 404 here, counted against the user's UNKNOWN_NAMES budget. The epoch
 * a new group starts at is the one answer for a name nobody has made.
 */
const GROUP_NAME_RULE = "group names are 3–32 of a-z 0-9 _ -";
const requireExistingGroup = createMiddleware<AppEnv>(async (c, next) => {
  const name = parse(groupName, c.req.param("name") ?? "", GROUP_NAME_RULE);
  if (await nameExists(c.env, "group", name)) return next();
  if (c.req.method === "GET" && c.req.path.endsWith("/next-epoch"))
    return c.json({ name, epoch: 1 } satisfies NextEpochResponse);
  await charge(c, UNKNOWN_NAMES);
  throw new ApiError("not_found", "no such group");
});
groups.use("/groups/:name", requireExistingGroup);
groups.use("/groups/:name/*", requireExistingGroup);

groups.get("/groups", async (c) => {
  return c.json((await homeStub(c.env, c.var.user).groupList()) satisfies GroupListResponse);
});

groups.post("/groups", async (c) => {
  const body = await parseJson(c, CreateGroupRequest);
  const signed = signedStatement(body, "create", c.var.user);
  const invited = body.invited ?? [];
  // Everyone the create names but its creator is added or invited by them.
  const added = new Set([...body.members, ...invited].filter((name) => name !== c.var.user)).size;
  await charge(c, GROUP_CREATES);
  try {
    await charge(c, GROUP_ADDS, added);
  } catch (error) {
    await refund(c, GROUP_CREATES);
    throw error;
  }
  // Registered before the room is made, so no reader misses a group that exists.
  await registerName(c.env, "group", signed.statement.group);
  const result = await groupStub(c.env, signed.statement.group).applyStatement(c.var.user, signed, {
    members: body.members,
    invited,
  });
  if (!result.ok && result.code === "consent_required") {
    // Not made: the client signs the create again with those users invited, and that one counts.
    await Promise.all([refund(c, GROUP_CREATES), refund(c, GROUP_ADDS, added)]);
  }
  return c.json(unwrap(result).info, 201);
});

groups.get("/groups/:name", async (c) => {
  const name = parse(groupName, c.req.param("name"), "group names are 3–32 of a-z 0-9 _ -");
  return c.json(unwrap(await groupStub(c.env, name).info(c.var.user)).info);
});

groups.get("/groups/:name/next-epoch", async (c) => {
  const name = parse(groupName, c.req.param("name"), "group names are 3–32 of a-z 0-9 _ -");
  return c.json({ name, epoch: await groupStub(c.env, name).nextEpoch() } satisfies NextEpochResponse);
});

groups.get("/groups/:name/epochs/:epoch", async (c) => {
  const name = parse(groupName, c.req.param("name"), "group names are 3–32 of a-z 0-9 _ -");
  const epoch = Number(c.req.param("epoch"));
  if (!Number.isSafeInteger(epoch) || epoch < 1)
    throw new ApiError("bad_request", "epochs are positive integers");
  const { record } = unwrap(await groupStub(c.env, name).epochRecord(c.var.user, epoch));
  return c.json({
    name,
    epoch,
    members: record.members,
    invited: record.invited,
    statement: record.statement ? encodeBase64(record.statement.slice().buffer) : "",
    signature: record.signature ? encodeBase64(record.signature.slice().buffer) : "",
  } satisfies GroupEpochResponse);
});

groups.post("/groups/:name/members", async (c) => {
  const name = parse(groupName, c.req.param("name"), "group names are 3–32 of a-z 0-9 _ -");
  const signed = signedStatement(await parseJson(c, SignedStatementRequest), "add", c.var.user, name);
  await charge(c, GROUP_ADDS);
  const result = await groupStub(c.env, name).applyStatement(c.var.user, signed);
  // Not added: the client invites them instead, and that counts.
  if (!result.ok && result.code === "consent_required") await refund(c, GROUP_ADDS);
  return c.json(unwrap(result).info);
});

groups.post("/groups/:name/invitations", async (c) => {
  const name = parse(groupName, c.req.param("name"), "group names are 3–32 of a-z 0-9 _ -");
  const signed = signedStatement(await parseJson(c, SignedStatementRequest), "invite", c.var.user, name);
  await charge(c, GROUP_ADDS);
  return c.json(unwrap(await groupStub(c.env, name).applyStatement(c.var.user, signed)).info);
});

groups.post("/groups/:name/join", async (c) => {
  const name = parse(groupName, c.req.param("name"), "group names are 3–32 of a-z 0-9 _ -");
  const signed = signedStatement(await parseJson(c, SignedStatementRequest), "join", c.var.user, name);
  return c.json(unwrap(await groupStub(c.env, name).applyStatement(c.var.user, signed)).info);
});

groups.post("/groups/:name/decline", async (c) => {
  const name = parse(groupName, c.req.param("name"), "group names are 3–32 of a-z 0-9 _ -");
  const signed = signedStatement(await parseJson(c, SignedStatementRequest), "decline", c.var.user, name);
  unwrap(await groupStub(c.env, name).applyStatement(c.var.user, signed));
  return c.body(null, 204);
});

groups.delete("/groups/:name/members/:username", async (c) => {
  const name = parse(groupName, c.req.param("name"), "group names are 3–32 of a-z 0-9 _ -");
  const member = parse(username, c.req.param("username"), "usernames are 3–32 of a-z 0-9 _ -");
  const signed = signedStatement(await parseJson(c, SignedStatementRequest), "remove", c.var.user, name);
  if (signed.statement.user !== member)
    throw new ApiError("bad_request", `the statement removes ${signed.statement.user}, not ${member}`);
  return c.json(unwrap(await groupStub(c.env, name).applyStatement(c.var.user, signed)).info);
});

groups.post("/groups/:name/leave", async (c) => {
  const name = parse(groupName, c.req.param("name"), "group names are 3–32 of a-z 0-9 _ -");
  const signed = signedStatement(await parseJson(c, SignedStatementRequest), "leave", c.var.user, name);
  unwrap(await groupStub(c.env, name).applyStatement(c.var.user, signed));
  return c.body(null, 204);
});

/**
 * Decodes a request's statement and checks what the route implies: its action, its group (the route's
 * name), and that it is signed by the session's user. The signature and every rule are the room's.
 */
function signedStatement(
  body: { statement: string; signature: string },
  action: StatementActionName,
  requester: string,
  group?: string,
): SignedStatement {
  let statement: GroupStatement;
  try {
    statement = decodeStatement(decodeBase64(body.statement));
  } catch (error) {
    if (error instanceof FormatError) throw new ApiError("bad_request", `bad statement: ${error.message}`);
    throw error;
  }
  if (statement.action !== action)
    throw new ApiError("bad_request", `this route takes a ${action} statement, not ${statement.action}`);
  if (group !== undefined && statement.group !== group)
    throw new ApiError("bad_request", `the statement is for the group ${statement.group}, not ${group}`);
  if (statement.by !== requester)
    throw new ApiError("forbidden", "a membership statement must be signed by you, its sender");
  return { bytes: decodeBase64(body.statement), signature: decodeBase64(body.signature), statement };
}

/** A room's refusal becomes the matching HTTP error; success passes through. */
function unwrap<R extends GroupResult<object>>(result: R): Extract<R, { ok: true }> {
  if (!result.ok) {
    const refusal = result as Extract<GroupResult<object>, { ok: false }>;
    throw new ApiError(refusal.code, refusal.message, {}, refusal.users ? { users: refusal.users } : {});
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
