// Sender CPU per message: sealMessage (seal, wrap, sign) for a 1:1 message and for a 1000-member group,
// measured with process.cpuUsage, broken down by primitive, beside the same envelope framed without crypto.

import { type KeyObject, randomFillSync, sign as edSign } from "node:crypto";
import nacl from "tweetnacl";
import { sha256 } from "../../protocol/bytes.js";
import {
  type KeySlot,
  decodeUpload,
  encodeSignedPart,
  encodeUpload,
  signingInput,
} from "../../protocol/envelope.js";
import type { Recipient } from "../../client/crypto/index.js";
import { sha256 as clientSha256 } from "../../client/crypto/primitives.js";
import type { BenchContext } from "../lib/context.js";
import { loadUser } from "../lib/context.js";
import { Sender, benchText } from "../lib/identity.js";
import { type ScenarioResult, cpuColumns } from "../lib/report.js";
import { round } from "../lib/stats.js";

const DIRECT_MESSAGES = 3000;
/**
 * Seals before the 1:1 figure is taken. V8 keeps compiling and re-optimising the seal path for the first
 * couple of thousand calls, and that compile time lands in process.cpuUsage: after 200 warm-up seals the
 * figure still swung by ±20% between runs. The cold cost of a fresh process is reported beside it.
 */
const DIRECT_WARMUP = 2000;
const COLD_MESSAGES = 200;
const GROUP_MESSAGES = 20;
const GROUP_MEMBERS = 1000;
const TEXT_BYTES = 100;

/** CPU µs per call of `work`, after `warmup` calls, from process.cpuUsage (user + system). */
async function cpuPerCall(
  calls: number,
  work: (i: number) => unknown,
  warmup = Math.min(200, calls),
): Promise<number> {
  for (let i = 0; i < warmup; i++) await work(i);
  const before = process.cpuUsage();
  for (let i = 0; i < calls; i++) await work(i);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / calls;
}

/** The same upload frame with fixed bytes where the crypto would go: what a relay client pays anyway. */
function plainFrame(
  sender: string,
  target: string,
  recipients: string[],
  ciphertextBytes: number,
): Uint8Array {
  const signedPart = encodeSignedPart({
    kind: recipients.length > 1 ? "group" : "direct",
    messageId: new Uint8Array(16),
    sentAt: Date.now(),
    counter: 1,
    sender,
    target,
    epoch: recipients.length > 1 ? 1 : 0,
    membersDigest: new Uint8Array(32),
    keyCommitment: new Uint8Array(32),
    nonce: new Uint8Array(24),
    ciphertext: new Uint8Array(ciphertextBytes),
  });
  const slots: KeySlot[] = recipients.map((recipient) => ({
    recipient,
    conversationKeyWrap: new Uint8Array(384),
    msgKeyNonce: new Uint8Array(24),
    msgKeyBox: new Uint8Array(48),
  }));
  return encodeUpload(signedPart, new Uint8Array(64), slots);
}

