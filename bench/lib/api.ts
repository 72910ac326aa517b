// The benchmark's HTTP calls (protocol/http.ts routes): signup, user lookup, groups, stats and blobs,
// plus the Target both the system and the bare relay are reached through.
//
// Any answer other than the expected status throws with the server's error body: a refused call (e.g.
// rate_limited) must fail the run, never be skipped.

import { compareNames, membersDigest } from "../../protocol/envelope.js";
import { GENESIS_PREV, encodeStatement } from "../../protocol/group-statement.js";
import type {
  CreateBlobResponse,
  GroupInfo,
  LookupUsersResponse,
  NextEpochResponse,
  SessionResponse,
  UserResponse,
} from "../../protocol/http.js";
import { MAX_RECIPIENTS } from "../../protocol/limits.js";
import { signStatement, toBase64 } from "../../client/crypto/index.js";
import { BenchClient, FailureWatch } from "./client.js";
import { type SharedIdentity, Sender } from "./identity.js";
import { OPERATOR_HEADERS } from "../../test/support/operator-token.js";

/**
 * Where scenario traffic goes: Telepound under wrangler dev, the engine floor (bench/workerd-floor/) under
 * wrangler dev too, or the bare relay.
 */
export interface Target {
  name: "telepound" | "floor" | "durable-floor" | "group-floor" | "relay";
  origin: string;
  /** The bearer token for `user` (the floor and the relay take the username from its first field). */
  token(user: string): string;
}

/**
 * Requests wrangler's dev proxy answered with 503 "Your worker restarted mid-request" (it does so when it
 * briefly pauses forwarding, with Retry-After: 0) and that were sent again. Not Telepound's doing, but
 * counted and reported, never hidden.
 */
export const proxyRetries: string[] = [];
const PROXY_RESTART = "restarted mid-request";

async function call<T>(
  origin: string,
  path: string,
  init: RequestInit & { token?: string },
  expected: number,
): Promise<T> {
  const headers = new Headers(init.headers);
  if (init.token) headers.set("Authorization", `Bearer ${init.token}`);
  if (typeof init.body === "string") headers.set("Content-Type", "application/json");
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(`${origin}${path}`, { ...init, headers });
    if (response.status === expected) return (expected === 204 ? undefined : await response.json()) as T;
    const text = await response.text();
    if (response.status === 503 && text.includes(PROXY_RESTART) && attempt < 3) {
      proxyRetries.push(`${init.method ?? "GET"} ${path}`);
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
      continue;
    }
    throw new Error(`${init.method ?? "GET"} ${path}: HTTP ${response.status} ${text}`);
  }
}

export function signup(origin: string, shared: SharedIdentity, username: string): Promise<SessionResponse> {
  const body = JSON.stringify({ username, ...shared.signupTemplate });
  return call(origin, "/v1/signup", { method: "POST", body }, 201);
}

/** A user to make a member: their name, and the token they write to the group's creator with. */
export interface Joiner {
  username: string;
  token: string;
}

/** Direct messages to the same user at once while writeTo() gives consent: a connect each. */
const CONSENT_CONCURRENCY = 16;

/**
 * Each of `writers` sends `to` one sealed direct message from a send-only socket, as a user does before
 * they may be added to `to`'s groups (protocol 3 consent: the server adds only users who have written to
 * the admin). Any refusal fails the call.
 */
export async function writeTo(
  origin: string,
  shared: SharedIdentity,
  to: string,
  writers: readonly Joiner[],
): Promise<void> {
  const watch = new FailureWatch(`consent for ${to}`);
  await mapLimit(writers, CONSENT_CONCURRENCY, async (writer) => {
    const client = await BenchClient.open({ origin, token: writer.token, receive: false, watch });
    try {
      const { frame, id } = await new Sender(shared, writer.username).direct(
        to,
        `hello from ${writer.username}`,
      );
      await watch.race(client.upload(frame, id), 30_000, `${writer.username}'s message to ${to}`);
    } finally {
      await client.close();
    }
  });
}

/**
 * Creates `name` as `creator` with `members` besides them: each member first writes to the creator (so
 * may be added), then a create statement for the room's next epoch, signed with the shared identity's key
 * (every bench user has it), as the CLI signs it.
 */
