// How the group commands and chat's slash commands report a change they made: one human text and one
// JSON object per outcome, so `group add` and `/add` say the same thing in the same words.

import type { GroupInfo } from "../protocol/http.js";
import type { CreatedGroup, MemberChange } from "./group-changes.js";
import { describeGroup, groupData, sanitizeLine } from "./output.js";

export interface Report {
  human: string;
  data: Record<string, unknown>;
}

/** Why an invitation instead of an add, and what the invitee does about it. */
function mustAccept(names: readonly string[], group: string): string {
  const who = names.map(sanitizeLine).join(", ");
  const verb = names.length === 1 ? "must" : "must each";
  return `${who} ${verb} accept with \`telepound group join ${sanitizeLine(group)}\` (only users who have written to you are added at once)`;
}

/** --json: the group, plus `added` (members besides the creator); `invited` is the group's own list. */
export function createdReport({ info, added, invited }: CreatedGroup): Report {
  const lines = [`created ${describeGroup(info)}`];
  if (invited.length > 0) lines.push(mustAccept(invited, info.name));
  return { human: lines.join("\n"), data: { ...groupData(info), added } };
}

/** --json: the group, plus `user` and `change` ("added", "invited", "removed" or "uninvited"). */
export function memberChangeReport({ info, change }: MemberChange, user: string): Report {
  const name = sanitizeLine(user);
  const human = {
    added: `added ${name} to ${describeGroup(info)}`,
    invited: `invited ${name} to ${sanitizeLine(info.name)}: they must accept with \`telepound group join ${sanitizeLine(info.name)}\`\n${describeGroup(info)}`,
    removed: `removed ${name} from ${describeGroup(info)}`,
    uninvited: `withdrew the invitation of ${name} to ${describeGroup(info)}`,
  }[change];
  return { human, data: { ...groupData(info), user, change } };
}

/** --json: the group, plus `change`: "joined". */
export function joinedReport(info: GroupInfo): Report {
  return { human: `you joined ${describeGroup(info)}`, data: { ...groupData(info), change: "joined" } };
}

/** --json: {"group","declined":true}, as a leave reports {"group","left":true}. */
export function declinedReport(group: string): Report {
  return { human: `you declined the invitation to ${sanitizeLine(group)}`, data: { group, declined: true } };
}
