// Faults: workerd is stopped and started again (on its persisted state) in the middle of traffic.
// Clients reconnect by themselves and resend what was not confirmed; every message the server accepted
// reaches its recipient, once after de-duplication by id, and in each sender's order.

import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { WsUser, fakeEnvelope, signupUser } from "../support/ws-user.js";

const PAIRS = 10;
const MESSAGES = 60;

let server: LocalServer;

beforeAll(async () => {
  server = await startLocalServer();
}, 90_000);

afterAll(async () => {
  await server?.stop();
});

/** Keeps a user connected: reconnects with back-off whenever the socket drops, until told to stop. */
async function connectWithRetry(user: WsUser, stopped: () => boolean): Promise<void> {
  let delay = 100;
  while (!stopped()) {
    try {
      await user.connect();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }
}

it("loses nothing when the server restarts mid-traffic", async () => {
  const run = randomBytes(3).toString("hex");
  const senders = await Promise.all(
    Array.from(
      { length: PAIRS },
      async (_, i) => new WsUser(server.url, await signupUser(server.url, `tx-${run}-${i}`)),
    ),
  );
  const receivers = await Promise.all(
    Array.from(
      { length: PAIRS },
      async (_, i) => new WsUser(server.url, await signupUser(server.url, `rx-${run}-${i}`)),
    ),
  );
  let done = false;

  // Receivers: stay connected, acknowledge what they get (WsUser does), reconnect after the restart.
  const listening = receivers.map(async (receiver) => {
    while (!done) {
      if (!receiver.open) await connectWithRetry(receiver, () => done);
      await receiver.nextEvent(200);
    }
  });

  // Senders: each message is resent (same envelope, same id) until the server confirms it.
  const accepted = new Map<string, string[]>();
  const sending = senders.map(async (sender, i) => {
    const ids: string[] = [];
    accepted.set(sender.username, ids);
    for (let m = 0; m < MESSAGES; m++) {
      const envelope = await fakeEnvelope(sender.username, receivers[i]!.username, `m${m}`);
      for (;;) {
        if (!sender.open) await connectWithRetry(sender, () => false);
        try {
          const reply = await sender.upload(envelope, 5_000);
          if (reply.type === "sent") break;
          throw new Error(`refused: ${JSON.stringify(reply)}`);
        } catch (error) {
          if (String(error).includes("refused")) throw error;
          // Closed or timed out: the server may or may not have stored it; resending is safe.
        }
      }
      ids.push(envelope.id);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });

  // Restart while messages are in flight.
  await new Promise((resolve) => setTimeout(resolve, 400));
  const before = [...accepted.values()].reduce((n, ids) => n + ids.length, 0);
  await server.restart();
  await Promise.all(sending);
  const total = PAIRS * MESSAGES;
  expect(before).toBeGreaterThan(0);
  expect(before).toBeLessThan(total);

  // Everything accepted arrives: once after de-duplication, in each sender's order.
  const deadline = Date.now() + 60_000;
  const complete = () =>
    receivers.every(
      (receiver, i) => new Set(receiver.receivedFrom.get(senders[i]!.username) ?? []).size >= MESSAGES,
    );
  while (!complete() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  done = true;
  await Promise.all(listening);
  let duplicates = 0;
  receivers.forEach((receiver, i) => {
    const got = receiver.receivedFrom.get(senders[i]!.username) ?? [];
    const firstSeen = [...new Set(got)];
    duplicates += got.length - firstSeen.length;
    expect(firstSeen, `${senders[i]!.username} → ${receiver.username}`).toEqual(
      accepted.get(senders[i]!.username),
    );
  });
  console.log(
    `restart with ${total - before} of ${total} messages still to send: all delivered; ${duplicates} redelivered duplicates dropped by id`,
  );
  await Promise.all([...senders, ...receivers].map((user) => user.close()));
}, 240_000);
