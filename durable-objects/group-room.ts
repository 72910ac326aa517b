// GroupRoom: one Durable Object per group, so groups spread over the runtime like users do. It owns the
// group's membership (admin, members, invitations, epoch: rules in group/membership.ts), asks the homes
// involved for consent and room before a change, tells members about every change, and queues each group
// message once for exactly the members it was sealed for (group/queue.ts).
//
// A message is stored here in one transaction and pushed once to each shard of the room's audience (the
// shards that hold its members' receiving sockets: group/audience.ts), which hands each member's sockets
// their copy: no per-member call on the way. A large audience is reached through the group's relays
// (group/fanout.ts, group-relay.ts), so the room's calls per message stay few however many shards there
// are. Membership events still go through each member's home (a removed member must get theirs too),
// and a message waits for the events before it so every member sees the "added" event before the first
// message of the new epoch.

import { DurableObject } from "cloudflare:workers";
import { encodeBase64 } from "hono/utils/encode";
import { toHex, utf8, equalBytes } from "../protocol/bytes.js";
import { membersDigest } from "../protocol/envelope.js";
import type { EventFrame } from "../protocol/frames.js";
import type { StatementLists } from "../protocol/group-statement.js";
import type { GroupInfo } from "../protocol/http.js";
import {
  type EpochRecord,
  type GroupFailureCode,
  GroupRuleError,
  Membership,
  type MembershipChange,
  type SignedStatement,
} from "./group/membership.js";
import { statementSignatureValid } from "./group/statement-signature.js";
import { GroupQueue, type MemberSession } from "./group/queue.js";
import { BlobOwners } from "./blob-owners.js";
import type { BlobHolder } from "./home/blobs.js";
import {
  type DeliverResult,
  type GroupAck,
  type GroupDelivery,
  type GroupPost,
  type GroupPushOutcome,
  type GroupResult,
  type Incoming,
  type PostResult,
  type RelayOutcome,
  type RelayedDelivery,
  eventSender,
} from "./contracts.js";
import { eachAtMost } from "./each-at-most.js";
import { Audience, type PushTarget } from "./group/audience.js";
import {
  type FanoutPlan,
  PUSHES_IN_FLIGHT,
  RELAY_ABOVE_SHARDS,
  ackWindowMs,
  planFanout,
} from "./group/fanout.js";
import { GROUP_MIGRATIONS } from "./group/schema.js";
import type { Backlog } from "./home/queue.js";
import { existingNames } from "./known-names.js";
import { migrate } from "./migrations.js";
import { homeStub, relayStub, shardStub } from "./names.js";
import { OrderedBatcher, OrderedBatchers } from "./ordered-batcher.js";
import { queueQuotas, quotaMessage } from "./quotas.js";

