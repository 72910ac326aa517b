// The end-to-end envelope: its exact byte layout, shared by the Worker (which routes it without reading it)
// and the client (which seals, signs, opens and verifies it). docs/PROTOCOL.md describes the same layout.
//
// An envelope is a signed part (header, key commitment, nonce, ciphertext), its Ed25519 signature, and key
// slots: one per recipient, each letting that recipient recover the message key. Slots are not signed;
// the signed key commitment binds them instead, which lets the server hand each recipient only its own
// slot (a 1000-member group message would otherwise be copied 1000 times at 1000× the size).

import {
  ByteReader,
  ByteWriter,
  FormatError,
  concatBytes,
  putBytes,
  putStr8,
  putU16,
  putU32,
  putU64,
  sha256,
  toHex,
  utf8,
  utf8Length,
} from "./bytes.js";
import { GROUP_NAME_PATTERN, MAX_CIPHERTEXT_BYTES, MAX_RECIPIENTS, USERNAME_PATTERN } from "./limits.js";

/**
 * The envelope's first byte is its format version, so the server can tell a client of another format by
 * its first upload and say so, instead of answering a mere "malformed". Protocol 3 changed groups, not
 * envelopes: its envelopes are still version 2.
 */
export const ENVELOPE_VERSION = 2;

/** First byte of every binary WebSocket frame. */
export const BinaryFrame = {
  /** client → server: signed part, signature, every recipient's slot */
  upload: 0x01,
  /** server → client: signed part, signature, the receiving user's slot only */
  delivery: 0x02,
} as const;

/**
 * direct: to one user. group: to a group's members at one epoch. sentCopy: a direct message's copy for
 * the sender's own other sessions, sealed for the sender alone; `target` names the user the message went
 * to, so the sender's other devices can file it in that conversation (PROTOCOL §5.12).
 */
export const MessageKind = { direct: 1, group: 2, sentCopy: 3 } as const;
export type MessageKindName = keyof typeof MessageKind;

export const MESSAGE_ID_BYTES = 16;
export const NONCE_BYTES = 24;
export const KEY_BYTES = 32;
export const DIGEST_BYTES = 32;
export const SIGNATURE_BYTES = 64;
/** secretbox of a 32-byte key: key + 16-byte Poly1305 tag. */
export const WRAPPED_MESSAGE_KEY_BYTES = KEY_BYTES + 16;
/** RSA-OAEP ciphertext is as long as the modulus: 384 bytes at 3072 bits; 4096-bit keys fit too. */
export const MAX_CONVERSATION_KEY_WRAP_BYTES = 512;

/** Domain-separation prefixes, so a signature or hash made for one purpose is never valid for another. */
export const SIGNATURE_CONTEXT = utf8("telepound/v1/message\0");
export const KEY_COMMITMENT_CONTEXT = utf8("telepound/v1/key-commitment\0");
export const MEMBERS_CONTEXT = utf8("telepound/v1/members\0");

