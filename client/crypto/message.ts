// Where a message is encrypted and where it is verified: sealMessage builds a signed upload frame,
// openEnvelope checks a delivered one in a fixed order and returns the payload only if every check passes.
//
// Sealing ("hybrid RSA/NaCl, wrap once per recipient"):
//   messageKey, nonce    fresh random, 32 and 24 bytes, per message
//   ciphertext           secretbox(payload, nonce, messageKey)
//   header               kind, messageId (16 random bytes), sentAt, counter, sender, target, epoch,
//                        membersDigest(recipients), keyCommitment(messageKey), nonce, ciphertext
//   signature            Ed25519(signingInput(encodeSignedPart(header)))
//   slot per recipient   recipient, conversationKeyWrap (RSA-OAEP of the sender→recipient conversation key,
//                        reused until rotation), msgKeyNonce (random), secretbox(messageKey, msgKeyNonce,
//                        conversation key)
// Slots are unsigned; the signed key commitment is what stops a slot from smuggling in another key.
//
// Recipient sets: a direct message is sealed for exactly [target]. A group message is sealed for every
// member of the group at `epoch`, the sender included (her other sessions get a copy), so a recipient
// checks the digest against the member list it knows for that epoch, unchanged. A sent copy (kind 3) is
// sealed for exactly [sender]: it gives the sender's other devices a direct message she sent to `target`.

import { FormatError, toHex } from "../../protocol/bytes.js";
import {
  KEY_BYTES,
  MESSAGE_ID_BYTES,
  NONCE_BYTES,
  SIGNATURE_CONTEXT,
  decodeDelivery,
  encodeSignedUpload,
  keyCommitment,
  membersDigest,
  signingInput,
  type DecodedEnvelope,
  type EnvelopeHeader,
  type KeySlot,
  type MessageKindName,
} from "../../protocol/envelope.js";
import { GROUP_NAME_PATTERN, MAX_RECIPIENTS, USERNAME_PATTERN } from "../../protocol/limits.js";
import type { PlatformKey } from "../platform.js";
import type { SenderKeyring, UnwrapCache } from "./conversation-keys.js";
import { CryptoError, TamperedMessageError } from "./errors.js";
import type { DecodedPayload, Payload, SenderSequence } from "../../protocol/payload.js";
import { decodePayload, encodePayload } from "./payload.js";
import {
  bytesEqual,
  randomBytes,
  rsaUnwrap,
  secretboxOpen,
  secretboxSeal,
  sha256,
  sign,
  verify,
} from "./primitives.js";

export interface Recipient {
  username: string;
  /** The recipient's pinned RSA-OAEP public key. */
  encryptionKey: PlatformKey;
  /** fingerprint() of the recipient's pinned keys: a change rotates the conversation key. */
  fingerprint: string;
}

export interface SealOptions {
  signingPrivateKey: PlatformKey;
  sender: string;
  kind: MessageKindName;
  /** The recipient's username (direct, and the user a sent copy's message went to) or the group's name. */
  target: string;
  /** The group's membership epoch; 0 for direct messages and sent copies. */
  epoch: number;
  /**
   * Direct: exactly the target. Group: every member at `epoch`, the sender included. Sent copy: exactly
   * the sender.
   */
  recipients: Recipient[];
  payload: Payload;
  /** This device's message counter: one more than the last message it sealed. Receivers do not use it. */
  counter: number;
  /** This device's id (PAYLOAD: DEVICE_ID_BYTES random bytes made at login), sealed inside the payload. */
  deviceId: Uint8Array;
  /**
   * This device's number for this message in this conversation (the peer, or the group): 1 for the
   * first, one more for each after it. Sealed inside the payload, so only recipients see it.
   */
  sequence: number;
  keyring: SenderKeyring;
}

