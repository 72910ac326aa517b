// Attacks on delivery order by a malicious server, against the real CLI through the harness: an old
// message replayed after 30,000 others (past what seen.json remembers), a message withheld, and two
// messages swapped. Each sender device numbers its messages per conversation inside the signed
// ciphertext, so the receiver refuses the replay, reports the gap and marks the late arrival.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeDelivery } from "../../protocol/envelope.js";
import type { UserResponse } from "../../protocol/http.js";
import {
  type ExportedIdentity,
  SenderKeyring,
  fingerprint,
  importIdentity,
  importPublicKeys,
  sealMessage,
} from "../../client/crypto/index.js";
import { nodeHome } from "../../cli-client/platform/node-home.js";
import { BenchClient, FailureWatch } from "../../bench/lib/client.js";
import { CliProcess, type CliUser, cliOk, jsonLines, newHome } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { type Frame, type MaliciousServer, startMaliciousServer } from "../support/malicious-server.js";

/** Messages shown between the original and its replay: more than seen.json's 20,000 ids. */
const FILLER_MESSAGES = 30_000;
/** Uploads the scripted sender keeps in flight. */
const UPLOAD_WINDOW = 500;

let server: LocalServer;
let proxy: MaliciousServer;
let alice: CliUser;
let bob: CliUser;

beforeAll(async () => {
  // The scripted sender uploads 30,000 messages as fast as it can: the flood control would pace it, and
  // the queue quotas (2,000 messages or 8 MiB from one sender) would refuse most of them.
  server = await startLocalServer({
    vars: {
      MESSAGES_PER_USER_PER_SECOND: "1000000",
      QUEUE_ITEMS_PER_RECIPIENT: "100000",
      QUEUE_ITEMS_PER_SENDER: "100000",
      QUEUE_BYTES_PER_RECIPIENT: "1000000000",
      QUEUE_BYTES_PER_SENDER: "1000000000",
    },
  });
  proxy = await startMaliciousServer(server.url);
  alice = { home: newHome("alice"), server: proxy.url, password: "alice-password-1" };
  bob = { home: newHome("bob"), server: proxy.url, password: "bob-password-12" };
  await cliOk(alice, ["signup", "alice"]);
  await cliOk(bob, ["signup", "bob"]);
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
});

