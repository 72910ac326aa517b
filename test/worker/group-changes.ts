// Membership changes for the worker tests, as a real client makes them: a statement built from the
// room's current state (protocol/group-statement.ts), signed with WebCrypto Ed25519, sent to the route.
// Every field can be overridden, so tests can send what a broken or hostile client would.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { encodeBase64 } from "hono/utils/encode";
import { Membership } from "../../durable-objects/group/membership.js";
import { groupStub } from "../../durable-objects/names.js";
import { compareNames, membersDigest } from "../../protocol/envelope.js";
import {
  GENESIS_PREV,
  type GroupStatement,
  type StatementActionName,
  encodeStatement,
  statementSigningInput,
} from "../../protocol/group-statement.js";
import type { SessionResponse as Session } from "../../protocol/http.js";
import { api, signingPrivateKey } from "./helpers.js";

/** The room's state as a client would know it: head epoch and hash, members (join order) and admin. */
export interface RoomHead {
  epoch: number;
  prev: Uint8Array;
  membersInJoinOrder: string[];
  admin: string;
}

export async function roomHead(group: string): Promise<RoomHead> {
  return runInDurableObject(groupStub(env, group), (_, state) => {
    const membership = new Membership(state.storage.sql);
    const chain = membership.chainState();
    const info = membership.info();
    return {
      epoch: membership.epoch(),
      prev: chain?.hash ?? GENESIS_PREV,
      membersInJoinOrder: info?.members.map((member) => member.username) ?? [],
      admin: info?.admin ?? "",
    };
  });
}

export type StatementOverrides = Partial<GroupStatement> & {
  /** The members the digest is computed over (default: what the rules derive). */
  digestFor?: string[];
  /** Replace the signature: "random" bytes, or none at all (an empty string). */
  signature?: "random" | "empty";
};

/** Builds and signs the statement `by` would send for `action` on `group` (about `user`). */
export async function signedBody(
  by: string,
  group: string,
  action: StatementActionName,
  user: string = by,
  overrides: StatementOverrides = {},
  createMembers: string[] = [],
): Promise<{ statement: string; signature: string; members?: string[] }> {
  const head = await roomHead(group);
  let members: string[];
  let admin = head.admin;
  if (action === "create") {
    members = [...new Set([by, ...createMembers])].sort(compareNames);
    admin = by;
  } else if (action === "add") members = [...head.membersInJoinOrder, user].sort(compareNames);
  else {
    const leaving = action === "remove" ? user : by;
    const remaining = head.membersInJoinOrder.filter((name) => name !== leaving);
    members = [...remaining].sort(compareNames);
    if (action === "leave" && head.admin === by) admin = remaining[0] ?? "";
  }
  const { digestFor, signature: signatureOverride, ...fields } = overrides;
  const statement: GroupStatement = {
    action,
    group,
    epoch: head.epoch + 1,
    prev: action === "create" ? GENESIS_PREV : head.prev,
    at: Date.now(),
    by,
    user: action === "create" || action === "leave" ? by : user,
    admin,
    membersDigest: membersDigest(digestFor ?? members),
    ...fields,
  };
  const bytes = encodeStatement(statement);
  const signature =
    signatureOverride === "random"
      ? crypto.getRandomValues(new Uint8Array(64))
      : signatureOverride === "empty"
        ? new Uint8Array(0)
        : new Uint8Array(
            await crypto.subtle.sign(
              { name: "Ed25519" },
              await signingPrivateKey(),
              statementSigningInput(bytes),
            ),
          );
  return {
    statement: encodeBase64(bytes.slice().buffer),
    signature: encodeBase64(signature.slice().buffer),
    ...(action === "create" ? { members } : {}),
  };
}

export async function createGroup(
  owner: Session,
  name: string,
  members: Array<Session | string>,
  overrides?: StatementOverrides,
): Promise<Response> {
  const names = members.map((member) => (typeof member === "string" ? member : member.username));
  const body = await signedBody(owner.username, name, "create", owner.username, overrides, names);
  return api("/v1/groups", { method: "POST", token: owner.token, body: JSON.stringify(body) });
}

export async function addMember(
  by: Session,
  name: string,
  username: string,
  overrides?: StatementOverrides,
): Promise<Response> {
  const body = await signedBody(by.username, name, "add", username, overrides);
  return api(`/v1/groups/${name}/members`, { method: "POST", token: by.token, body: JSON.stringify(body) });
}

export async function removeMember(
  by: Session,
  name: string,
  username: string,
  overrides?: StatementOverrides,
): Promise<Response> {
  const body = await signedBody(by.username, name, "remove", username, overrides);
  return api(`/v1/groups/${name}/members/${username}`, {
    method: "DELETE",
    token: by.token,
    body: JSON.stringify(body),
  });
}

export async function leaveGroup(
  by: Session,
  name: string,
  overrides?: StatementOverrides,
): Promise<Response> {
  const body = await signedBody(by.username, name, "leave", by.username, overrides);
  return api(`/v1/groups/${name}/leave`, { method: "POST", token: by.token, body: JSON.stringify(body) });
}
