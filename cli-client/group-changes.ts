// Making membership changes: each is a statement this user signs (protocol/group-statement.ts), built on
// the group's verified head, sent to the server, and adopted only once the server's answer verifies. Shared
// by the group commands and chat; also shows verified changes, and stops a send at one not shown yet.
//
// Consent: a user becomes a member at once only if they have written to the signer; for anyone else the
// server answers consent_required, and the change becomes an invitation (an invite statement, or for a
// create the same create signed again with those users invited), which they accept with a join they sign.

import { compareNames, membersDigest } from "../protocol/envelope.js";
import {
  GENESIS_PREV,
  type GroupStatement,
  STATEMENT_VERSION,
  encodeStatement,
  statementHash,
} from "../protocol/group-statement.js";
import type { GroupInfo, SignedStatementRequest } from "../protocol/http.js";
import { fromHex, toHex } from "../protocol/bytes.js";
import { signStatement, toBase64 } from "./crypto/index.js";
import {
  ConsentRequiredError,
  KeyMismatchError,
  MembershipChangedError,
  NetworkError,
  RefusedError,
} from "./errors.js";
import type { GroupDirectory, VerifiedEpoch } from "./groups.js";
import { type Printer, eventOfEpoch } from "./output.js";
import type { LoggedIn } from "./session.js";

export interface GroupChanger {
  me: LoggedIn;
  groups: GroupDirectory;
  printer: Printer;
}

/** A create the server accepted: who became a member at once, and who was invited instead. */
export interface CreatedGroup {
  info: GroupInfo;
  /** Members besides the creator, sorted. */
  added: string[];
  /** Invited, sorted: they become members only by joining. */
  invited: string[];
}

/** What an admin's change of one user came to. */
export interface MemberChange {
  info: GroupInfo;
  change: "added" | "invited" | "removed" | "uninvited";
}

/**
 * Creates `name` with this user as admin, `others` as members and `invitees` invited. Members the server
 * says must consent (consent_required) are moved to the invited and the create signed again, once.
 * Returns the server's verified answer.
 */
export async function createGroup(
  changer: GroupChanger,
  name: string,
  others: readonly string[],
  invitees: readonly string[] = [],
): Promise<CreatedGroup> {
  const { me } = changer;
  let invited = sortedUnique(invitees).filter((user) => user !== me.username);
  let added = sortedUnique(others).filter((user) => user !== me.username && !invited.includes(user));
  const { epoch } = await me.api.nextEpoch(name);
  const attempt = async (): Promise<GroupInfo> => {
    const members = sortedUnique([me.username, ...added]);
    const signed = sign(me, {
      version: STATEMENT_VERSION,
      action: "create",
      group: name,
      epoch,
      prev: GENESIS_PREV,
      at: Date.now(),
      by: me.username,
      user: me.username,
      admin: me.username,
      membersDigest: membersDigest(members),
      invitedDigest: membersDigest(invited),
    });
    const info = await me.api.createGroup({
      ...signed.request,
      members,
      ...(invited.length > 0 ? { invited } : {}),
    });
    await adoptAnswer(changer, name, signed, info);
    return info;
  };
  let info: GroupInfo;
  try {
    info = await attempt();
  } catch (error) {
    if (!(error instanceof ConsentRequiredError)) throw error;
    const needed = consentNeeded(error, added, `the create of ${name}`);
    added = added.filter((user) => !needed.includes(user));
    invited = sortedUnique([...invited, ...needed]);
    // A second consent_required is the server's refusal: nothing is signed a third time.
    info = await attempt();
  }
  return { info, added, invited };
}

/**
 * The admin adds or removes `user`, on the verified head; changes met on the way are shown first. An add
 * the server refuses for want of consent becomes an invitation; a remove of an invitee withdraws it.
 */
export async function changeMember(
  changer: GroupChanger,
  name: string,
  action: "add" | "remove",
  user: string,
): Promise<MemberChange> {
  const { me } = changer;
  // Signed and sent even by a non-admin: the server's refusal (403) says who the admin is, in its words.
  const head = await verifiedHead(changer, name);
  const members = head.members ?? [];
  const invited = head.invited ?? [];
  if (action === "remove") {
    const withdrawn = !members.includes(user) && invited.includes(user);
    const signed = sign(
      me,
      statementOn(me, name, head, "remove", user, head.admin, {
        members: members.filter((member) => member !== user),
        invited: invited.filter((invitee) => invitee !== user),
      }),
    );
    const info = await me.api.removeMember(name, user, signed.request);
    await adoptAnswer(changer, name, signed, info);
    return { info, change: withdrawn ? "uninvited" : "removed" };
  }
  const added = sign(
    me,
    statementOn(me, name, head, "add", user, head.admin, {
      members: [...members, user],
      invited: invited.filter((invitee) => invitee !== user),
    }),
  );
  try {
    const info = await me.api.addMember(name, added.request);
    await adoptAnswer(changer, name, added, info);
    return { info, change: "added" };
  } catch (error) {
    if (!(error instanceof ConsentRequiredError)) throw error;
    consentNeeded(error, [user], `the add of ${user} to ${name}`);
    if (invited.includes(user)) {
      throw new RefusedError(
        `${user} is already invited to ${name}: they must accept with \`telepound group join ${name}\``,
      );
    }
  }
  // Refused, so the head is still the one the add was built on.
  const signed = sign(
    me,
    statementOn(me, name, head, "invite", user, head.admin, {
      members,
      invited: [...invited, user],
    }),
  );
  const info = await me.api.inviteMember(name, signed.request);
  await adoptAnswer(changer, name, signed, info);
  return { info, change: "invited" };
}