export interface EnvelopeHeader {
  kind: MessageKindName;
  messageId: Uint8Array;
  /** Sender's clock, milliseconds since the Unix epoch. */
  sentAt: number;
  /** Increases by one with every message the sending device seals. */
  counter: number;
  sender: string;
  /** The recipient's username (direct, and the user a sent copy's message went to) or the group's name. */
  target: string;
  /** Group membership epoch the sender sealed for; 0 for direct messages and sent copies. */
  epoch: number;
  /** membersDigest() of the recipients the sender sealed for. */
  membersDigest: Uint8Array;
  /** SHA-256(KEY_COMMITMENT_CONTEXT ‖ message key): proves every slot unwraps to the same key. */
  keyCommitment: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

export interface KeySlot {
  recipient: string;
  /** RSA-OAEP(SHA-256) of the sender→recipient conversation key; identical across messages until rotated. */
  conversationKeyWrap: Uint8Array;
  msgKeyNonce: Uint8Array;
  /** secretbox(message key, msgKeyNonce, conversation key) */
  msgKeyBox: Uint8Array;
}

/** A decoded envelope. `signedPart` and `slotBytes` are views into the frame, for forwarding unchanged. */
export interface DecodedEnvelope {
  header: EnvelopeHeader;
  messageIdHex: string;
  signedPart: Uint8Array;
  signature: Uint8Array;
  slots: KeySlot[];
  slotBytes: Uint8Array[];
}

// Encoding: every size is computed first, then each field is written once, in place, into the buffer
// that is sent, rather than into a piece of its own that is then copied into the next.

/** The signed part's bytes besides the two names and the ciphertext. */
const SIGNED_PART_FIXED_BYTES =
  1 + 1 + MESSAGE_ID_BYTES + 8 + 8 + 1 + 1 + 4 + DIGEST_BYTES + DIGEST_BYTES + NONCE_BYTES + 4;
/** A slot's bytes besides the recipient's name and the conversation key wrap. */
const SLOT_FIXED_BYTES = 1 + 2 + NONCE_BYTES + WRAPPED_MESSAGE_KEY_BYTES;

export function encodeSignedPart(header: EnvelopeHeader): Uint8Array {
  const signedPart = new Uint8Array(signedPartSize(header));
  writeSignedPart(signedPart, 0, header);
  return signedPart;
}

/** The exact bytes the sender signs and every recipient verifies. */
export function signingInput(signedPart: Uint8Array): Uint8Array {
  return concatBytes(SIGNATURE_CONTEXT, signedPart);
}

export function encodeSlot(slot: KeySlot): Uint8Array {
  const bytes = new Uint8Array(slotSize(slot));
  writeSlot(bytes, 0, slot);
  return bytes;
}

/** Slots must be sorted by recipient, each recipient once, so a digest over them is canonical. */
export function encodeUpload(signedPart: Uint8Array, signature: Uint8Array, slots: KeySlot[]): Uint8Array {
  checkSize(signature, SIGNATURE_BYTES, "signature");
  const sorted = sortSlots(slots);
  const frame = new Uint8Array(uploadSize(signedPart.length, sorted));
  frame[0] = BinaryFrame.upload;
  frame.set(signedPart, 1);
  const signatureAt = 1 + signedPart.length;
  frame.set(signature, signatureAt);
  writeSlots(frame, signatureAt + SIGNATURE_BYTES, sorted);
  return frame;
}

/**
 * The sender's way to the same bytes as encodeUpload(encodeSignedPart(header), signature, slots): one
 * pass into one buffer, with `sign` given the signed part where it lies in the frame and returning its
 * signature (over signingInput of those bytes), so the signed part is never encoded or copied apart.
 */
export async function encodeSignedUpload(
  header: EnvelopeHeader,
  slots: KeySlot[],
  sign: (signedPart: Uint8Array) => Uint8Array | Promise<Uint8Array>,
): Promise<Uint8Array> {
  const sorted = sortSlots(slots);
  const frame = new Uint8Array(uploadSize(signedPartSize(header), sorted));
  frame[0] = BinaryFrame.upload;
  const signatureAt = writeSignedPart(frame, 1, header);
  const signature = await sign(frame.subarray(1, signatureAt));
  checkSize(signature, SIGNATURE_BYTES, "signature");
  frame.set(signature, signatureAt);
  writeSlots(frame, signatureAt + SIGNATURE_BYTES, sorted);
  return frame;
}

/** Writes the signed part at `at`; returns the offset just past it. */
function writeSignedPart(out: Uint8Array, at: number, header: EnvelopeHeader): number {
  checkSize(header.messageId, MESSAGE_ID_BYTES, "messageId");
  checkSize(header.membersDigest, DIGEST_BYTES, "membersDigest");
  checkSize(header.keyCommitment, DIGEST_BYTES, "keyCommitment");
  checkSize(header.nonce, NONCE_BYTES, "nonce");
  out[at] = ENVELOPE_VERSION;
  out[at + 1] = MessageKind[header.kind];
  at = putBytes(out, at + 2, header.messageId);
  at = putU64(out, at, header.sentAt);
  at = putU64(out, at, header.counter);
  at = putStr8(out, at, header.sender);
  at = putStr8(out, at, header.target);
  at = putU32(out, at, header.epoch);
  at = putBytes(out, at, header.membersDigest);
  at = putBytes(out, at, header.keyCommitment);
  at = putBytes(out, at, header.nonce);
  at = putU32(out, at, header.ciphertext.length);
  return putBytes(out, at, header.ciphertext);
}

/** Writes the slot count and the slots at `at`. */
function writeSlots(out: Uint8Array, at: number, sorted: readonly KeySlot[]): void {
  at = putU16(out, at, sorted.length);
  for (const slot of sorted) at = writeSlot(out, at, slot);
}

function writeSlot(out: Uint8Array, at: number, slot: KeySlot): number {
  checkSize(slot.msgKeyNonce, NONCE_BYTES, "msgKeyNonce");
  checkSize(slot.msgKeyBox, WRAPPED_MESSAGE_KEY_BYTES, "msgKeyBox");
  at = putStr8(out, at, slot.recipient);
  at = putU16(out, at, slot.conversationKeyWrap.length);
  at = putBytes(out, at, slot.conversationKeyWrap);
  at = putBytes(out, at, slot.msgKeyNonce);
  return putBytes(out, at, slot.msgKeyBox);
}

function signedPartSize(header: EnvelopeHeader): number {
  return (
    SIGNED_PART_FIXED_BYTES + utf8Length(header.sender) + utf8Length(header.target) + header.ciphertext.length
  );
}

function slotSize(slot: KeySlot): number {
  return SLOT_FIXED_BYTES + utf8Length(slot.recipient) + slot.conversationKeyWrap.length;
}

function uploadSize(signedPartBytes: number, slots: readonly KeySlot[]): number {
  let size = 1 + signedPartBytes + SIGNATURE_BYTES + 2;
  for (const slot of slots) size += slotSize(slot);
  return size;
}

function sortSlots(slots: KeySlot[]): KeySlot[] {
  return slots.length === 1 ? slots : [...slots].sort(compareSlots);
}

function compareSlots(a: KeySlot, b: KeySlot): number {
  return compareNames(a.recipient, b.recipient);
}

function checkSize(value: Uint8Array, size: number, what: string): void {
  if (value.length !== size) throw new FormatError(`${what} must be ${size} bytes, got ${value.length}`);
}

/** What the server sends one recipient: the signed part and signature untouched, then that recipient's slot. */
export function encodeDelivery(signedPartAndSignature: Uint8Array, slotBytes: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(BinaryFrame.delivery), signedPartAndSignature, slotBytes);
}

