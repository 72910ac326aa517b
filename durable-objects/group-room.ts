// GroupRoom: one Durable Object per group, so groups spread over the runtime like users do. It owns the
// group's membership (admin, members, epoch: rules in group/membership.ts), tells members about every
// change, and fans each group message out to the homes of exactly the members it was sealed for.
//
// Changes and messages leave through one ordered pipe per member home, in the order they happened
// here: every member sees the "added" event before the first message of the new epoch.

import { DurableObject } from "cloudflare:workers";
import { toHex, utf8, equalBytes } from "../protocol/bytes.js";
import { encodeDelivery, membersDigest } from "../protocol/envelope.js";
import type { EventFrame } from "../protocol/frames.js";
import type { GroupInfo } from "../protocol/http.js";
import {
  type GroupFailureCode,
  GroupRuleError,
  GROUP_MIGRATIONS,
  Membership,
  type MembershipChange,
} from "./group/membership.js";
import { migrate } from "./migrations.js";
import { homeStub } from "./names.js";
import { OrderedBatcher } from "./ordered-batcher.js";
import type { DeliverResult, Incoming } from "./user-home.js";

export type GroupResult<T> = ({ ok: true } & T) | { ok: false; code: GroupFailureCode; message: string };

/** One group message, already checked by the shard for shape and sender; the room checks membership. */
export interface GroupPost {
  sender: string;
  id: string;
  epoch: number;
  membersDigest: Uint8Array;
  /** Signed part and signature, forwarded unchanged to every member. */
  signed: Uint8Array;
  slots: Array<{ recipient: string; bytes: Uint8Array }>;
}

export type PostResult =
  | { ok: true; status: "delivered" | "stored" }
  | { ok: false; code: "unknown_group" | "forbidden" | "stale_epoch" | "bad_frame"; message: string };

