// Which shards one balancer keeps open, and which one takes the next connection. Pure policy, no I/O: the
// balancer object (../load-balancer.ts) feeds it the shards' reports and persists what it decides.
//
// A shard is "open" (it takes new connections) or "draining" (it takes none, and its sockets leave as their
// users reconnect elsewhere); a draining shard that reports no sockets is closed, and forgotten. Opening and
// draining use different thresholds, so a load near one of them does not make shards flap:
// - a shard opens (a draining one first, since it already holds sockets) when every open shard is at its
//   target, in connections or in frames per second, whichever is fuller;
// - the least-loaded open shard drains when the others could carry its load and stay under DRAIN_BELOW of
//   their target.

/** The bounds and targets, from the Worker's settings (wrangler.toml [vars], worker/shard-policy.ts). */
export interface ShardPolicy {
  /** Shards kept open however low the load. At least 1. */
  min: number;
  /** Shards (open and draining together) never exceeded: past it the least-loaded open shard is overfilled. */
  max: number;
  /** Live sockets a shard is filled to before another opens. */
  connections: number;
  /** Frames per second from clients a shard takes before another opens. */
  framesPerSecond: number;
}

/** What a shard says of itself (server-shard.ts reportLoad). */
export interface ShardLoad {
  connections: number;
  framesPerSecond: number;
  /**
   * The highest assignment ticket among the sockets the shard has accepted since it woke (0: none). The
   * balancer counts the tickets it issued after it as connections on their way, which a report sent
   * before they arrived cannot include.
   */
  ticket: number;
}

export type ShardState = "open" | "draining";

/** Drain a shard only if the rest stay under this share of their target with its load. */
export const DRAIN_BELOW = 0.5;
/**
 * A frame rate this old is forgotten: a busy shard reports at least once a second (LOAD_REPORT_INTERVAL_MS
 * in server-shard.ts), so a shard that stopped reporting has stopped receiving frames.
 */
export const RATE_REPORT_TTL_MS = 5_000;
/**
 * A ticket no report has covered for this long is taken as a connection that never arrived (a refused
 * session, a client gone before the upgrade): it stops counting, so a shard's estimate cannot only grow.
 */
export const TICKET_TTL_MS = 10_000;
/**
 * A user's next socket goes to the shard their last one went to while it is open and under its target:
 * a user's sockets then share one shard's frame budget (FloodControl is per user and shard), so opening
 * sockets cannot multiply it by the number of shards, and their messages are pushed to one shard, not
 * several. Past the target the next goes by load like anyone's, so returning users never overfill a shard.
 */
export const STICKY_BELOW = 1;

interface Entry {
  state: ShardState;
  /** As last reported: sockets the shard holds. */
  connections: number;
  framesPerSecond: number;
  rateReportedAt: number;
  /** Tickets issued and not yet covered by a report, oldest first, with when they were issued. */
  pending: Array<{ ticket: number; at: number }>;
  lastTicket: number;
  /** When it was last given a connection, in the pool's count of assignments (0: never). */
  assignedAt: number;
  /** Whether it has ever reported: until then the object may not exist. */
  reported: boolean;
}

function newEntry(state: ShardState): Entry {
  return {
    state,
    connections: 0,
    framesPerSecond: 0,
    rateReportedAt: 0,
    pending: [],
    lastTicket: 0,
    assignedAt: 0,
    reported: false,
  };
}

/** A change the balancer persists. */
export type PoolChange = { shard: string; state: ShardState | "closed" };

export class ShardPool {
  private readonly entries = new Map<string, Entry>();
  private assignments = 0;

  /** The pool as persisted: each shard's state, its load unknown (zero) until it reports. */
  constructor(
    stored: Iterable<{ shard: string; state: ShardState }>,
    private readonly nameOf: (index: number) => string,
  ) {
    for (const { shard, state } of stored) this.entries.set(shard, newEntry(state));
  }

  get size(): number {
    return this.entries.size;
  }

  /** Each shard's state and load: reported sockets plus those on their way. */
  shards(
    now: number,
  ): Array<{ shard: string; state: ShardState; connections: number; framesPerSecond: number }> {
    return [...this.entries].map(([shard, entry]) => ({
      shard,
      state: entry.state,
      connections: this.connections(entry, now),
      framesPerSecond: this.rate(entry, now),
    }));
  }

  /**
   * The shard for one more connection, counted against it at once so that a burst of connects spreads out
   * before any shard has reported. `changes` lists a shard opened or reopened for it.
   */
  assign(
    policy: ShardPolicy,
    now: number,
    preferred?: string,
  ): { shard: string; ticket: number; unreported: boolean; changes: PoolChange[] } {
    const changes: PoolChange[] = [];
    let open = this.open();
    // The bounds may have been raised since the pool was last used, or this is its first connection.
    while (open.length < policy.min) {
      changes.push(this.openOne());
      open = this.open();
    }
    const sticky = preferred === undefined ? undefined : this.entries.get(preferred);
    if (sticky?.state === "open" && this.fullness(sticky, policy, now) < STICKY_BELOW)
      return {
        shard: preferred!,
        ticket: this.issueTicket(sticky, now),
        unreported: !sticky.reported,
        changes,
      };
    let best = this.leastLoaded(open, policy, now);
    if (this.fullness(best[1], policy, now) >= 1 && this.entries.size < policy.max) {
      changes.push(this.openOne());
      best = this.leastLoaded(this.open(), policy, now);
    } else if (this.fullness(best[1], policy, now) >= 1) {
      // At the bound: a draining shard still beats an overfilled one if it has room.
      const draining = this.draining().filter(([, entry]) => this.fullness(entry, policy, now) < 1);
      if (draining.length > 0) {
        const [shard] = this.leastLoaded(draining, policy, now);
        this.entries.get(shard)!.state = "open";
        changes.push({ shard, state: "open" });
        best = this.leastLoaded(this.open(), policy, now);
      }
    }
    return { shard: best[0], ticket: this.issueTicket(best[1], now), unreported: !best[1].reported, changes };
  }