export function decodeUpload(frame: Uint8Array): DecodedEnvelope {
  const reader = new ByteReader(frame);
  expectTag(reader, BinaryFrame.upload);
  const { header, signedPart, signature } = readSignedPart(reader);
  const count = reader.u16("slot count");
  if (count === 0 || count > MAX_RECIPIENTS) throw new FormatError(`slot count must be 1..${MAX_RECIPIENTS}`);
  const slots: KeySlot[] = [];
  const slotBytes: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const start = reader.offset;
    const slot = readSlot(reader);
    const previous = slots[slots.length - 1];
    if (previous && compareNames(previous.recipient, slot.recipient) >= 0) {
      throw new FormatError("slots must be sorted by recipient with no repeats");
    }
    slots.push(slot);
    slotBytes.push(frame.subarray(start, reader.offset));
  }
  reader.end("the last slot");
  return { header, messageIdHex: toHex(header.messageId), signedPart, signature, slots, slotBytes };
}

export function decodeDelivery(frame: Uint8Array): DecodedEnvelope {
  const reader = new ByteReader(frame);
  expectTag(reader, BinaryFrame.delivery);
  const { header, signedPart, signature } = readSignedPart(reader);
  const start = reader.offset;
  const slot = readSlot(reader);
  reader.end("the slot");
  return {
    header,
    messageIdHex: toHex(header.messageId),
    signedPart,
    signature,
    slots: [slot],
    slotBytes: [frame.subarray(start)],
  };
}