export class GroupRoom extends DurableObject<Env> {
  private readonly membership: Membership;
  private readonly queue: GroupQueue;
  private readonly blobOwners: BlobOwners;
  private readonly audience: Audience;
  /** One ordered pipe per member home: events (and handed-over messages) in the order they happened. */
  private readonly homePipes = new OrderedBatchers<Incoming, DeliverResult>((username) => {
    const home = homeStub(this.env, username);
    return new OrderedBatcher((batch) => home.deliver(batch, "room"));
  });
  /**
   * One ordered pipe per shard: each shard gets this group's messages in the order they were stored (each
   * has waited for the events before it in storeAndPush).
   */
  private readonly shardPipes = new OrderedBatchers<GroupDelivery, GroupPushOutcome>((shard) => {
    const stub = shardStub(this.env, shard);
    return new OrderedBatcher((batch) => stub.pushGroup(this.groupName(), batch, this.ackWindowMs));
  });
  /** One ordered pipe per relay, for an audience past GROUP_RELAY_ABOVE_SHARDS (group/fanout.ts). */
  private readonly relayPipes = new OrderedBatchers<RelayedDelivery, RelayOutcome>((bucket) => {
    const stub = relayStub(this.env, this.groupName(), Number(bucket));
    return new OrderedBatcher((batch) => stub.relay(this.ackWindowMs, batch));
  });
  /** How long the audience's shards gather acknowledgements for this room, for its size now. */
  private ackWindowMs = ackWindowMs(0);
  /**
   * The route the last message took, and the pushes still under way. A message that takes the other
   * route waits for every push before it: the two routes are different pipes, so a shard could otherwise
   * get a later message before an earlier one.
   */
  private route: FanoutPlan<PushTarget>["route"] = "direct";
  private routeSwitched: Promise<void> = Promise.resolve();
  private readonly pushesUnderWay = new Set<Promise<unknown>>();
  /**
   * Events of the membership changes so far on their way to homes, and the new members' shards on their
   * way here: messages after a change wait for both. Each change's promise includes the one before, so
   * messages waiting on different changes are still pushed in the order they were stored.
   */
  private eventsInFlight: Promise<void> = Promise.resolve();
  /** Whether the audience is known here (see fillAudienceOnce), and the filling under way. */
  private audienceFilled: boolean;
  private audienceFilling: Promise<void> | null = null;
  /** Whether the members' sessions are known here (see loadSessionsOnce), and the loading under way. */
  private sessionsLoaded = false;
  private sessionsLoading: Promise<void> | null = null;
  /** The group's name, once read: a room is addressed by it, so it never changes. */
  private name: string | null = null;
  /** membersDigest of the current epoch, computed once per epoch rather than once per message. */
  private digestCache: { epoch: number; digest: Uint8Array } | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    migrate(ctx.storage, GROUP_MIGRATIONS);
    this.membership = new Membership(ctx.storage.sql);
    this.queue = new GroupQueue(ctx.storage.sql);
    this.blobOwners = new BlobOwners(ctx.storage.sql);
    this.audience = new Audience(ctx.storage.sql);
    // Read once per wake-up, not per message: rows read per message are priced (scripts/simulate).
    this.audienceFilled = this.audience.filled();
  }

  /**
   * One signed membership change by `requester`, its statement decoded and its signer checked to be the
   * requester by the route; `lists` are the member and invitation lists a create comes with. Refusals in
   * the order that reveals least: no group, then rights (a non-admin cannot probe which names have
   * accounts), then the signature under the signer's published key, then accounts, then every rule
   * (group/membership.ts), then consent, then the homes' caps. An invitation takes its place in the
   * invitee's home before it is applied, and gives it back if the change fails.
   */
  async applyStatement(
    requester: string,
    signed: SignedStatement,
    lists: StatementLists = {},
  ): Promise<GroupResult<{ info: GroupInfo | null }>> {
    const { statement } = signed;
    if (statement.action !== "create" && !this.membership.exists()) return notFound();
    if (statement.action !== "create") {
      const refusal = ruleRefusal(() => this.membership.requireRights(statement));
      if (refusal) return refusal;
    }
    const signer = await homeStub(this.env, statement.by).profile();
    if (
      !signer ||
      !(await statementSignatureValid(signer.publicKeys.signing, signed.bytes, signed.signature))
    ) {
      return {
        ok: false,
        code: "bad_request",
        message: `the statement's signature does not verify under ${statement.by}'s signing key`,
      };
    }
    const { members, invited } = this.newcomers(signed, lists);
    const missing = await this.missingUsers([...members, ...invited]);
    if (missing.length > 0)
      return { ok: false, code: "not_found", message: `no such user: ${missing.join(", ")}` };
    const broken = ruleRefusal(() => this.membership.check(requester, signed, lists));
    if (broken) return broken;
    const strangers = await this.withoutConsent(statement.by, members);
    if (strangers.length > 0) {
      return {
        ok: false,
        code: "consent_required",
        message: `${strangers.join(", ")} ${strangers.length === 1 ? "has" : "have"} never written to ${statement.by}: invite them instead`,
        users: strangers,
      };
    }
    const joining =
      statement.action === "join"
        ? [statement.by]
        : statement.action === "create"
          ? [statement.by, ...members]
          : members;
    const full = await this.overGroupCap(joining);
    if (full) return full;
    const now = Date.now();
    const reserved = await this.reserveInvitations(statement.group, statement.by, invited, now);
    if (!reserved.ok) return reserved;
    const result = await this.change(() => this.membership.apply(requester, signed, lists, now));
    if (!result.ok) await this.withdrawInvitations(statement.group, reserved.users);
    return result;
  }

  /** The epoch a create must be signed for: the one after the room's last (epochs outlive a closed group). */
  nextEpoch(): number {
    return this.membership.epoch() + 1;
  }

  /** The group as it stands, for its members and for the users invited to it (who decide on it). */
  info(requester: string): GroupResult<{ info: GroupInfo }> {
    const info = this.membership.info();
    if (!info) return notFound();
    if (!this.membership.isMember(requester) && !this.membership.isInvited(requester))
      return {
        ok: false,
        code: "forbidden",
        message: "you are neither a member of this group nor invited to it",
      };
    return { ok: true, info };
  }

  /**
   * A past epoch's members, invitations, statement and signature, for a client verifying the chain or an
   * older message: only for who was a member or invited then or just before (a removed member may fetch
   * the statement that removed them, an invitee the one that withdrew their invitation). Past epochs
   * outlive the group: a message queued before it closed can still be checked.
   */
  epochRecord(requester: string, epoch: number): GroupResult<{ record: EpochRecord }> {
    const record = this.membership.epochRecord(epoch);
    if (!record) return { ok: false, code: "not_found", message: `no epoch ${epoch}` };
    const before = epoch > 1 ? this.membership.epochRecord(epoch - 1) : null;
    const involved = (at: EpochRecord | null) =>
      !!at && (at.members.includes(requester) || at.invited.includes(requester));
    if (!involved(record) && !involved(before))
      return {
        ok: false,
        code: "forbidden",
        message: `you were neither a member nor invited at epoch ${epoch} or just before`,
      };
    return { ok: true, record };
  }

  /**
   * A batch of group messages from one shard, in the order they were sent. Each is checked and stored
   * synchronously, so no membership change can slip between check and store; only the pushing overlaps.
   */
  async post(posts: GroupPost[]): Promise<PostResult[]> {
    await Promise.all([this.loadSessionsOnce(), this.fillAudienceOnce()]);
    const now = Date.now();
    this.queue.removeExpiredSessions(now);
    const pending: Array<Promise<PostResult>> = [];
    for (const post of posts) {
      const refusal = this.check(post);
      pending.push(refusal ? Promise.resolve(refusal) : this.storeAndPush(post, now));
    }
    return Promise.all(pending);
  }

  /**
   * A member's receiving socket is opening on `shard`: the shard has checked the session with the
   * member's home, so the room learns it if it had not yet, pushes to that shard from now on (the socket
   * is on it already), and returns the first batch of what it waits for.
   */
  openBacklog(member: string, session: MemberSession, shard: string): Backlog {
    const now = Date.now();
    this.queue.removeExpiredSessions(now);
    if (this.membership.isMember(member)) {
      this.queue.addSession(member, session);
      this.audience.join(shard, member);
    }
    return this.queue.backlog(session.id, 0);
  }

  /**
   * Acknowledgements from one shard's sockets. A session still draining its backlog (cursor given) gets
   * the next batch once the previous one is fully acknowledged.
   */
  acknowledge(acks: GroupAck[]): Array<Backlog | null> {
    this.queue.acknowledge(acks);
    return acks.map(({ session, cursor }) => {
      if (cursor === null || this.queue.hasPendingUpTo(session, cursor)) return null;
      return this.queue.backlog(session, cursor);
    });
  }

  /** A member logged in on another machine: that session gets everything the member is still owed. */
  addSession(member: string, session: MemberSession): void {
    if (this.membership.isMember(member)) this.queue.addSession(member, session);
  }

  /**
   * A member logged out: the session waits for nothing more here, and keeps no file of the group's
   * waiting: each member who uploaded one is told (their home keeps who must still fetch it).
   */
  async removeSession(member: string, sessionId: string): Promise<void> {
    const now = Date.now();
    this.queue.removeSession(member, sessionId);
    const owners = this.blobOwners.current(now).filter((owner) => owner !== member);
    if (owners.length === 0) return;
    const othersLive = (this.queue.liveSessions(now).get(member)?.length ?? 0) > 0;
    const results = await Promise.allSettled(
      owners.map((owner) => homeStub(this.env, owner).blobSessionEnded(member, sessionId, othersLive)),
    );
    for (const result of results)
      if (result.status === "rejected")
        console.error(
          `group ${this.groupName()}: telling a file's owner of an ended session failed`,
          result.reason,
        );
  }

  /**
   * A member uploads a file for the group: the other members, each with the live sessions the room knows
   * of them, are who must fetch it; the uploader is remembered until `until`, to be told of sessions that
   * end meanwhile. Invitees are not members: they send nothing to the group.
   */
  async blobHolders(requester: string, until: number): Promise<GroupResult<{ holders: BlobHolder[] }>> {
    if (!this.membership.exists()) return notFound();
    if (!this.membership.isMember(requester))
      return { ok: false, code: "forbidden", message: "you are not a member of this group" };
    await this.loadSessionsOnce();
    const now = Date.now();
    this.queue.removeExpiredSessions(now);
    const sessions = this.queue.liveSessions(now);
    this.blobOwners.record(requester, until);
    const holders = this.membership
      .memberNames()
      .filter((member) => member !== requester)
      .map((member) => ({ username: member, sessions: sessions.get(member) ?? [] }));
    return { ok: true, holders };
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

  /**
   * A room whose members joined before it queued messages asks their homes for their live sessions,
   * once; from then on joins, logins and logouts keep it current.
   */
  private async loadSessionsOnce(): Promise<void> {
    if (this.sessionsLoaded) return;
    this.sessionsLoading ??= (async () => {
      if (!this.queue.sessionsLoaded()) {
        const members = this.membership.memberNames();
        const sessions = await Promise.all(members.map((member) => homeStub(this.env, member).sessions()));
        members.forEach((member, i) => {
          if (!this.membership.isMember(member)) return;
          for (const session of sessions[i]!) this.queue.addSession(member, session);
        });
        this.queue.markSessionsLoaded();
      }
      this.sessionsLoaded = true;
    })().finally(() => (this.sessionsLoading = null));
    await this.sessionsLoading;
  }

  /**
   * A room whose members joined before it kept an audience asks their homes where their receiving sockets
   * are, once; from then on backlog opens, group changes and pushes keep it current.
   */
  private async fillAudienceOnce(): Promise<void> {
    if (this.audienceFilled) return;
    this.audienceFilling ??= (async () => {
      const members = this.membership.memberNames();
      const shards = await Promise.all(members.map((member) => homeStub(this.env, member).receivingShards()));
      members.forEach((member, i) => {
        for (const shard of shards[i]!) this.audience.join(shard, member);
      });
      this.audience.markFilled();
      this.audienceFilled = true;
    })().finally(() => (this.audienceFilling = null));
    await this.audienceFilling;
  }

  /** Stores the message once (synchronously), then pushes it to each shard of the audience. */
  private async storeAndPush(post: GroupPost, now: number): Promise<PostResult> {
    const slots = post.slots.map((slot) => ({ member: slot.recipient, slot: slot.bytes }));
    const stored = this.queue.store(post.sender, post.id, post.signed, slots, now, queueQuotas(this.env));
    if (!stored.ok) {
      const message = `${quotaMessage(stored.member, stored.breach)} (in group ${this.groupName()})`;
      return { ok: false, code: "quota_exceeded", message };
    }
    const { seq } = stored;
    const delivery: GroupDelivery = { seq, sender: post.sender, signed: post.signed, slots };
    // After the membership changes before this message have told the room their members' shards.
    await this.eventsInFlight;
    const { targets, generation } = this.audience.snapshot();
    const plan = planFanout(targets, this.relayAbove());
    this.ackWindowMs = ackWindowMs(targets.length);
    if (plan.route !== this.route) {
      this.route = plan.route;
      this.routeSwitched = Promise.allSettled([...this.pushesUnderWay]).then(() => undefined);
    }
    // Every message waits here, in the order stored, so none overtakes one waiting for a switch.
    await this.routeSwitched;
    const pushes =
      plan.route === "direct"
        ? eachAtMost(PUSHES_IN_FLIGHT, plan.targets, (target) => this.pushTo(target, delivery, generation))
        : eachAtMost(PUSHES_IN_FLIGHT, plan.relays, ({ bucket, targets: reached }) =>
            this.relayTo(bucket, reached, delivery, generation),
          ).then((perRelay) => perRelay.flat());
    this.pushesUnderWay.add(pushes);
    const reached = await pushes.finally(() => this.pushesUnderWay.delete(pushes));
    return { ok: true, status: reached.some(Boolean) ? "delivered" : "stored" };
  }

  /**
   * Sends a shard the message with the slots of the members placed there (every slot where that is not
   * known); whether it reached a member other than the sender.
   */
  private async pushTo(target: PushTarget, delivery: GroupDelivery, generation: number): Promise<boolean> {
    const slots = slotsFor(target, delivery);
    const sent = slots.length === delivery.slots.length ? delivery : { ...delivery, slots };
    let outcome: GroupPushOutcome | null = null;
    try {
      outcome = await this.shardPipes.submit(target.shard, sent);
    } catch (error) {
      console.error(`group ${this.groupName()}: push to ${target.shard} failed`, error);
    }
    return this.settle(target, slots, outcome, generation);
  }

  /** The same for the shards of one relay, in one call to it; whether each reached another member. */
  private async relayTo(
    bucket: number,
    targets: PushTarget[],
    delivery: GroupDelivery,
    generation: number,
  ): Promise<boolean[]> {
    const { seq, sender, signed } = delivery;
    const shards = targets.map((target) => ({ shard: target.shard, slots: slotsFor(target, delivery) }));
    let outcomes: RelayOutcome = shards.map(() => null);
    try {
      outcomes = await this.relayPipes.submit(String(bucket), { seq, sender, signed, shards });
    } catch (error) {
      console.error(`group ${this.groupName()}: relay ${bucket} failed`, error);
    }
    return targets.map((target, i) => this.settle(target, shards[i]!.slots, outcomes[i] ?? null, generation));
  }

  /**
   * A failed push (null) leaves the message queued and the shard in the audience; a shard's answer keeps
   * the audience true (Audience.settle). Whether it reached a member other than the sender.
   */
  private settle(
    target: PushTarget,
    slots: GroupDelivery["slots"],
    outcome: GroupPushOutcome | null,
    generation: number,
  ): boolean {
    if (!outcome) return false;
    const names = slots.map(({ member }) => member);
    this.audience.settle(target.shard, generation, names, outcome.absent, target.members === null);
    return outcome.reachedOther;
  }

  /** GROUP_RELAY_ABOVE_SHARDS: past this many shards in the audience, messages go through relays. */
  private relayAbove(): number {
    const raw = this.env.GROUP_RELAY_ABOVE_SHARDS;
    const value = raw === undefined || raw.trim() === "" ? Number.NaN : Number(raw);
    return Number.isInteger(value) && value >= 0 ? value : RELAY_ABOVE_SHARDS;
  }

  private groupName(): string {
    this.name ??= this.membership.nameIfOpen();
    return this.name ?? "?";
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
      invited: change.invited,
      admin: change.admin,
      at: Date.now(),
      statement: encodeBase64(change.statement.slice().buffer),
      signature: encodeBase64(change.signature.slice().buffer),
    };
    const data = utf8(JSON.stringify(event));
    // A departing member takes what they are still owed to their home, queued before the event.
    const departing = change.listUpdates.filter(([, joined]) => !joined).map(([member]) => member);
    for (const member of departing) this.audience.forget(member);
    const departures = departing.map((member) => this.handOver(member));
    const deliveries = change.notify.map((member) =>
      this.homePipes.submit(member, { sender: eventSender(name), id: event.id, kind: "event", data }),
    );
    // A member's home answers with where the member is connected now; a socket that connects meanwhile
    // either finds the group in the home's list (and opens its backlog here) or is in what it answers.
    const lists = change.listUpdates.map(async ([member, joined]) => {
      const { sessions, shards } = await homeStub(this.env, member).trackGroup(name, joined);
      if (!joined || !this.membership.isMember(member)) return;
      for (const session of sessions) this.queue.addSession(member, session);
      for (const shard of shards) this.audience.join(shard, member);
    });
    // Settled to nothing: keeping each change's results would nest every earlier change's in the next.
    this.eventsInFlight = Promise.allSettled([this.eventsInFlight, ...deliveries, ...lists]).then(
      () => undefined,
    );
    const ended = change.invitationsEnded.map((user) => homeStub(this.env, user).dropInvitation(name));
    // A joiner accepted the inviter's invitation: the inviter may add them to other groups at once.
    const consent = change.inviter
      ? [homeStub(this.env, change.inviter).recordCorrespondent(change.user)]
      : [];
    await Promise.all([...departures, ...deliveries, ...lists, ...ended, ...consent]);
    return { ok: true, info };
  }

  /** Queues a departing member's owed messages in their home, then forgets them here. */
  private async handOver(member: string): Promise<void> {
    const owed = this.queue.owedTo(member);
    await this.homePipes.submitAll(
      member,
      owed.map(({ sender, id, data }) => ({ sender, id, kind: "envelope" as const, data })),
    );
    const throughSeq = owed.length > 0 ? owed[owed.length - 1]!.seq : 0;
    this.queue.forgetMember(member, throughSeq, this.membership.isMember(member));
  }

  /**
   * Who a statement would make members without their signing (the users an add or a create names, the
   * creator aside: they sign it) and whom it invites. A join's newcomer signs it themselves.
   */
  private newcomers(
    signed: SignedStatement,
    lists: StatementLists,
  ): { members: string[]; invited: string[] } {
    const { action, by, user } = signed.statement;
    if (action === "create")
      return {
        members: [...new Set(lists.members ?? [])].filter((name) => name !== by),
        invited: [...new Set(lists.invited ?? [])],
      };
    if (action === "add") return { members: [user], invited: [] };
    if (action === "invite") return { members: [], invited: [user] };
    return { members: [], invited: [] };
  }

  /** Those of `users` who have never written to `signer`: one call to the signer's home for all. */
  private async withoutConsent(signer: string, users: string[]): Promise<string[]> {
    if (users.length === 0) return [];
    const consenting = new Set(await homeStub(this.env, signer).correspondentsAmong(users));
    return users.filter((name) => !consenting.has(name)).sort();
  }

  /**
   * Refuses a change that would take a user past MAX_GROUPS_PER_USER, as their home counts it: whoever
   * an add or a create makes a member (its creator too), or a joiner.
   */
  private async overGroupCap(
    joining: string[],
  ): Promise<{ ok: false; code: "conflict"; message: string } | null> {
    const newcomers = [...new Set(joining)];
    const capacities = await Promise.all(newcomers.map((name) => homeStub(this.env, name).groupCapacity()));
    const index = capacities.findIndex(({ groups, limit }) => groups >= limit);
    if (index < 0) return null;
    const { limit } = capacities[index]!;
    return {
      ok: false,
      code: "conflict",
      message: `${newcomers[index]} is in ${limit} groups already, the most one user may be in: they must leave one first`,
    };
  }

  /**
   * Takes a place for each invitation in its invitee's home (MAX_PENDING_INVITATIONS_PER_USER), all or
   * none: one that is refused gives back the others.
   */
  private async reserveInvitations(
    group: string,
    by: string,
    invitees: string[],
    at: number,
  ): Promise<{ ok: true; users: string[] } | { ok: false; code: "conflict"; message: string }> {
    const offers = await Promise.all(
      invitees.map((name) => homeStub(this.env, name).offerInvitation(group, by, at)),
    );
    const index = offers.findIndex((offer) => !offer.ok);
    if (index < 0) return { ok: true, users: invitees };
    await this.withdrawInvitations(
      group,
      invitees.filter((_, i) => offers[i]!.ok),
    );
    const refused = offers[index] as Extract<(typeof offers)[number], { ok: false }>;
    return {
      ok: false,
      code: "conflict",
      message: `${invitees[index]} has ${refused.pending} pending invitations, the most one user may have: they must join or decline some first`,
    };
  }

  /**
   * Gives back places taken for invitations that were not made. An invitee the room has invited all the
   * same (by another request, meanwhile or before) keeps theirs: that invitation is real.
   */
  private async withdrawInvitations(group: string, invitees: string[]): Promise<void> {
    const unmade = invitees.filter((name) => !this.membership.isInvited(name));
    await Promise.all(unmade.map((name) => homeStub(this.env, name).dropInvitation(group)));
  }

  private currentDigest(epoch: number, members: string[]): Uint8Array {
    if (this.digestCache?.epoch !== epoch) this.digestCache = { epoch, digest: membersDigest(members) };
    return this.digestCache.digest;
  }

  /** Names without an account, asked of the directory: no home is woken (or made) for a stranger. */
  private async missingUsers(usernames: string[]): Promise<string[]> {
    const existing = await existingNames(this.env, "user", usernames);
    return [...new Set(usernames)].filter((name) => !existing.has(name));
  }
}

/** The slots of the members placed on the target's shard, or every slot where that is not known. */
function slotsFor(target: PushTarget, delivery: GroupDelivery): GroupDelivery["slots"] {
  const { members } = target;
  return members ? delivery.slots.filter(({ member }) => members.has(member)) : delivery.slots;
}

function notFound(): { ok: false; code: "not_found"; message: string } {
  return { ok: false, code: "not_found", message: "no such group" };
}

/** Runs a membership check or change; a rule it breaks becomes the refusal, anything else is thrown. */
function ruleRefusal(run: () => unknown): { ok: false; code: GroupFailureCode; message: string } | null {
  try {
    run();
    return null;
  } catch (error) {
    if (error instanceof GroupRuleError) return { ok: false, code: error.code, message: error.message };
    throw error;
  }
}