export interface SealedMessage {
  /** The upload frame (BinaryFrame.upload) to send as one binary WebSocket message. */
  frame: Uint8Array;
  /** 32 lower-case hex digits: how the server's "sent" and "error" frames refer to this message. */
  messageId: string;
  header: EnvelopeHeader;
  /** The device and sequence sealed in the payload. */
  position: SenderSequence;
}

export interface OpenOptions {
  /**
   * Our username: the slot must name it, and so must a direct message's target and a sent copy's sender
   * (never its target).
   */
  me: string;
  encryptionPrivateKey: PlatformKey;
  /**
   * The Ed25519 key the caller has pinned for `envelope.header.sender` (looked up by that name). Never a
   * key just fetched for this message: the server could then sign for anyone.
   */
  senderSigningKey: PlatformKey;
  unwrapCache: UnwrapCache;
  /** Group messages only: the group's members at `expectedEpoch`, as this client knows them. */
  expectedMembers?: readonly string[];
  /** Group messages only: the epoch this client expects for `header.target`. */
  expectedEpoch?: number;
}

export interface OpenedMessage {
  header: EnvelopeHeader;
  /** The text and attachment, and the sending device and sequence a receiver checks (sequences.ts). */
  payload: DecodedPayload;
}

export async function sealMessage(options: SealOptions): Promise<SealedMessage> {
  const { kind, sender, target, epoch, recipients, keyring } = options;
  const usernames = recipients.map((recipient) => recipient.username);
  checkAddressing(kind, sender, target, epoch, usernames);

  // Encoded first: an oversize payload must fail before any key is used or counted.
  const position: SenderSequence = { deviceId: options.deviceId, sequence: options.sequence };
  const plaintext = encodePayload(options.payload, position);
  // Every random value of the message from one call, laid out in this order: messageId, messageKey,
  // nonce, then one msgKeyNonce per recipient.
  const random = randomBytes(MESSAGE_ID_BYTES + KEY_BYTES + NONCE_BYTES + NONCE_BYTES * recipients.length);
  const messageId = random.subarray(0, MESSAGE_ID_BYTES);
  const messageKey = random.subarray(MESSAGE_ID_BYTES, MESSAGE_ID_BYTES + KEY_BYTES);
  let used = MESSAGE_ID_BYTES + KEY_BYTES;
  const nonce = random.subarray(used, (used += NONCE_BYTES));
  const header: EnvelopeHeader = {
    kind,
    messageId,
    sentAt: Date.now(),
    counter: options.counter,
    sender,
    target,
    epoch,
    membersDigest:
      kind === "direct"
        ? directMembersDigest(target)
        : kind === "sentCopy"
          ? directMembersDigest(sender)
          : membersDigest(usernames, sha256),
    keyCommitment: keyCommitment(messageKey, sha256),
    nonce,
    ciphertext: secretboxSeal(plaintext, nonce, messageKey),
  };
  const slots: KeySlot[] = [];
  for (const recipient of recipients) {
    const conversation = await keyring.forRecipient(
      recipient.username,
      recipient.encryptionKey,
      recipient.fingerprint,
      header.sentAt,
    );
    const msgKeyNonce = random.subarray(used, (used += NONCE_BYTES));
    slots.push({
      recipient: recipient.username,
      conversationKeyWrap: conversation.wrap,
      msgKeyNonce,
      msgKeyBox: secretboxSeal(messageKey, msgKeyNonce, conversation.key),
    });
  }
  const frame = await encodeSignedUpload(header, slots, (signedPart) =>
    signSignedPart(options.signingPrivateKey, signedPart),
  );
  return { frame, messageId: toHex(messageId), header, position };
}

/** Where signingInput(signedPart) is assembled: the context is written once, each signed part after it. */
let signingBuffer = new Uint8Array(4096);
signingBuffer.set(SIGNATURE_CONTEXT);