export async function senderCpu(ctx: BenchContext): Promise<ScenarioResult> {
  const { shared } = ctx;
  const sender = new Sender(shared, "cpu-a");

  // ---- 1:1 -----------------------------------------------------------------------------------------
  ctx.log(`sender CPU: sealing ${DIRECT_MESSAGES} direct messages`);
  const text = benchText(0, TEXT_BYTES);
  const coldUs = await cpuPerCall(COLD_MESSAGES, () => sender.direct("cpu-b", text), 0);
  const directUs = await cpuPerCall(DIRECT_MESSAGES, () => sender.direct("cpu-b", text), DIRECT_WARMUP);
  const sample = await sender.direct("cpu-b", text);
  const ciphertextBytes = 256 + 16;
  const plainUs = await cpuPerCall(
    DIRECT_MESSAGES,
    () => plainFrame("cpu-a", "cpu-b", ["cpu-b"], ciphertextBytes),
    DIRECT_WARMUP,
  );

  // Where a 1:1 seal goes: each primitive sealMessage calls, timed alone on inputs of the same size.
  const key = nacl.randomBytes(32);
  const nonce = nacl.randomBytes(24);
  const payload = new Uint8Array(256);
  const signed = signingInput(decodeUpload(sample.frame).signedPart);
  const smallInput = new Uint8Array(60);
  const breakdown = {
    "SHA-256 as the client hashes (membersDigest, keyCommitment; node:crypto), each": await cpuPerCall(
      DIRECT_MESSAGES,
      () => clientSha256(smallInput),
    ),
    "SHA-256 of protocol/bytes.ts, same input (the portable one the Worker uses)": await cpuPerCall(
      DIRECT_MESSAGES,
      () => sha256(smallInput),
    ),
    "Ed25519 sign of the signed part": await cpuPerCall(DIRECT_MESSAGES, () =>
      edSign(null, signed, shared.identity.signing.privateKey as KeyObject),
    ),
    "secretbox of the 256-byte padded payload (tweetnacl)": await cpuPerCall(DIRECT_MESSAGES, () =>
      nacl.secretbox(payload, nonce, key),
    ),
    "secretbox of the 32-byte message key (the slot)": await cpuPerCall(DIRECT_MESSAGES, () =>
      nacl.secretbox(key, nonce, key),
    ),
    "randomFillSync of the message's 96 random bytes (one call per message)": await cpuPerCall(
      DIRECT_MESSAGES,
      () => randomFillSync(new Uint8Array(96)),
    ),
    "framing alone (encodeSignedPart + encodeUpload)": plainUs,
  };

  // ---- 1000-member group --------------------------------------------------------------------------
  const names = Array.from({ length: GROUP_MEMBERS }, (_, i) => loadUser(i));
  const members: Recipient[] = names.map((username) => ({
    username,
    encryptionKey: shared.identity.encryption.publicKey,
    fingerprint: shared.fingerprint,
  }));
  const groupSender = new Sender(shared, loadUser(0));
  ctx.log(`sender CPU: first message to a ${GROUP_MEMBERS}-member group (one RSA wrap per member)`);
  let before = process.cpuUsage();
  await groupSender.group("cpu-group", 1, members, text);
  let used = process.cpuUsage(before);
  const firstGroupMs = (used.user + used.system) / 1000;
  before = process.cpuUsage();
  for (let i = 0; i < GROUP_MESSAGES; i++) await groupSender.group("cpu-group", 1, members, text);
  used = process.cpuUsage(before);
  const groupMs = (used.user + used.system) / 1000 / GROUP_MESSAGES;
  const plainGroupUs = await cpuPerCall(GROUP_MESSAGES, () =>
    plainFrame(loadUser(0), "cpu-group", names, ciphertextBytes),
  );

  return {
    id: "sender-cpu",
    title: "Sender CPU per message",
    rows: [
      {
        scenario: "sender CPU, 1:1 message",
        metric: "seal + wrap + sign",
        unit: "µs",
        telepound: directUs,
        baseline: plainUs,
        baselineLabel: "same frame, no crypto",
        goal: "≤ 150 µs",
        met: directUs <= 150,
        ...cpuColumns(null),
        note: `after ${DIRECT_WARMUP} warm-up seals; the first ${COLD_MESSAGES} of a fresh process cost ${round(coldUs)} µs each (V8 still compiling the seal path)`,
      },
      {
        scenario: `sender CPU, ${GROUP_MEMBERS}-member group message`,
        metric: "seal + 1000 slots + sign",
        unit: "ms",
        telepound: groupMs,
        baseline: plainGroupUs / 1000,
        baselineLabel: "same frame, no crypto",
        goal: "report",
        met: null,
        ...cpuColumns(null),
        note: `first message after a (re)key: ${round(firstGroupMs)} ms (one RSA-OAEP wrap per member)`,
      },
    ],
    details: {
      directMessages: DIRECT_MESSAGES,
      directFrameBytes: sample.frame.length,
      directCpuUs: round(directUs),
      directWarmup: DIRECT_WARMUP,
      directColdCpuUs: round(coldUs),
      breakdownUs: Object.fromEntries(Object.entries(breakdown).map(([k, v]) => [k, round(v)])),
      groupMembers: GROUP_MEMBERS,
      groupCpuMsPerMessage: round(groupMs),
      groupFirstMessageCpuMs: round(firstGroupMs),
      groupFrameBytes: plainFrame(loadUser(0), "cpu-group", names, ciphertextBytes).length,
    },
  };
}