/** The bytes of signed part + signature inside a decoded frame (for building deliveries without copying). */
export function signedPartWithSignature(envelope: DecodedEnvelope): Uint8Array {
  const { signedPart } = envelope;
  return new Uint8Array(signedPart.buffer, signedPart.byteOffset, signedPart.length + SIGNATURE_BYTES);
}

/**
 * A synchronous SHA-256. The digests below default to protocol/bytes.ts's, which runs everywhere; the
 * Node client passes OpenSSL's, which gives the same digest without a pure-JS hash to warm up per process.
 */
export type Sha256 = (data: Uint8Array) => Uint8Array;

/**
 * SHA-256 over the sorted, de-duplicated recipient names. A recipient recomputes it from the member list
 * the server announced for the epoch, so a server that quietly adds or drops a recipient is caught.
 */
export function membersDigest(recipients: readonly string[], hash: Sha256 = sha256): Uint8Array {
  const names = recipients.length === 1 ? recipients : [...new Set(recipients)].sort(compareNames);
  let size = MEMBERS_CONTEXT.length + 2;
  for (const name of names) size += 1 + utf8Length(name);
  const writer = new ByteWriter(size).bytes(MEMBERS_CONTEXT).u16(names.length);
  for (const name of names) writer.str8(name);
  return hash(writer.finish());
}

export function keyCommitment(messageKey: Uint8Array, hash: Sha256 = sha256): Uint8Array {
  return hash(concatBytes(KEY_COMMITMENT_CONTEXT, messageKey));
}

/** Byte-wise order of ASCII names; the same on every platform, unlike localeCompare. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function expectTag(reader: ByteReader, tag: number): void {
  const actual = reader.u8("frame tag");
  if (actual !== tag) throw new FormatError(`expected binary frame 0x0${tag}, got 0x${actual.toString(16)}`);
}

function readSignedPart(reader: ByteReader): {
  header: EnvelopeHeader;
  signedPart: Uint8Array;
  signature: Uint8Array;
} {
  const start = reader.offset;
  const version = reader.u8("version");
  if (version !== ENVELOPE_VERSION) {
    throw new FormatError(
      `unsupported envelope version ${version}: version ${ENVELOPE_VERSION} is read here`,
    );
  }
  const kindByte = reader.u8("kind");
  const kind = kindName(kindByte);
  if (!kind) throw new FormatError(`unknown message kind ${kindByte}`);
  const messageId = reader.bytes(MESSAGE_ID_BYTES, "messageId");
  const sentAt = reader.u64("sentAt");
  const counter = reader.u64("counter");
  const sender = reader.str8("sender");
  if (!USERNAME_PATTERN.test(sender)) throw new FormatError("sender is not a valid username");
  const target = reader.str8("target");
  const targetPattern = kind === "group" ? GROUP_NAME_PATTERN : USERNAME_PATTERN;
  if (!targetPattern.test(target))
    throw new FormatError(`target is not a valid ${kind === "group" ? "group name" : "username"}`);
  const epoch = reader.u32("epoch");
  if (kind === "direct" && epoch !== 0) throw new FormatError("direct messages carry epoch 0");
  if (kind === "sentCopy" && epoch !== 0) throw new FormatError("sent copies carry epoch 0");
  const membersDigestBytes = reader.bytes(DIGEST_BYTES, "membersDigest");
  const keyCommitmentBytes = reader.bytes(DIGEST_BYTES, "keyCommitment");
  const nonce = reader.bytes(NONCE_BYTES, "nonce");
  const ciphertext = reader.bytes32("ciphertext", MAX_CIPHERTEXT_BYTES);
  if (ciphertext.length < 16) throw new FormatError("ciphertext shorter than its MAC");
  const signedPart = reader.since(start);
  const signature = reader.bytes(SIGNATURE_BYTES, "signature");
  return {
    header: {
      kind,
      messageId,
      sentAt,
      counter,
      sender,
      target,
      epoch,
      membersDigest: membersDigestBytes,
      keyCommitment: keyCommitmentBytes,
      nonce,
      ciphertext,
    },
    signedPart,
    signature,
  };
}

function kindName(byte: number): MessageKindName | null {
  for (const [name, value] of Object.entries(MessageKind)) if (value === byte) return name as MessageKindName;
  return null;
}

function readSlot(reader: ByteReader): KeySlot {
  const recipient = reader.str8("slot recipient");
  if (!USERNAME_PATTERN.test(recipient)) throw new FormatError("slot recipient is not a valid username");
  const conversationKeyWrap = reader.bytes16("conversation key wrap");
  if (conversationKeyWrap.length === 0 || conversationKeyWrap.length > MAX_CONVERSATION_KEY_WRAP_BYTES) {
    throw new FormatError(`conversation key wrap must be 1..${MAX_CONVERSATION_KEY_WRAP_BYTES} bytes`);
  }
  const msgKeyNonce = reader.bytes(NONCE_BYTES, "slot nonce");
  const msgKeyBox = reader.bytes(WRAPPED_MESSAGE_KEY_BYTES, "wrapped message key");
  return { recipient, conversationKeyWrap, msgKeyNonce, msgKeyBox };
}

/**
 * Where every binary frame's message id lies: after the tag, the version and the kind. It is at the same
 * place in every protocol version and stays there, so any upload, even of another version or broken
 * further on, can be answered by its id.
 */