/** The backend reads the buffer before its promise is made (platform.ts), so the next seal may reuse it. */
function signSignedPart(signingPrivateKey: PlatformKey, signedPart: Uint8Array): Promise<Uint8Array> {
  const size = SIGNATURE_CONTEXT.length + signedPart.length;
  if (size > signingBuffer.length) {
    signingBuffer = new Uint8Array(size);
    signingBuffer.set(SIGNATURE_CONTEXT);
  }
  signingBuffer.set(signedPart, SIGNATURE_CONTEXT.length);
  return sign(signingPrivateKey, signingBuffer.subarray(0, size));
}

/** Direct-message members digests kept, by target; past this many the cache starts over. */
const DIRECT_DIGESTS_KEPT = 1024;
const directDigests = new Map<string, Uint8Array>();

/**
 * membersDigest([target]), remembered: it depends on the name alone and is public, and a chat sends many
 * messages to few people, so each person's costs one hash instead of one per message.
 */
function directMembersDigest(target: string): Uint8Array {
  let digest = directDigests.get(target);
  if (!digest) {
    if (directDigests.size >= DIRECT_DIGESTS_KEPT) directDigests.clear();
    digest = membersDigest([target], sha256);
    directDigests.set(target, digest);
  }
  return digest;
}

/** Decodes a delivery frame; a malformed one is reported as tampering, since only the server could cause it. */
export function readDelivery(frame: Uint8Array): DecodedEnvelope {
  try {
    return decodeDelivery(frame);
  } catch (error) {
    if (error instanceof FormatError) throw new TamperedMessageError(`malformed delivery: ${error.message}`);
    throw error;
  }
}

/**
 * Verifies and decrypts a delivered envelope; throws TamperedMessageError naming the first check that
 * failed. Cheap checks that need no secret come first, the RSA unwrap (when not cached) last but one.
 * Replay is not checked here: the caller checks the payload's device and sequence afterwards
 * (client/store/sequences.ts), and may keep a ReplayGuard of ids as a fast path.
 */
export async function openEnvelope(envelope: DecodedEnvelope, options: OpenOptions): Promise<OpenedMessage> {
  const { header } = envelope;
  const { me } = options;
  const slot = envelope.slots[0];
  if (!slot || envelope.slots.length !== 1) fail("a delivery must carry exactly one key slot");
  if (slot.recipient !== me) fail(`the key slot is for ${slot.recipient}, not ${me}`);

  if (!(await verify(options.senderSigningKey, signingInput(envelope.signedPart), envelope.signature))) {
    fail(`the signature does not verify against ${header.sender}'s pinned key`);
  }

  if (header.kind === "direct") {
    if (header.target !== me) fail(`the direct message is addressed to ${header.target}, not ${me}`);
    if (!bytesEqual(header.membersDigest, await membersDigest([me], sha256))) {
      fail("the members digest does not name me as the only recipient");
    }
  } else if (header.kind === "sentCopy") {
    // Only my own devices copy my messages to me; a copy "to me" would pass off a message as one I sent.
    if (header.sender !== me) fail(`a sent copy from ${header.sender}, not from me (${me})`);
    if (header.target === me) fail("a sent copy names me as the user the message went to");
    if (!bytesEqual(header.membersDigest, await membersDigest([me], sha256))) {
      fail("the members digest of the sent copy does not name me as the only recipient");
    }
  } else {
    const { expectedMembers, expectedEpoch } = options;
    if (!expectedMembers || expectedEpoch === undefined) {
      throw new TypeError("opening a group message needs expectedMembers and expectedEpoch");
    }
    if (!bytesEqual(header.membersDigest, await membersDigest(expectedMembers, sha256))) {
      fail(`the members digest does not match the members of ${header.target} at epoch ${expectedEpoch}`);
    }
    if (header.epoch !== expectedEpoch) fail(`sealed for epoch ${header.epoch}, expected ${expectedEpoch}`);
    // Implied by the digest when the caller's list is right; checked so a wrong list cannot let them pass.
    if (!expectedMembers.includes(me)) {
      fail(`I am not a member of ${header.target} at epoch ${expectedEpoch}`);
    }
    if (!expectedMembers.includes(header.sender)) {
      fail(`${header.sender} is not a member of ${header.target} at epoch ${expectedEpoch}`);
    }
  }

  const conversationKey = await conversationKeyFor(slot, options);
  const messageKey = secretboxOpen(slot.msgKeyBox, slot.msgKeyNonce, conversationKey);
  if (!messageKey) fail("the message key box does not open with the conversation key");
  // Without this, a sender could give each recipient a different key (and so a different message) under
  // one signature; constant-time, as the commitment is compared against a secret-derived value.
  if (!bytesEqual(await keyCommitment(messageKey, sha256), header.keyCommitment)) {
    fail("the message key does not match the signed key commitment");
  }
  const plaintext = secretboxOpen(header.ciphertext, header.nonce, messageKey);
  if (!plaintext) fail("the ciphertext does not open with the message key");
  try {
    return { header, payload: decodePayload(plaintext) };
  } catch (error) {
    if (error instanceof FormatError) fail(`malformed payload: ${error.message}`);
    throw error;
  }
}

