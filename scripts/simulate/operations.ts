// What one operation costs the platform: the calls each kind of object receives and the SQLite rows it
// writes and reads, listed from the code path named beside each entry. The home's row counts for a 1:1
// message, a login and a connect are the ones test/worker/simulate-counts.test.ts measures in a real run (summed
// from the SQLite cursors' rowsWritten/rowsRead): they are above the statement list because the cursors
// also count index entries and trigger rows, and the test fails if the code and this table part.

import { RELAY_ABOVE_SHARDS, RELAY_BUCKETS } from "../../durable-objects/group/fanout.js";

export type ObjectKind =
  "worker" | "balancer" | "shard" | "home" | "room" | "relay" | "directory" | "throttle";

export interface OperationCost {
  /** Billed Worker requests (HTTP requests and WebSocket upgrades reaching the Worker). */
  workerRequests: number;
  /** RPC calls and HTTP requests received, per kind of object. */
  calls: Partial<Record<ObjectKind, number>>;
  /** Incoming WebSocket messages, per kind of object (billed 20:1). */
  webSocketMessages: Partial<Record<ObjectKind, number>>;
  rowsWritten: Partial<Record<ObjectKind, number>>;
  rowsRead: Partial<Record<ObjectKind, number>>;
}

/**
 * A 1:1 message between two users online on different shards, one session each, acknowledged live.
 * - upload frame → sender's shard (server-shard.ts webSocketMessage): 1 WebSocket message
 * - shard → recipient home `deliver` (server-shard.ts deliveryPipes; batched, 1 per message when not busy)
 *   - home/queue.ts store: INSERT messages (1) and its (id, sender) key (1); INSERT deliveries per live
 *     session (1); home/correspondents.ts record: INSERT OR IGNORE (1 when new, 0 after). The quota
 *     counts are in memory (home/queue-usage.ts), so no row moves for them
 *   - the duplicate check, live sessions, presence
 * - home → recipient's shard `push` (user-home.ts pushTo): 1 call
 * - ack frame → recipient's shard: 1 WebSocket message; shard → home `acknowledgeLive` (homeAckPipes,
 *   10 ms linger): 1 call; home/queue.ts: DELETE deliveries (1), DELETE messages (1) and its key (1)
 * - the directory is not asked: names are remembered per isolate (known-names.ts)
 */
export const DIRECT_MESSAGE: OperationCost = {
  workerRequests: 0,
  calls: { home: 2, shard: 1 },
  webSocketMessages: { shard: 2 },
  rowsWritten: { home: 6 },
  rowsRead: { home: 15 },
};

/**
 * A group message to `members` members, each online with one session, spread over `shards` shards (the
 * shards that hold at least one member: no other shard is called).
 * - upload → sender's shard: 1 WebSocket message; shard → room `post` (groupPipes): 1 call
 * - group/queue.ts store: INSERT posts (1), INSERT slots per member
 * - room → each shard of its audience `pushGroup` (group-room.ts storeAndPush → group/audience.ts): the
 *   `shards` that hold members' receiving sockets; the model takes min(shards, members). A shard joining
 *   or leaving the audience writes a row then, not per message. Past RELAY_ABOVE_SHARDS shards the room
 *   calls the group's relays instead (group/fanout.ts), one `relay` call each, and they push to the shards
 * - each member's ack → its shard: `members` WebSocket messages; shard → room `acknowledge` (groupAckPipes,
 *   gathered over the window the room asks for): at most 1 call per shard per message, fewer when the room
 *   is busy; UPDATE the acknowledging sessions' cursors in one statement; once every member is past the
 *   message, DELETE its slots and its post
 * The room's rows are measured (test/worker/simulate-counts.test.ts), every member acknowledging so that
 * the message leaves: 8 + 3 per member written and 14 + 8 per member read, fitted on 2 and 3 members and
 * holding at 5.
 */
export function groupMessage(members: number, shards: number): OperationCost {
  const relays = shards > RELAY_ABOVE_SHARDS ? Math.min(RELAY_BUCKETS, shards) : 0;
  return {
    workerRequests: 0,
    calls: { room: 1 + shards, shard: shards, ...(relays > 0 ? { relay: relays } : {}) },
    webSocketMessages: { shard: 1 + members },
    rowsWritten: { room: 8 + 3 * members },
    rowsRead: { room: 14 + 8 * members },
  };
}

/**
 * POST /v1/sessions (worker/routes/accounts.ts): 1 Worker request; throttle `hit` (worker/rate-limit.ts);
 * directory `known` unless the isolate remembers the name (counted at `directoryMissRate` by the model);
 * home `login` (home/account.ts): INSERT sessions (1), UPSERT login_addresses (1), DELETE old
 * login_failures (0 rows when none), INSERT deliveries for the stored queue (adoptAllFor: 0 when empty).
 */
export const LOGIN: OperationCost = {
  workerRequests: 1,
  calls: { throttle: 1, home: 1, directory: 1 },
  webSocketMessages: {},
  rowsWritten: { home: 3, throttle: 1 },
  rowsRead: { home: 17, throttle: 1 },
};

/**
 * GET /v1/connect and the close that ends it (worker/routes/connect.ts, server-shard.ts):
 * 1 Worker request; directory `known` unless remembered; balancer `assign` (load-balancer.ts); the shard's
 * upgrade `fetch`; home `attachSocket` (presence UPSERT 1, sessions last_seen UPDATE 1); balancer `report`
 * once per burst (LOAD_REPORT_DELAY_MS) after the open and after the close; home `detachSocket` on close
 * (presence UPDATE 1, DELETE emptied 1).
 */
export const CONNECT: OperationCost = {
  workerRequests: 1,
  calls: { directory: 1, balancer: 3, shard: 1, home: 2 },
  webSocketMessages: {},
  rowsWritten: { home: 4 },
  rowsRead: { home: 9 },
};