const MESSAGE_ID_AT = 3;

/**
 * The message id of a binary frame (an upload or a delivery), read at its fixed place without decoding
 * the rest: what lets a frame broken further on still be answered or acknowledged by its id. Null when
 * the frame is no upload or delivery, or ends before its id does.
 */
export function frameMessageId(frame: Uint8Array): string | null {
  if (frame.length < MESSAGE_ID_AT + MESSAGE_ID_BYTES) return null;
  if (frame[0] !== BinaryFrame.upload && frame[0] !== BinaryFrame.delivery) return null;
  return toHex(frame.subarray(MESSAGE_ID_AT, MESSAGE_ID_AT + MESSAGE_ID_BYTES));
}

/**
 * The message id and version byte of an upload, read without decoding the rest: a refusal names the
 * upload it answers whenever its id can be read. Null when the frame is not an upload (tag 0x01) or
 * ends before its id does.
 */
export function uploadHead(frame: Uint8Array): { id: string; version: number } | null {
  const id = frame[0] === BinaryFrame.upload ? frameMessageId(frame) : null;
  return id === null ? null : { id, version: frame[1]! };
}

/**
 * Who a delivery says it is from and to, read from its header without decoding (or verifying) the rest:
 * its message id, kind, sender and target. Null for a frame too short to say, or no delivery; decoding
 * it reports what is wrong. Nothing here is verified: it routes acks and counts what frames claim.
 */
export function deliveryHead(
  frame: Uint8Array,
): { id: string; kind: MessageKindName; sender: string; target: string } | null {
  if (frame[0] !== BinaryFrame.delivery) return null;
  const id = frameMessageId(frame);
  // tag, version, kind, message id, sentAt, counter, then sender and target as length-prefixed strings.
  const senderLengthAt = MESSAGE_ID_AT + MESSAGE_ID_BYTES + 16;
  if (id === null || frame.length <= senderLengthAt) return null;
  const targetLengthAt = senderLengthAt + 1 + frame[senderLengthAt]!;
  const targetEnd = targetLengthAt + 1 + (frame[targetLengthAt] ?? 0);
  const kind = kindName(frame[2]!);
  if (targetEnd > frame.length || kind === null) return null;
  const text = (from: number, to: number) => utf8Decoder.decode(frame.subarray(from, to));
  return {
    id,
    kind,
    sender: text(senderLengthAt + 1, targetLengthAt),
    target: text(targetLengthAt + 1, targetEnd),
  };
}

const utf8Decoder = new TextDecoder();

/**
 * Where a delivery's acknowledgement goes: its message id and, for a group message, the group (its room
 * queued it; a direct message's queue, and a sent copy's, is the receiving user's home).
 */
export function deliveryAckRoute(frame: Uint8Array): { id: string; group: string | null } | null {
  const head = deliveryHead(frame);
  if (!head) return null;
  return { id: head.id, group: head.kind === "group" ? head.target : null };
}
