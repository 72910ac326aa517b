// Where a message is routed: validate an upload frame from a connected user, then hand it to the
// recipient's home (direct), the group's room (group) or the sender's own home (a sent copy). The server reads only the envelope's routing
// header; the ciphertext and the signed bytes are forwarded unchanged (sliced, never re-encoded).

import { FormatError, equalBytes } from "../../protocol/bytes.js";
import {
  ENVELOPE_VERSION,
  decodeUpload,
  encodeDelivery,
  membersDigest,
  signedPartWithSignature,
  uploadHead,
  type DecodedEnvelope,
} from "../../protocol/envelope.js";
import type { ErrorFrame, SentFrame } from "../../protocol/frames.js";
import type { DeliverResult, GroupPost, Incoming, PostResult } from "../contracts.js";

export type UploadReply = SentFrame | ErrorFrame;

/**
 * An upload that has been checked and handed on: `reply` settles when the home or room answers.
 * Routing itself is synchronous: uploads reach their pipe in the order the socket delivered them.
 */
export interface Dispatched {
  /** The upload's message id, once it could be read. */
  id?: string;
  reply: Promise<UploadReply>;
}

/** Where validated uploads go: a recipient's home or a group's room, each through an ordered pipe. */
export interface Routes {
  toHome(recipient: string, message: Incoming): Promise<DeliverResult>;
  toGroup(group: string, post: GroupPost): Promise<PostResult>;
}

/**
 * Validates an upload and queues it on its route, without awaiting anything: each frame is queued in the
 * order the socket delivered it, and each pipe keeps that order, so a sender's messages stay in order.
 */
export function routeUpload(
  { user: sender, session }: { user: string; session: string },
  frame: Uint8Array,
  routes: Routes,
): Dispatched {
  // Every refusal names the upload when its id can be read, even if nothing after the id decodes: a
  // client matching answers by id would otherwise wait for an answer that never comes.
  const head = uploadHead(frame);
  if (head && head.version !== ENVELOPE_VERSION) {
    return answer({ type: "error", code: "bad_frame", message: versionMismatch(head.version), id: head.id });
  }
  let envelope: DecodedEnvelope;
  try {
    envelope = decodeUpload(frame);
  } catch (error) {
    if (error instanceof FormatError) {
      const message = `malformed envelope: ${error.message}`;
      return answer({ type: "error", code: "bad_frame", message, ...(head && { id: head.id }) });
    }
    throw error;
  }
  const { header, messageIdHex: id } = envelope;

  // The sender field is signed by the client, but only the server knows who is really on this socket:
  // nobody can send as someone else, even with a valid signature of their own.
  if (header.sender !== sender) {
    return answer({
      type: "error",
      code: "forbidden",
      message: `you are ${sender}, not ${header.sender}`,
      id,
    });
  }

  if (header.kind === "group") {
    // Membership, epoch and slots are the room's to check: only it knows the members.
    const post: GroupPost = {
      sender,
      id,
      epoch: header.epoch,
      membersDigest: header.membersDigest.slice(),
      // Copies, not views: a view would carry the whole frame's buffer across the call.
      signed: signedPartWithSignature(envelope).slice(),
      slots: envelope.slots.map((slot, i) => ({
        recipient: slot.recipient,
        bytes: envelope.slotBytes[i]!.slice(),
      })),
    };
    const reply = routes
      .toGroup(header.target, post)
      .then((result): UploadReply =>
        result.ok
          ? { type: "sent", id, status: result.status }
          : { type: "error", code: result.code, message: result.message, id },
      );
    return { id, reply };
  }

  const copy = header.kind === "sentCopy";
  const problem = copy ? checkSentCopy(envelope, sender) : checkDirectSlots(envelope, header.target);
  if (problem) return answer({ type: "error", code: "bad_frame", message: problem, id });
  const delivery = encodeDelivery(signedPartWithSignature(envelope), envelope.slotBytes[0]!);
  // A sent copy is for the sender's other devices: the session that sealed it has the message already.
  const home = copy ? sender : header.target;
  const reply = routes
    .toHome(home, { sender, id, kind: "envelope", data: delivery, ...(copy && { exceptSession: session }) })
    .then((result): UploadReply => {
      if (result.ok) return { type: "sent", id, status: result.status };
      if (result.reason === "quota_exceeded")
        return { type: "error", code: "quota_exceeded", message: result.message, id };
      return { type: "error", code: "unknown_user", message: `no such user: ${home}`, id };
    });
  return { id, reply };
}

/**
 * The members digest of each direct target, kept: every direct message is checked against it, and
 * hashing the same name for every message showed up in profiles. Bounded; cleared when full.
 */
const directDigests = new Map<string, Uint8Array>();
const DIRECT_DIGESTS_LIMIT = 10_000;

function directDigest(target: string): Uint8Array {
  let digest = directDigests.get(target);
  if (!digest) {
    if (directDigests.size >= DIRECT_DIGESTS_LIMIT) directDigests.clear();
    digest = membersDigest([target]);
    directDigests.set(target, digest);
  }
  return digest;
}

/** A direct message has exactly one slot, for its target, and its signed member digest names only them. */
function checkDirectSlots(envelope: DecodedEnvelope, target: string): string | null {
  if (envelope.slots.length !== 1 || envelope.slots[0]!.recipient !== target) {
    return `a direct message carries exactly one key slot, for ${target}`;
  }
  const digest = directDigest(target);
  if (!equalBytes(digest, envelope.header.membersDigest))
    return "members digest does not match the recipient";
  return null;
}

/**
 * A sent copy is sealed for its sender alone: exactly one key slot, the sender's, and the members digest
 * of the sender. Its target is the user the copied message went to; a message to oneself reaches every
 * session of its own, so it has no copy.
 */
function checkSentCopy(envelope: DecodedEnvelope, sender: string): string | null {
  if (envelope.slots.length !== 1 || envelope.slots[0]!.recipient !== sender)
    return `a sent copy carries exactly one key slot, for its sender ${sender}`;
  if (!equalBytes(directDigest(sender), envelope.header.membersDigest))
    return "a sent copy's members digest must be that of its sender alone";
  if (envelope.header.target === sender)
    return "a message to yourself reaches all your sessions: it needs no sent copy";
  return null;
}

/** What a client of another envelope version is told: which versions meet, and who should update. */
function versionMismatch(version: number): string {
  const advice = version < ENVELOPE_VERSION ? "update the client" : "this server is older than the client";
  return `this client seals Telepound envelopes of version ${version} and this server takes version ${ENVELOPE_VERSION}: ${advice}`;
}

function answer(frame: UploadReply): Dispatched {
  return { reply: Promise.resolve(frame) };
}