/**
 * Accepts the invitation to `name`: the chain up to the server's head is verified first (a group whose
 * chain does not verify is refused, exit 8), and the join is signed only on a head that invites this user.
 */
export async function joinGroup(changer: GroupChanger, name: string): Promise<GroupInfo> {
  const { me } = changer;
  const head = await invitedHead(changer, name);
  const signed = sign(
    me,
    statementOn(me, name, head, "join", me.username, head.admin, {
      members: [...(head.members ?? []), me.username],
      invited: (head.invited ?? []).filter((user) => user !== me.username),
    }),
  );
  const info = await me.api.joinGroup(name, signed.request);
  await adoptAnswer(changer, name, signed, info);
  return info;
}

/** Declines the invitation to `name`, signed on the verified head as a join would be. */
export async function declineGroup(changer: GroupChanger, name: string): Promise<void> {
  const { me, groups } = changer;
  const head = await invitedHead(changer, name);
  const lists = {
    members: head.members ?? [],
    invited: (head.invited ?? []).filter((user) => user !== me.username),
  };
  const signed = sign(me, statementOn(me, name, head, "decline", me.username, head.admin, lists));
  await me.api.declineGroup(name, signed.request);
  const outcome = await groups.learn(name, { ...signed.request, ...lists });
  groups.markShown(name, groups.settle(name, outcome, "The server accepted it all the same."));
  await groups.save();
}

/**
 * Leaves `name`. An admin hands the group to its longest-standing other member (the server's join order,
 * which its rules insist on); the last member closes it, and its invitations with it.
 */
export async function leaveGroup(changer: GroupChanger, name: string): Promise<void> {
  const { me, groups } = changer;
  const { info } = await groups.catchUp(name);
  showChanges(changer, name, groups.unshown(name));
  const head = groups.headOf(name)!;
  if (!head.members?.includes(me.username) && head.invited?.includes(me.username))
    throw new RefusedError(
      `you are invited to the group ${name}, not a member: to say no, \`telepound group decline ${name}\``,
    );
  const remaining = (head.members ?? []).filter((member) => member !== me.username);
  const successor = info.members
    .map((member) => member.username)
    .find((member) => remaining.includes(member));
  const admin = remaining.length === 0 ? "" : head.admin === me.username ? successor! : head.admin;
  const lists = { members: remaining, invited: remaining.length === 0 ? [] : (head.invited ?? []) };
  const signed = sign(me, statementOn(me, name, head, "leave", me.username, admin, lists));
  await me.api.leaveGroup(name, signed.request);
  const outcome = await groups.learn(name, { ...signed.request, ...lists });
  groups.markShown(name, groups.settle(name, outcome, "The server accepted it all the same."));
  await groups.save();
}

/** Prints verified changes (who signed each) and marks them shown. */
export function showChanges(
  { groups, printer, me }: GroupChanger,
  name: string,
  epochs: VerifiedEpoch[],
): void {
  for (const epoch of epochs) printer.event(eventOfEpoch(name, epoch, me.username));
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

/**
 * The verified head, which must have this user invited: what a join or decline is signed on. Changes met
 * on the way are shown, but for the invitation itself: answering it is what the user is doing.
 */
async function invitedHead(changer: GroupChanger, name: string): Promise<VerifiedEpoch> {
  const { groups } = changer;
  const me = changer.me.username;
  await groups.catchUp(name);
  const unshown = groups.unshown(name);
  const invitesMe = (epoch: VerifiedEpoch) =>
    (epoch.event === "invited" && epoch.user === me) ||
    (epoch.event === "created" && (epoch.invited?.includes(me) ?? false));
  groups.markShown(name, unshown.filter(invitesMe));
  showChanges(
    changer,
    name,
    unshown.filter((epoch) => !invitesMe(epoch)),
  );
  const head = groups.headOf(name)!;
  if (head.members?.includes(me)) throw new RefusedError(`you are already a member of the group ${name}`);
  if (!head.invited?.includes(me)) throw new RefusedError(`you are not invited to the group ${name}`);
  return head;
}

/**
 * The users a consent_required answer names, which must all be among `asked` (the users the change
 * would have made members): a server naming anyone else is not believed, and nothing more is signed.
 */
function consentNeeded(error: ConsentRequiredError, asked: readonly string[], change: string): string[] {
  const needed = sortedUnique(error.users);
  const stranger = needed.find((user) => !asked.includes(user));
  if (stranger !== undefined || needed.length === 0) {
    throw new NetworkError(
      `protocol failure: the server asks for consent to ${change} from ${stranger ?? "nobody"}, whom it does not make a member`,
    );
  }
  return needed;
}

/** The statement after `head` by this user: the lists after it are given, their digests signed. */
function statementOn(
  me: LoggedIn,
  group: string,
  head: VerifiedEpoch,
  action: Exclude<GroupStatement["action"], "create">,
  user: string,
  admin: string,
  lists: { members: readonly string[]; invited: readonly string[] },
): GroupStatement {
  return {
    version: STATEMENT_VERSION,
    action,
    group,
    epoch: head.epoch + 1,
    prev: fromHex(head.hash),
    at: Date.now(),
    by: me.username,
    user,
    admin,
    membersDigest: membersDigest(sortedUnique(lists.members)),
    invitedDigest: membersDigest(sortedUnique(lists.invited)),
  };
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

function sortedUnique(names: readonly string[]): string[] {
  return [...new Set(names)].sort(compareNames);
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