/** Runs `inbox --json` for `user` to its end (no output limit: the backlog may be long). */
async function inbox(user: CliUser, timeoutMs = 60_000) {
  const run = new CliProcess(user, ["inbox", "--json"]);
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    run.exited,
    new Promise<number>((_, reject) => {
      timer = setTimeout(() => {
        run.child.kill("SIGKILL");
        reject(new Error(`inbox took over ${timeoutMs} ms; stderr: ${run.stderr.slice(-2000)}`));
      }, timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  if (code !== 0) throw new Error(`inbox exited ${code}: ${run.stderr.slice(-2000)}`);
  const warnings = jsonLines(run.stderr).map((line) => String(line.warning));
  return { shown: jsonLines(run.stdout), warnings };
}

/** A delivery frame's sender and message id, or null for a text frame. */
function delivery(frame: Frame): { sender: string; id: string } | null {
  if (typeof frame === "string" || frame[0] !== 0x02) return null;
  const envelope = decodeDelivery(frame);
  return { sender: envelope.header.sender, id: envelope.messageIdHex };
}

/**
 * A real sender outside the CLI: a user signed up by the CLI straight on the server, whose keys and
 * token are read from its home, sealing genuine messages (real keys, real signatures, one device
 * numbering them 1, 2, 3…) with the CLI's own crypto and uploading them over a socket of its own.
 */
async function scriptedSender(name: string) {
  const user: CliUser = { home: newHome(name), server: server.url, password: `${name}-password-1` };
  await cliOk(user, ["signup", name]);
  const home = nodeHome(user.home);
  // A CLI home keeps its private keys in identity.json (it has no key vault).
  const identity = await importIdentity((await home.read("identity.json"))!.keys as ExportedIdentity);
  const token = (await home.read("session.json"))!.token;
  const watch = new FailureWatch(name);
  const client = await BenchClient.open({ origin: server.url, token, receive: false, watch });
  const keyring = new SenderKeyring();
  const deviceId = new Uint8Array(16).fill(0x5e);
  return {
    watch,
    /** Seals and uploads `count` messages to `to`, UPLOAD_WINDOW at a time; resolves once all are stored. */
    async sendMany(to: string, count: number): Promise<void> {
      const answer = await fetch(`${server.url}/v1/users/${to}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const { publicKeys } = (await answer.json()) as UserResponse;
      const recipient = {
        username: to,
        encryptionKey: (await importPublicKeys(publicKeys)).encryption,
        fingerprint: fingerprint(publicKeys),
      };
      const inFlight = new Set<Promise<unknown>>();
      for (let sequence = 1; sequence <= count; sequence++) {
        const sealed = await sealMessage({
          signingPrivateKey: identity.signing.privateKey,
          sender: name,
          kind: "direct",
          target: to,
          epoch: 0,
          recipients: [recipient],
          payload: { text: `filler ${sequence}` },
          counter: sequence,
          deviceId,
          sequence,
          keyring,
        });
        const upload = client.upload(sealed.frame, sealed.messageId);
        inFlight.add(upload);
        void upload.then(() => inFlight.delete(upload));
        if (inFlight.size >= UPLOAD_WINDOW) await watch.race(Promise.race(inFlight), 30_000, "an upload");
      }
      await watch.race(Promise.all(inFlight), 60_000, "the last uploads");
      await client.close();
    },
  };
}

describe("a malicious server cannot replay, withhold or reorder unnoticed", () => {
  it(`refuses a message replayed after ${FILLER_MESSAGES.toLocaleString("en")} others, past what seen.json remembers`, async () => {
    await cliOk(bob, ["send", "alice", "the original, once"]);
    // The operator keeps a copy of the delivery as it goes by.
    let recorded: Uint8Array | null = null;
    proxy.play({
      toClient: (frame) => {
        if (delivery(frame)?.sender === "bob") recorded = frame as Uint8Array;
        return [frame];
      },
    });
    const first = await inbox(alice);
    expect(first.shown.map((message) => message.text)).toEqual(["the original, once"]);
    expect(recorded).not.toBeNull();
    const replayedId = delivery(recorded!)!.id;
    proxy.play({});

    const started = Date.now();
    const filler = await scriptedSender("filler");
    await filler.sendMany("alice", FILLER_MESSAGES);
    const sentMs = Date.now() - started;
    const drained = await inbox(alice, 240_000);
    const receivedMs = Date.now() - started - sentMs;
    // Real messages, each verified and shown by the CLI.
    expect(drained.shown).toHaveLength(FILLER_MESSAGES);
    expect(drained.shown.at(-1)?.text).toBe(`filler ${FILLER_MESSAGES}`);
    expect(drained.warnings).toEqual([]);
    console.log(
      `${FILLER_MESSAGES} filler messages: sealed and stored in ${sentMs} ms, received by the CLI in ${receivedMs} ms`,
    );
    // The id set has forgotten the original: only the sequence can still refuse it.
    const seen = await nodeHome(alice.home).read("seen.json");
    expect(seen?.ids.length).toBe(20_000);
    expect(seen?.ids.some(([id]) => id.endsWith(replayedId))).toBe(false);

    // The operator hands the old frame to alice's next session, as if it were new.
    proxy.play({
      toClient: (frame) =>
        typeof frame === "string" && frame.includes('"synced"') ? [recorded!, frame] : [frame],
    });
    const replayed = await inbox(alice);
    proxy.play({});
    expect(replayed.shown).toEqual([]);
    expect(replayed.warnings).toEqual([
      expect.stringMatching(
        new RegExp(
          `^dropped a message from bob \\(${replayedId}\\): a replay of message 1 from their device`,
        ),
      ),
    ]);
    // The CLI did get it: it acknowledged the copy (so an honest redelivery would stop too).
    expect(proxy.sockets.at(-1)?.fromClient.some((frame) => String(frame).includes(replayedId))).toBe(true);
  }, 300_000);

  it("reports a message withheld (and acknowledged upstream by the proxy) before the next one", async () => {
    for (const text of ["before the gap", "withheld", "after the gap"])
      await cliOk(bob, ["send", "alice", text]);
    let fromBob = 0;
    let withheld = "";
    proxy.play({
      toClient: (frame, socket) => {
        const item = delivery(frame);
        if (item?.sender !== "bob" || ++fromBob !== 2) return [frame];
        // Dropped, and acknowledged for alice, so the server forgets it and no later session gets it.
        withheld = item.id;
        socket.toServer(JSON.stringify({ type: "ack", ids: [item.id] }));
        return [];
      },
    });
    const run = await inbox(alice);
    proxy.play({});
    expect(withheld).not.toBe("");
    expect(run.shown.map(({ text, missedBefore }) => ({ text, missedBefore }))).toEqual([
      { text: "before the gap", missedBefore: undefined },
      { text: "after the gap", missedBefore: 1 },
    ]);
    expect(run.warnings).toEqual([
      expect.stringMatching(/^1 message from bob \(device [0-9a-f]{8}\) before this one was not delivered$/),
    ]);
    // Gone for good: the server was told it was delivered.
    expect((await inbox(alice)).shown).toEqual([]);
  });

  it("shows two swapped messages both, the late one marked out of order", async () => {
    for (const text of ["sent first", "sent second"]) await cliOk(bob, ["send", "alice", text]);
    let held: Frame | null = null;
    proxy.play({
      toClient: (frame) => {
        if (delivery(frame)?.sender !== "bob") return [frame];
        if (!held) {
          held = frame;
          return [];
        }
        return [frame, held];
      },
    });
    const run = await inbox(alice);
    proxy.play({});
    expect(run.shown.map(({ text, outOfOrder }) => ({ text, outOfOrder }))).toEqual([
      { text: "sent second", outOfOrder: undefined },
      { text: "sent first", outOfOrder: true },
    ]);
    // While "sent first" was still missing, the gap was reported; then it came, late.
    expect(run.warnings).toEqual([expect.stringMatching(/^1 message from bob .* was not delivered$/)]);
    const history = await cliOk(alice, ["history", "bob", "--limit", "2"]);
    expect(history).toMatch(
      /\] bob → alice: sent second\n.*\] \(arrived out of order\) bob → alice: sent first\n$/,
    );
  });
});