  private issueTicket(entry: Entry, now: number): number {
    entry.assignedAt = ++this.assignments;
    const ticket = ++entry.lastTicket;
    entry.pending.push({ ticket, at: now });
    return ticket;
  }

  /** A shard's own count, authoritative. False for a shard this pool closed (or never had). */
  record(shard: string, load: ShardLoad, now: number): boolean {
    const entry = this.entries.get(shard);
    if (!entry) return false;
    entry.connections = load.connections;
    entry.framesPerSecond = load.framesPerSecond;
    entry.rateReportedAt = now;
    entry.reported = true;
    entry.pending = entry.pending.filter(({ ticket }) => ticket > load.ticket);
    // A balancer that restarted issues tickets after the shard's highest, never ones it already counted.
    entry.lastTicket = Math.max(entry.lastTicket, load.ticket);
    return true;
  }

  /** After a report: closes the draining shards that are empty, and drains one surplus shard. */
  settle(policy: ShardPolicy, now: number): PoolChange[] {
    const changes: PoolChange[] = [];
    for (const [shard, entry] of this.draining())
      if (this.empty(entry, now)) {
        this.entries.delete(shard);
        changes.push({ shard, state: "closed" });
      }
    const surplus = this.surplus(policy, now);
    if (surplus) {
      surplus.entry.state = "draining";
      changes.push({ shard: surplus.shard, state: "draining" });
      if (this.empty(surplus.entry, now)) {
        this.entries.delete(surplus.shard);
        changes.push({ shard: surplus.shard, state: "closed" });
      }
    }
    return changes;
  }

  /** The least-loaded open shard, if the other open shards can take its load and stay under DRAIN_BELOW. */
  private surplus(policy: ShardPolicy, now: number): { shard: string; entry: Entry } | null {
    const open = this.open();
    if (open.length <= Math.max(1, policy.min)) return null;
    const [shard, entry] = this.leastLoaded(open, policy, now);
    const rest = open.length - 1;
    const connections = open.reduce((sum, [, e]) => sum + this.connections(e, now), 0);
    const frames = open.reduce((sum, [, e]) => sum + this.rate(e, now), 0);
    const fits =
      connections <= rest * policy.connections * DRAIN_BELOW &&
      frames <= rest * policy.framesPerSecond * DRAIN_BELOW;
    return fits ? { shard, entry } : null;
  }

  /** Reopens a draining shard (it already holds sockets) or opens the lowest free index. */
  private openOne(): PoolChange {
    const draining = this.draining();
    if (draining.length > 0) {
      // The fullest: the one whose sockets would otherwise take longest to leave.
      const [shard, entry] = draining.reduce((a, b) => (b[1].connections > a[1].connections ? b : a));
      entry.state = "open";
      return { shard, state: "open" };
    }
    let index = 0;
    while (this.entries.has(this.nameOf(index))) index++;
    const shard = this.nameOf(index);
    this.entries.set(shard, newEntry("open"));
    return { shard, state: "open" };
  }

  /** No sockets, and none on their way. */
  private empty(entry: Entry, now: number): boolean {
    return this.connections(entry, now) === 0;
  }

  /** Reported sockets, plus the tickets issued since that have not expired. */
  private connections(entry: Entry, now: number): number {
    while (entry.pending.length > 0 && now - entry.pending[0]!.at > TICKET_TTL_MS) entry.pending.shift();
    return entry.connections + entry.pending.length;
  }

  private open(): Array<[string, Entry]> {
    return [...this.entries].filter(([, entry]) => entry.state === "open");
  }

  private draining(): Array<[string, Entry]> {
    return [...this.entries].filter(([, entry]) => entry.state === "draining");
  }

  /**
   * Ties go to the shard given a connection least recently, then to the name first in numeric order: in a
   * quiet pool, where sockets come and go one at a time and every shard is as empty as the next, users
   * still spread over the shards (and, returning to their last one, stay spread).
   */
  private leastLoaded(candidates: Array<[string, Entry]>, policy: ShardPolicy, now: number): [string, Entry] {
    return candidates.reduce((a, b) => {
      const difference = this.fullness(b[1], policy, now) - this.fullness(a[1], policy, now);
      if (difference !== 0) return difference < 0 ? b : a;
      if (a[1].assignedAt !== b[1].assignedAt) return b[1].assignedAt < a[1].assignedAt ? b : a;
      return b[0].localeCompare(a[0], "en", { numeric: true }) < 0 ? b : a;
    });
  }

  /** How full a shard is against its target: 1 is at target, in whichever measure is fuller. */
  private fullness(entry: Entry, policy: ShardPolicy, now: number): number {
    return Math.max(
      this.connections(entry, now) / policy.connections,
      this.rate(entry, now) / policy.framesPerSecond,
    );
  }

  private rate(entry: Entry, now: number): number {
    return now - entry.rateReportedAt <= RATE_REPORT_TTL_MS ? entry.framesPerSecond : 0;
  }
}
