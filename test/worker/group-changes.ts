// Membership changes for the worker tests, as a real client makes them: a statement built from the
// room's current state (protocol/group-statement.ts), signed with WebCrypto Ed25519, sent to the route.
// Every field can be overridden, so tests can send what a broken or hostile client would. And consent as
// real users give it: a direct message over a WebSocket makes its sender one the recipient may add.

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
import { api, deliveredIds, fakeUpload, online, signingPrivateKey } from "./helpers.js";

/** The room's state as a client would know it: head epoch and hash, members (join order), invitees, admin. */
export interface RoomHead {
  epoch: number;
  prev: Uint8Array;
  membersInJoinOrder: string[];
  invited: string[];
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
      invited: info?.invited ?? [],
      admin: info?.admin ?? "",
    };
  });
}

export type StatementOverrides = Partial<GroupStatement> & {
  /** The members the digest is computed over (default: what the rules derive). */
  digestFor?: string[];
  /** The invitees the invitations digest is computed over (default: what the rules derive). */
  invitedDigestFor?: string[];
  /** Replace the signature: "random" bytes, or none at all (an empty string). */
  signature?: "random" | "empty";
};

/** What a create names beside its creator: the members it adds and the users it invites. */
export interface CreateLists {
  members?: string[];
  invited?: string[];
}

const sorted = (names: Iterable<string>) => [...new Set(names)].sort(compareNames);
const without = (names: string[], name: string) => names.filter((other) => other !== name);

/** The members and invitations after `action` by `by` about `user`, as the rules derive them. */
function listsAfter(
  head: RoomHead,
  action: StatementActionName,
  by: string,
  user: string,
  create: CreateLists,
): { members: string[]; invited: string[]; admin: string } {
  const members = head.membersInJoinOrder;
  switch (action) {
    case "create":
      return {
        members: sorted([by, ...(create.members ?? [])]),
        invited: sorted(create.invited ?? []),
        admin: by,
      };
    case "add":
      return { members: sorted([...members, user]), invited: without(head.invited, user), admin: head.admin };
    case "invite":
      return { members: sorted(members), invited: sorted([...head.invited, user]), admin: head.admin };
    case "join":
      return { members: sorted([...members, by]), invited: without(head.invited, by), admin: head.admin };
    case "decline":
      return { members: sorted(members), invited: without(head.invited, by), admin: head.admin };
    case "remove":
      return members.includes(user)
        ? { members: sorted(without(members, user)), invited: head.invited, admin: head.admin }
        : { members: sorted(members), invited: without(head.invited, user), admin: head.admin };
    case "leave": {
      const remaining = without(members, by);
      return {
        members: sorted(remaining),
        // The last leave closes the group, and its invitations with it.
        invited: remaining.length === 0 ? [] : head.invited,
        admin: head.admin === by ? (remaining[0] ?? "") : head.admin,
      };
    }
  }
}

/** Builds and signs the statement `by` would send for `action` on `group` (about `user`). */
export async function signedBody(
  by: string,
  group: string,
  action: StatementActionName,
  user: string = by,
  overrides: StatementOverrides = {},
  create: CreateLists = {},
): Promise<{ statement: string; signature: string; members?: string[]; invited?: string[] }> {
  const head = await roomHead(group);
  const { members, invited, admin } = listsAfter(head, action, by, user, create);
  const { digestFor, invitedDigestFor, signature: signatureOverride, ...fields } = overrides;
  const signsForSelf = action === "create" || action === "leave" || action === "join" || action === "decline";
  const statement: GroupStatement = {
    action,
    group,
    epoch: head.epoch + 1,
    prev: action === "create" ? GENESIS_PREV : head.prev,
    at: Date.now(),
    by,
    user: signsForSelf ? by : user,
    admin,
    membersDigest: membersDigest(digestFor ?? members),
    invitedDigest: membersDigest(invitedDigestFor ?? invited),
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
    ...(action === "create" && invited.length > 0 ? { invited } : {}),
  };
}

const nameOf = (user: Session | string) => (typeof user === "string" ? user : user.username);

export async function createGroup(
  owner: Session,
  name: string,
  members: Array<Session | string>,
  overrides?: StatementOverrides,
  invited: Array<Session | string> = [],
): Promise<Response> {
  const body = await signedBody(owner.username, name, "create", owner.username, overrides, {
    members: members.map(nameOf),
    invited: invited.map(nameOf),
  });
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

export async function inviteUser(
  by: Session,
  name: string,
  username: string,
  overrides?: StatementOverrides,
): Promise<Response> {
  const body = await signedBody(by.username, name, "invite", username, overrides);
  return api(`/v1/groups/${name}/invitations`, {
    method: "POST",
    token: by.token,
    body: JSON.stringify(body),
  });
}

/** The invitee's answer: `join` or `decline`, signed by themselves. */
export async function answerInvitation(
  by: Session,
  name: string,
  answer: "join" | "decline",
  overrides?: StatementOverrides,
): Promise<Response> {
  const body = await signedBody(by.username, name, answer, by.username, overrides);
  return api(`/v1/groups/${name}/${answer}`, { method: "POST", token: by.token, body: JSON.stringify(body) });
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

/**
 * Each of `writers` sends `owner` one direct message over a send-only WebSocket, so `owner` may add them
 * to groups at once; then `owner` connects, takes the messages and acknowledges them, so nothing of this
 * is left in their queue for the test that follows.
 */
export async function writeTo(owner: Session, writers: Session[]): Promise<void> {
  await Promise.all(
    writers.map(async (writer) => {
      const socket = await online(writer.token, "?receive=0");
      try {
        const upload = await fakeUpload({ sender: writer.username, target: owner.username });
        socket.ws.send(upload.frame);
        const reply = await socket.waitFor(
          (r) =>
            r.kind === "json" &&
            (r.frame.type === "sent" || r.frame.type === "error") &&
            r.frame.id === upload.id,
        );
        if (reply.kind !== "json" || reply.frame.type !== "sent")
          throw new Error(
            `${writer.username} could not write to ${owner.username}: ${JSON.stringify(reply)}`,
          );
      } finally {
        socket.close();
      }
    }),
  );
  if (writers.length === 0) return;
  const reader = await online(owner.token);
  try {
    await reader.waitFor(() => deliveredIds(reader).length >= writers.length);
    reader.sendJson({ type: "ack", ids: deliveredIds(reader) });
  } finally {
    reader.close();
  }
  // A shard gathers acks for a few milliseconds before its home has them, so a test that connects the
  // owner next could still be handed these messages: wait until a fresh connect gets an empty backlog.
  for (let attempt = 0; ; attempt++) {
    const check = await online(owner.token);
    const left = deliveredIds(check);
    if (left.length > 0) check.sendJson({ type: "ack", ids: left });
    check.close();
    if (left.length === 0) return;
    if (attempt >= 50)
      throw new Error(`${owner.username}'s backlog kept ${left.length} acknowledged messages`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
