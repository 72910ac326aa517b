// GroupRelay: the second hop of a large group's fan-out (group/fanout.ts). A room whose audience spans more
// shards than it can call per message sends each message to a few relays, `relay:<group>:<bucket>`, and
// each relay pushes it to its share of those shards, with each shard's slots as the room chose them.
//
// A relay stores nothing and decides nothing: what to send where comes from the room, and the shards'
// answers go back to it, so the room keeps its audience true. Order holds because a shard is always reached
// through the same relay, the room keeps one call in flight per relay, and a relay answers only once every
// push of a call is done, each through one ordered pipe per shard.

import { DurableObject } from "cloudflare:workers";
import type { GroupDelivery, GroupPushOutcome, RelayOutcome, RelayedDelivery } from "./contracts.js";
import { eachAtMost } from "./each-at-most.js";
import { PUSHES_IN_FLIGHT } from "./group/fanout.js";
import { shardStub } from "./names.js";
import { OrderedBatcher, OrderedBatchers } from "./ordered-batcher.js";

export class GroupRelay extends DurableObject<Env> {
  /** The acknowledgement window the room asked for with its latest call (group/fanout.ts ackWindowMs). */
  private ackWindowMs = 0;
  private readonly shardPipes = new OrderedBatchers<GroupDelivery, GroupPushOutcome>(
    (shard) =>
      new OrderedBatcher((batch) =>
        shardStub(this.env, shard).pushGroup(this.group(), batch, this.ackWindowMs),
      ),
  );

  /**
   * Pushes a batch of one group's messages, in the order stored, to the shards each names; answers for each
   * message what each of its shards did, in the order given.
   */
  async relay(ackWindowMs: number, deliveries: RelayedDelivery[]): Promise<RelayOutcome[]> {
    this.ackWindowMs = ackWindowMs;
    // Each shard's messages go as one call: one per shard per batch, in the order stored.
    const byShard = new Map<string, Array<{ index: number; position: number; delivery: GroupDelivery }>>();
    deliveries.forEach(({ seq, sender, signed, shards }, index) =>
      shards.forEach(({ shard, slots }, position) => {
        const list = byShard.get(shard) ?? [];
        list.push({ index, position, delivery: { seq, sender, signed, slots } });
        byShard.set(shard, list);
      }),
    );
    const outcomes: RelayOutcome[] = deliveries.map(({ shards }) => shards.map(() => null));
    await eachAtMost(PUSHES_IN_FLIGHT, [...byShard], async ([shard, items]) => {
      try {
        const results = await this.shardPipes.submitAll(
          shard,
          items.map(({ delivery }) => delivery),
        );
        items.forEach(({ index, position }, i) => (outcomes[index]![position] = results[i]!));
      } catch (error) {
        // Left null: the room keeps the message queued for the members there, as for a direct push.
        console.error(`${this.ctx.id.name}: push to ${shard} failed`, error);
      }
    });
    return outcomes;
  }

  /** The group this relay serves, from its name `relay:<group>:<bucket>`. */
  private group(): string {
    return /^relay:(.+):\d+$/.exec(this.ctx.id.name ?? "")?.[1] ?? "?";
  }
}