/** Cached by wrap, so a conversation costs one RSA decryption per rotation, not one per message. */
async function conversationKeyFor(slot: KeySlot, options: OpenOptions): Promise<Uint8Array> {
  const cached = options.unwrapCache.get(slot.conversationKeyWrap);
  if (cached) return cached;
  let key: Uint8Array;
  try {
    key = await rsaUnwrap(options.encryptionPrivateKey, slot.conversationKeyWrap);
  } catch {
    fail("the conversation key wrap does not decrypt with my key");
  }
  if (key.length !== KEY_BYTES) fail(`the conversation key is ${key.length} bytes, not ${KEY_BYTES}`);
  options.unwrapCache.remember(slot.conversationKeyWrap, key);
  return key;
}

/** Refuses to seal what every honest recipient (or the server) would reject anyway, with a clear reason. */
function checkAddressing(
  kind: MessageKindName,
  sender: string,
  target: string,
  epoch: number,
  usernames: readonly string[],
): void {
  if (!USERNAME_PATTERN.test(sender))
    throw new CryptoError(`sender ${JSON.stringify(sender)} is not a username`);
  if (usernames.length === 0 || usernames.length > MAX_RECIPIENTS) {
    throw new CryptoError(`a message needs 1..${MAX_RECIPIENTS} recipients`);
  }
  if (new Set(usernames).size !== usernames.length) throw new CryptoError("a recipient is listed twice");
  const bad = usernames.find((name) => !USERNAME_PATTERN.test(name));
  if (bad !== undefined) throw new CryptoError(`recipient ${JSON.stringify(bad)} is not a username`);
  if (kind === "direct") {
    if (epoch !== 0) throw new CryptoError("direct messages carry epoch 0");
    if (usernames.length !== 1 || usernames[0] !== target) {
      throw new CryptoError("a direct message is sealed for exactly its target");
    }
  } else if (kind === "sentCopy") {
    if (epoch !== 0) throw new CryptoError("sent copies carry epoch 0");
    if (!USERNAME_PATTERN.test(target)) throw new CryptoError(`${JSON.stringify(target)} is not a username`);
    if (target === sender) throw new CryptoError("a message to oneself needs no sent copy");
    if (usernames.length !== 1 || usernames[0] !== sender) {
      throw new CryptoError("a sent copy is sealed for exactly its sender");
    }
  } else {
    if (!GROUP_NAME_PATTERN.test(target))
      throw new CryptoError(`${JSON.stringify(target)} is not a group name`);
    if (!usernames.includes(sender))
      throw new CryptoError("a group message is sealed for every member, sender too");
  }
}

function fail(reason: string): never {
  throw new TamperedMessageError(reason);
}
