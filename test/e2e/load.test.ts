// Load: concurrent WebSocket users, each sending messages to a partner, across all shards. Zero lost,
// zero duplicated, each sender's order kept; the time it took is printed for the record (speed goals
// live in `npm run bench`). `npm test` runs a size that fits its time budget; `npm run soak` runs the
// full 1000 users × 100 messages through TELEPOUND_LOAD_USERS / TELEPOUND_LOAD_MESSAGES.

import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { WsUser, fakeEnvelope, signupUser } from "../support/ws-user.js";
import { OPERATOR_HEADERS } from "../support/operator-token.js";

const USERS = Number(process.env.TELEPOUND_LOAD_USERS ?? 200);
const MESSAGES = Number(process.env.TELEPOUND_LOAD_MESSAGES ?? 25);
/**
 * Uploads each sender keeps in flight: enough to pipeline, few enough to be a polite client. With many
 * users the total in flight is capped, so that no upload waits in the server's queues longer than the
 * client's answer timeout: a thousand users × 8 would queue 8,000 uploads on a 2-core machine.
 */
const WINDOW = Math.max(1, Math.min(8, Math.floor(1000 / USERS)));
/** The whole run's time limit grows with its size (about 300 messages/s on 2 cores at 1000 users). */
const TIME_LIMIT_MS = Math.max(600_000, USERS * MESSAGES * 10 + 180_000);

let server: LocalServer;

beforeAll(async () => {
  server = await startLocalServer({ vars: { SIGNUPS_PER_IP_PER_HOUR: "1000000" } });
}, 90_000);

afterAll(async () => {
  await server?.stop();
});

async function inBatches<T, R>(items: T[], size: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += size)
    results.push(...(await Promise.all(items.slice(i, i + size).map(work))));
  return results;
}

it(
  `${USERS} users × ${MESSAGES} messages: none lost, none doubled, order kept`,
  async () => {
    const run = randomBytes(3).toString("hex");
    const sessions = await inBatches(
      Array.from({ length: USERS }, (_, i) => `load-${run}-${i}`),
      25,
      (username) => signupUser(server.url, username),
    );
    const users = sessions.map((session) => new WsUser(server.url, session));
    await inBatches(users, 50, (user) => user.connect());
    await Promise.all(users.map((user) => user.waitFor((frame) => frame.type === "synced", 60_000)));
    const stats = (await (await fetch(`${server.url}/v1/stats`, { headers: OPERATOR_HEADERS })).json()) as {
      connections: Record<string, number>;
    };
    const loads = Object.values(stats.connections);
    expect(loads.length).toBeGreaterThan(1);

    // Everyone sends to the user half-way round the ring, so traffic crosses shards.
    const partner = (i: number) => users[(i + Math.floor(USERS / 2)) % USERS]!;
    const sent = new Map<string, string[]>();
    const started = Date.now();
    await Promise.all(
      users.map(async (user, i) => {
        const ids: string[] = [];
        sent.set(user.username, ids);
        const envelopes = await Promise.all(
          Array.from({ length: MESSAGES }, () => fakeEnvelope(user.username, partner(i).username, "load")),
        );
        // Sent in order; up to WINDOW answers outstanding.
        const pending: Array<Promise<unknown>> = [];
        for (const envelope of envelopes) {
          ids.push(envelope.id);
          pending.push(
            user.upload(envelope, 60_000).then((reply) => {
              if (reply.type !== "sent") throw new Error(`${user.username}: ${JSON.stringify(reply)}`);
            }),
          );
          if (pending.length >= WINDOW) await pending.shift();
        }
        await Promise.all(pending);
      }),
    );
    const accepted = Date.now() - started;
    const total = USERS * MESSAGES;
    await Promise.all(
      users.map((user) =>
        user.waitFor(() => user.receivedIds.length >= MESSAGES, 60_000).catch(() => undefined),
      ),
    );
    const delivered = Date.now() - started;

    users.forEach((user, i) => {
      const from = users[(i - Math.floor(USERS / 2) + USERS) % USERS]!;
      expect(user.receivedFrom.get(from.username), `${from.username} → ${user.username}`).toEqual(
        sent.get(from.username),
      );
      expect(user.receivedIds).toHaveLength(MESSAGES);
    });
    console.log(
      `load: ${total} messages from ${USERS} users over ${loads.length} shards (${loads.join("/")} sockets): ` +
        `accepted in ${accepted} ms, all delivered in ${delivered} ms (${Math.round((total / delivered) * 1000)} msg/s)`,
    );
    await inBatches(users, 100, (user) => user.close());
  },
  TIME_LIMIT_MS,
);
