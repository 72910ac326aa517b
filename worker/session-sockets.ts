// Closing an ended session's sockets where they are: logout, a revoke and the session cap all end a
// session at its home, which answers with the shards that hold that session's sockets (receiving and
// send-only: home/presence.ts), and each of those shards closes them with 4401 and the reason.

import { shardStub } from "../durable-objects/names.js";

/** Close reasons the client shows with 4401 (at most 123 bytes, as close frames allow). */
export const CLOSE_REASONS = {
  logout: "logged out",
  revoked: "revoked from another device",
  sessionCap: "ended: a login elsewhere reached the session limit",
} as const;

export async function closeSessionSockets(
  env: Env,
  username: string,
  sessionId: string,
  shards: string[],
  reason: string,
): Promise<void> {
  await Promise.all(shards.map((shard) => shardStub(env, shard).closeSession(username, sessionId, reason)));
}