export async function createGroup(
  origin: string,
  token: string,
  shared: SharedIdentity,
  creator: string,
  name: string,
  members: readonly Joiner[],
): Promise<GroupInfo> {
  await writeTo(
    origin,
    shared,
    creator,
    members.filter((member) => member.username !== creator),
  );
  const { epoch } = await call<NextEpochResponse>(origin, `/v1/groups/${name}/next-epoch`, { token }, 200);
  const everyone = [...new Set([creator, ...members.map((member) => member.username)])].sort(compareNames);
  const statement = encodeStatement({
    action: "create",
    group: name,
    epoch,
    prev: GENESIS_PREV,
    at: Date.now(),
    by: creator,
    user: creator,
    admin: creator,
    membersDigest: membersDigest(everyone),
    invitedDigest: membersDigest([]),
  });
  const signature = await signStatement(shared.identity.signing.privateKey, statement);
  const body = JSON.stringify({
    statement: toBase64(statement),
    signature: toBase64(signature),
    members: everyone,
  });
  return call(origin, "/v1/groups", { method: "POST", token, body }, 201);
}

/** Public keys of `usernames`, in batches the server accepts; every name must exist. */
export async function lookupUsers(
  origin: string,
  token: string,
  usernames: string[],
): Promise<UserResponse[]> {
  const users: UserResponse[] = [];
  for (let i = 0; i < usernames.length; i += MAX_RECIPIENTS) {
    const batch = usernames.slice(i, i + MAX_RECIPIENTS);
    const answer = await call<LookupUsersResponse>(
      origin,
      "/v1/users/lookup",
      { method: "POST", token, body: JSON.stringify({ usernames: batch }) },
      200,
    );
    if (answer.missing.length > 0) throw new Error(`lookup: no such users: ${answer.missing.join(", ")}`);
    users.push(...answer.users);
  }
  return users;
}

export function shardStats(origin: string): Promise<{ shards: number; connections: Record<string, number> }> {
  return call(origin, "/v1/stats", { headers: OPERATOR_HEADERS }, 200);
}

export async function totalConnections(origin: string): Promise<number> {
  const stats = await shardStats(origin);
  return Object.values(stats.connections).reduce((sum, n) => sum + n, 0);
}

/** Waits until the balancer has heard every shard report zero sockets (closes are reported async). */
export async function waitForNoConnections(origin: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const total = await totalConnections(origin);
    if (total === 0) return;
    if (Date.now() > deadline) throw new Error(`still ${total} connections after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export function createBlob(
  origin: string,
  token: string,
  to: string,
  size: number,
): Promise<CreateBlobResponse> {
  return call(origin, "/v1/blobs", { method: "POST", token, body: JSON.stringify({ to, size }) }, 201);
}

export function putBlobPart(
  origin: string,
  token: string,
  id: string,
  part: number,
  bytes: Uint8Array,
): Promise<void> {
  return call(
    origin,
    `/v1/blobs/${id}/parts/${part}`,
    {
      method: "PUT",
      token,
      body: bytes as Uint8Array<ArrayBuffer>,
      headers: { "Content-Type": "application/octet-stream" },
    },
    204,
  );
}

export function completeBlob(origin: string, token: string, id: string): Promise<void> {
  return call(origin, `/v1/blobs/${id}/complete`, { method: "POST", token }, 204);
}

/** The blob's body as a stream of byte chunks, as they arrive. */
export async function fetchBlob(
  origin: string,
  token: string,
  id: string,
): Promise<ReadableStream<Uint8Array>> {
  const response = await fetch(`${origin}/v1/blobs/${id}`, { headers: { Authorization: `Bearer ${token}` } });
  if (response.status !== 200 || !response.body) {
    throw new Error(`GET /v1/blobs/${id}: HTTP ${response.status} ${await response.text()}`);
  }
  return response.body;
}

export function deleteBlob(origin: string, token: string, id: string): Promise<void> {
  return call(origin, `/v1/blobs/${id}`, { method: "DELETE", token }, 204);
}

/** Runs `work` over `items` with at most `limit` in flight; results keep the items' order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  });
  await Promise.all(runners);
  return results;
}

/** The engine floor's login storms with state (bench/workerd-floor/) need a session per user to check. */
export async function seedFloorSessions(origin: string, users: string[]): Promise<void> {
  for (let i = 0; i < users.length; i += 100) {
    const response = await fetch(`${origin}/floor/seed`, {
      method: "POST",
      body: JSON.stringify({ users: users.slice(i, i + 100) }),
    });
    if (response.status !== 204)
      throw new Error(`floor seed: HTTP ${response.status} ${await response.text()}`);
  }
}
