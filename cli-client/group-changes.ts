// Making membership changes: each is a statement this user signs (protocol/group-statement.ts), built on
// the group's verified head, sent to the server, and adopted only once the server's answer verifies. Shared
// by the group commands and chat; also shows verified changes, and stops a send at one not shown yet.

import { compareNames, membersDigest } from "../protocol/envelope.js";
import {
  GENESIS_PREV,
  type GroupStatement,
  encodeStatement,
  statementHash,
} from "../protocol/group-statement.js";
import type { GroupInfo, SignedStatementRequest } from "../protocol/http.js";
import { fromHex, toHex } from "../protocol/bytes.js";
import { signStatement, toBase64 } from "./crypto/index.js";
import { KeyMismatchError, MembershipChangedError } from "./errors.js";
import type { GroupDirectory, VerifiedEpoch } from "./groups.js";
import { type Printer, eventOfEpoch } from "./output.js";
import type { LoggedIn } from "./session.js";

export interface GroupChanger {
  me: LoggedIn;
  groups: GroupDirectory;
  printer: Printer;
}

/** Creates `name` with this user as admin and `others` as members; returns the server's verified answer. */
export async function createGroup(changer: GroupChanger, name: string, others: string[]): Promise<GroupInfo> {
  const { me } = changer;
  const members = [...new Set([me.username, ...others])].sort(compareNames);
  const { epoch } = await me.api.nextEpoch(name);
  const signed = sign(me, {
    action: "create",
    group: name,
    epoch,
    prev: GENESIS_PREV,
    at: Date.now(),
    by: me.username,
    user: me.username,
    admin: me.username,
    membersDigest: membersDigest(members),
  });
  const info = await me.api.createGroup({ ...signed.request, members });
  await adoptAnswer(changer, name, signed, info);
  return info;
}

/** The admin adds or removes `user`, on the verified head; changes met on the way are shown first. */
export async function changeMember(
  changer: GroupChanger,
  name: string,
  action: "add" | "remove",
  user: string,
): Promise<GroupInfo> {
  const { me } = changer;
  // Signed and sent even by a non-admin: the server's refusal (403) says who the admin is, in its words.
  const head = await verifiedHead(changer, name);
  const members = action === "add" ? [...head.members!, user] : head.members!.filter((name) => name !== user);
  const signed = sign(me, {
    action,
    group: name,
    epoch: head.epoch + 1,
    prev: fromHex(head.hash),
    at: Date.now(),
    by: me.username,
    user,
    admin: head.admin,
    membersDigest: membersDigest(members),
  });
  const info =
    action === "add"
      ? await me.api.addMember(name, signed.request)
      : await me.api.removeMember(name, user, signed.request);
  await adoptAnswer(changer, name, signed, info);
  return info;
}

/**
 * Leaves `name`. An admin hands the group to its longest-standing other member (the server's join order,
 * which its rules insist on); the last member closes it.
 */
export async function leaveGroup(changer: GroupChanger, name: string): Promise<void> {
  const { me, groups } = changer;
  const { info } = await groups.catchUp(name);
  showChanges(changer, name, groups.unshown(name));
  const head = groups.headOf(name)!;
  const remaining = head.members!.filter((member) => member !== me.username);
  const successor = info.members
    .map((member) => member.username)
    .find((member) => remaining.includes(member));
  const admin = remaining.length === 0 ? "" : head.admin === me.username ? successor! : head.admin;
  const signed = sign(me, {
    action: "leave",
    group: name,
    epoch: head.epoch + 1,
    prev: fromHex(head.hash),
    at: Date.now(),
    by: me.username,
    user: me.username,
    admin,
    membersDigest: membersDigest(remaining),
  });
  await me.api.leaveGroup(name, signed.request);
  const outcome = await groups.learn(name, { ...signed.request, members: remaining });
  groups.markShown(name, groups.settle(name, outcome, "The server accepted it all the same."));
  await groups.save();
}

/** Prints verified changes (who signed each) and marks them shown. */
export function showChanges({ groups, printer }: GroupChanger, name: string, epochs: VerifiedEpoch[]): void {
  for (const epoch of epochs) printer.event(eventOfEpoch(name, epoch));
  groups.markShown(name, epochs);
}

/**
 * Before sealing for `name`: a verified change the user has not been shown stops the send (exit 10),
 * after showing it; one the user signed does not. The next send proceeds.
 */
export async function stopAtUnshownChanges(changer: GroupChanger, name: string): Promise<void> {
  const all = changer.groups.unshown(name);
  // A change this user signed (on another device) needs no review: they made it.
  changer.groups.markShown(
    name,
    all.filter((epoch) => epoch.by === changer.me.username),
  );
  const unshown = all.filter((epoch) => epoch.by !== changer.me.username);
  if (unshown.length === 0) return;
  showChanges(changer, name, unshown);
  await changer.groups.save();
  throw new MembershipChangedError(
    `group membership changed: review it and send again (${unshown.length} change${unshown.length === 1 ? "" : "s"} in ${name}; nothing was sent)`,
  );
}

/** The verified head after catching up with the server, changes met on the way shown. */
async function verifiedHead(changer: GroupChanger, name: string): Promise<VerifiedEpoch> {
  const { groups } = changer;
  await groups.catchUp(name);
  showChanges(changer, name, groups.unshown(name));
  return groups.headOf(name)!;
}

interface Signed {
  request: SignedStatementRequest;
  hash: string;
}

function sign(me: LoggedIn, statement: GroupStatement): Signed {
  const bytes = encodeStatement(statement);
  const signature = signStatement(me.identity.signing.privateKey, bytes);
  return {
    request: { statement: toBase64(bytes), signature: toBase64(signature) },
    hash: toHex(statementHash(bytes, signature)),
  };
}

/** The server's answer must carry our statement as its head; then it is adopted (and shown by the command). */
async function adoptAnswer(
  changer: GroupChanger,
  name: string,
  signed: Signed,
  info: GroupInfo,
): Promise<void> {
  const { groups } = changer;
  const adopted = await groups.adoptHead(name, info, "The change may have been made all the same.");
  const head = groups.headOf(name);
  if (head?.hash !== signed.hash) {
    throw new KeyMismatchError(
      `the server answered the change to ${name} with a statement other than the one you signed`,
    );
  }
  groups.markShown(name, adopted);
  await groups.save();
}