export class GroupRoom extends DurableObject<Env> {
  private readonly membership: Membership;
  private readonly homePipes = new Map<string, OrderedBatcher<Incoming, DeliverResult>>();
  /** membersDigest of the current epoch, computed once per epoch rather than once per message. */
  private digestCache: { epoch: number; digest: Uint8Array } | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    migrate(ctx.storage, GROUP_MIGRATIONS);
    this.membership = new Membership(ctx.storage.sql);
  }

  async create(name: string, creator: string, others: string[]): Promise<GroupResult<{ info: GroupInfo }>> {
    const missing = await this.missingUsers(others);
    if (missing.length > 0)
      return { ok: false, code: "not_found", message: `no such user: ${missing.join(", ")}` };
    return this.change(() => this.membership.create(name, creator, others, Date.now()));
  }

  async add(by: string, user: string): Promise<GroupResult<{ info: GroupInfo }>> {
    if (!this.membership.exists()) return notFound();
    // Rights first: someone who may not add must not learn which names have accounts.
    try {
      this.membership.requireAdmin(by, "add members");
    } catch (error) {
      if (error instanceof GroupRuleError) return { ok: false, code: error.code, message: error.message };
      throw error;
    }
    if ((await this.missingUsers([user])).length > 0)
      return { ok: false, code: "not_found", message: `no such user: ${user}` };
    return this.change(() => this.membership.add(by, user, Date.now()));
  }

  async remove(by: string, user: string): Promise<GroupResult<{ info: GroupInfo }>> {
    if (!this.membership.exists()) return notFound();
    return this.change(() => this.membership.remove(by, user, Date.now()));
  }

  async leave(user: string): Promise<GroupResult<{ info: GroupInfo | null }>> {
    if (!this.membership.exists()) return notFound();
    return this.change(() => this.membership.leave(user, Date.now()));
  }

  info(requester: string): GroupResult<{ info: GroupInfo }> {
    const info = this.membership.info();
    if (!info) return notFound();
    if (!this.membership.isMember(requester))
      return { ok: false, code: "forbidden", message: "you are not a member of this group" };
    return { ok: true, info };
  }

  /** Members at a past epoch, for a client verifying an older message; only for who was a member then. */
  membersAt(requester: string, epoch: number): GroupResult<{ members: string[] }> {
    // Past epochs outlive the group: a message queued before it closed can still be checked.
    const members = this.membership.membersAt(epoch);
    if (!members) return { ok: false, code: "not_found", message: `no epoch ${epoch}` };
    if (!members.includes(requester))
      return { ok: false, code: "forbidden", message: `you were not a member at epoch ${epoch}` };
    return { ok: true, members };
  }

  /**
   * A batch of group messages from one shard, in the order they were sent. Each is checked and queued to
   * every member's pipe synchronously, so no membership change can slip between check and queue; only
   * the waiting for the homes overlaps.
   */
  async post(posts: GroupPost[]): Promise<PostResult[]> {
    const pending: Array<Promise<PostResult>> = [];
    for (const post of posts) {
      const refusal = this.check(post);
      pending.push(refusal ? Promise.resolve(refusal) : this.fanOut(post));
    }
    return Promise.all(pending);
  }

  private check(post: GroupPost): PostResult | null {
    if (!this.membership.exists()) return { ok: false, code: "unknown_group", message: "no such group" };
    if (!this.membership.isMember(post.sender))
      return { ok: false, code: "forbidden", message: "you are not a member of this group" };
    const epoch = this.membership.epoch();
    if (post.epoch !== epoch) {
      return {
        ok: false,
        code: "stale_epoch",
        message: `sealed for epoch ${post.epoch}, the group is at epoch ${epoch}`,
      };
    }
    const members = this.membership.memberNames();
    const names = post.slots.map((slot) => slot.recipient);
    if (names.length !== members.length || names.some((name, i) => name !== members[i])) {
      return {
        ok: false,
        code: "bad_frame",
        message: `key slots must be exactly for the ${members.length} members of epoch ${epoch}`,
      };
    }
    if (!equalBytes(post.membersDigest, this.currentDigest(epoch, members))) {
      return { ok: false, code: "bad_frame", message: "members digest does not match the group's members" };
    }
    return null;
  }

  /** Queues the message to every member synchronously, so it takes its place before any later change. */
  private async fanOut(post: GroupPost): Promise<PostResult> {
    const results = await Promise.all(
      post.slots.map((slot) =>
        this.pipe(slot.recipient).submit({
          id: post.id,
          kind: "envelope",
          data: encodeDelivery(post.signed, slot.bytes),
        }),
      ),
    );
    const delivered = results.some(
      (result, i) => result.ok && result.status === "delivered" && post.slots[i]!.recipient !== post.sender,
    );
    return { ok: true, status: delivered ? "delivered" : "stored" };
  }

  /** Applies a change (synchronously, so nothing interleaves) and queues its events, then waits for them. */
  private async change<T extends GroupInfo | null>(
    apply: () => MembershipChange,
  ): Promise<GroupResult<{ info: T }>> {
    let change: MembershipChange;
    try {
      // All or nothing: a rule that fails half-way through a change leaves no half-made group behind.
      change = this.ctx.storage.transactionSync(apply);
    } catch (error) {
      if (error instanceof GroupRuleError) return { ok: false, code: error.code, message: error.message };
      throw error;
    }
    const info = this.membership.info() as T;
    const name = change.group;
    const event: EventFrame = {
      type: "event",
      id: toHex(crypto.getRandomValues(new Uint8Array(16))),
      event: change.event,
      group: name,
      by: change.by,
      user: change.user,
      epoch: change.epoch,
      members: change.members,
      admin: change.admin,
      at: Date.now(),
    };
    const data = utf8(JSON.stringify(event));
    const deliveries = change.notify.map((member) =>
      this.pipe(member).submit({ id: event.id, kind: "event", data }),
    );
    const lists = change.listUpdates.map(([member, joined]) =>
      homeStub(this.env, member).trackGroup(name, joined),
    );
    await Promise.all([...deliveries, ...lists]);
    return { ok: true, info };
  }

  private pipe(username: string): OrderedBatcher<Incoming, DeliverResult> {
    let pipe = this.homePipes.get(username);
    if (!pipe) {
      const stub = homeStub(this.env, username);
      pipe = new OrderedBatcher<Incoming, DeliverResult>((batch) => stub.deliver(batch));
      this.homePipes.set(username, pipe);
    }
    return pipe;
  }

  private currentDigest(epoch: number, members: string[]): Uint8Array {
    if (this.digestCache?.epoch !== epoch) this.digestCache = { epoch, digest: membersDigest(members) };
    return this.digestCache.digest;
  }

  private async missingUsers(usernames: string[]): Promise<string[]> {
    const unique = [...new Set(usernames)];
    const profiles = await Promise.all(unique.map((name) => homeStub(this.env, name).profile()));
    return unique.filter((_, i) => profiles[i] === null);
  }
}

function notFound(): { ok: false; code: "not_found"; message: string } {
  return { ok: false, code: "not_found", message: "no such group" };
}
