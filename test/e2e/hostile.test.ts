// Hostile input over real WebSockets: more than 10,000 malformed, truncated, oversized, wrong-typed and
// unknown frames (binary where text is expected and the reverse). Each gets an error frame, or a close
// with a documented code; the shard keeps serving; other users' traffic in the same run is unaffected
// and loses nothing.

import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { WsUser, fakeEnvelope, signupUser } from "../support/ws-user.js";

let server: LocalServer;

beforeAll(async () => {
  // Flood control would (rightly) refuse a fuzzer this fast; raise it so every frame reaches validation.
  server = await startLocalServer({ vars: { MESSAGES_PER_USER_PER_SECOND: "1000000" } });
}, 90_000);

afterAll(async () => {
  await server?.stop();
});

const name = (label: string) => `${label}-${randomBytes(4).toString("hex")}`;

/** Frames every one of which the server must refuse. Built from valid ones by breaking them. */
async function hostileCorpus(
  sender: string,
  recipient: string,
  count: number,
): Promise<Array<string | Uint8Array>> {
  const valid = (await fakeEnvelope(sender, recipient, "x".repeat(40))).frame;
  const spoofed = (await fakeEnvelope(recipient, sender)).frame;
  const textCases: string[] = [
    "",
    "not json",
    "{",
    "null",
    "42",
    '"ack"',
    "[]",
    "{}",
    '{"type":1}',
    '{"type":"nope"}',
    '{"type":"ack"}',
    '{"type":"ack","ids":"abc"}',
    '{"type":"ack","ids":[]}',
    `{"type":"ack","ids":["${"g".repeat(32)}"]}`,
    `{"type":"ack","ids":["${"a".repeat(31)}"]}`,
    `{"type":"ack","ids":[${JSON.stringify("a".repeat(32))}],"extra":true}`,
    JSON.stringify({ type: "ack", ids: Array.from({ length: 1001 }, () => "a".repeat(32)) }),
    '{"type":"ping","x":1}',
    '{"type":"welcome","user":"me"}',
    "[".repeat(100_000),
    JSON.stringify({ type: "ack", ids: ["a".repeat(200_000)] }),
    "\u0000\u0001\u0002",
    "\ud800",
  ];
  const binaryCases: Uint8Array[] = [
    new Uint8Array(0),
    Uint8Array.of(0x01),
    Uint8Array.of(0x02, ...valid.subarray(1)),
    Uint8Array.of(0x7f, ...valid.subarray(1)),
    spoofed,
    Uint8Array.of(...valid, 0),
  ];
  const frames: Array<string | Uint8Array> = [...textCases, ...binaryCases];
  while (frames.length < count) {
    const pick = frames.length % 4;
    if (pick === 0) {
      // A valid upload cut short anywhere.
      frames.push(valid.slice(0, 1 + Math.floor(Math.random() * (valid.length - 1))));
    } else if (pick === 1) {
      // Random bytes, sometimes behind the upload tag so they get past the first check.
      const junk = randomBytes(1 + Math.floor(Math.random() * 600));
      if (Math.random() < 0.5) junk[0] = 0x01;
      frames.push(new Uint8Array(junk));
    } else if (pick === 2) {
      // A header field corrupted: version, kind, a length or a name byte.
      const broken = valid.slice();
      const offsets = [1, 2, 35, 36, 38, 39];
      const offset = offsets[Math.floor(Math.random() * offsets.length)]!;
      broken[offset] = broken[offset]! ^ (1 + Math.floor(Math.random() * 255));
      frames.push(broken);
    } else {
      // Random text, JSON-ish or not.
      const text = randomBytes(1 + Math.floor(Math.random() * 200)).toString(
        Math.random() < 0.5 ? "base64" : "latin1",
      );
      frames.push(Math.random() < 0.5 ? text : `{"type":"ack","ids":${JSON.stringify([text])}}`);
    }
  }
  return frames;
}

describe("hostile frames", () => {
  it("answers 10,000+ bad frames with errors while other users' traffic flows untouched", async () => {
    const fuzzers = await Promise.all(
      Array.from(
        { length: 4 },
        async (_, i) => new WsUser(server.url, await signupUser(server.url, name(`fuzz${i}`))),
      ),
    );
    const alice = new WsUser(server.url, await signupUser(server.url, name("alice")));
    const bob = new WsUser(server.url, await signupUser(server.url, name("bob")));
    for (const user of [...fuzzers, alice, bob]) await user.connect();
    await bob.waitFor((frame) => frame.type === "synced");

    // Alice keeps messaging Bob for the whole run.
    const sentIds: string[] = [];
    let fuzzing = true;
    const traffic = (async () => {
      while (fuzzing || sentIds.length < 50) {
        const envelope = await fakeEnvelope(alice.username, bob.username, "hello");
        const reply = await alice.upload(envelope);
        expect(reply).toMatchObject({ type: "sent", status: "delivered" });
        sentIds.push(envelope.id);
      }
    })();

    let answered = 0;
    await Promise.all(
      fuzzers.map(async (fuzzer) => {
        const corpus = await hostileCorpus(fuzzer.username, bob.username, 2600);
        for (const frame of corpus) {
          const from = fuzzer.frames.length;
          fuzzer.send(frame);
          const reply = await fuzzer.waitFor(() => true, 10_000, from);
          expect(reply.type, `reply to ${describeFrame(frame)}`).toBe("error");
          answered++;
        }
      }),
    );
    fuzzing = false;
    await traffic;
    expect(answered).toBeGreaterThanOrEqual(10_000);

    // Nothing lost, nothing doubled, order kept.
    await bob.waitFor(() => bob.receivedIds.length >= sentIds.length, 20_000).catch(() => undefined);
    expect(bob.receivedIds).toEqual(sentIds);
    // The fuzzers' own sockets still work.
    const after = await fakeEnvelope(fuzzers[0]!.username, bob.username);
    expect(await fuzzers[0]!.upload(after)).toMatchObject({ type: "sent" });
    for (const user of [...fuzzers, alice, bob]) await user.close();
  }, 180_000);

  it("refuses a frame over the size limit with too_large and keeps the socket serving", async () => {
    const mallory = new WsUser(server.url, await signupUser(server.url, name("big")));
    const carol = new WsUser(server.url, await signupUser(server.url, name("carol")));
    await mallory.connect();
    await carol.connect();
    for (const frame of [new Uint8Array(2 * 1024 * 1024).fill(1), "x".repeat(2 * 1024 * 1024)]) {
      const from = mallory.frames.length;
      mallory.send(frame);
      expect(await mallory.waitFor(() => true, 10_000, from)).toMatchObject({
        type: "error",
        code: "too_large",
      });
    }
    const envelope = await fakeEnvelope(mallory.username, carol.username);
    expect(await mallory.upload(envelope)).toMatchObject({ type: "sent", status: "delivered" });
    await carol.waitFor((frame) => frame.type === "binary");
    await mallory.close();
    await carol.close();
  });
});

function describeFrame(frame: string | Uint8Array): string {
  return typeof frame === "string"
    ? `text(${frame.length}) ${JSON.stringify(frame.slice(0, 60))}`
    : `binary(${frame.length})`;
}
