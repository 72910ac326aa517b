// Where a message is routed: validate an upload frame from a connected user, then hand the recipient's
// copy to the recipient's home. The server reads only the envelope's routing header; the ciphertext
// and the signed bytes are forwarded unchanged (sliced, never re-encoded).

import { FormatError } from "../../protocol/bytes.js";
import {
  decodeUpload,
  encodeDelivery,
  membersDigest,
  signedPartWithSignature,
  type DecodedEnvelope,
} from "../../protocol/envelope.js";
import type { ErrorFrame, SentFrame } from "../../protocol/frames.js";
import type { DeliverResult, Incoming } from "../user-home.js";

export type UploadReply = SentFrame | ErrorFrame;

/**
 * An upload that has been checked and handed on: `reply` settles when the recipient's home answers.
 * It is wrapped in an object so that awaiting routeUpload does not also wait for the reply.
 */
export interface Dispatched {
  reply: Promise<UploadReply>;
}

/** Hands one message to a recipient's home, through that home's ordered pipe. */
export type DeliverTo = (recipient: string, message: Incoming) => Promise<DeliverResult>;

/**
 * Validates an upload and queues it for the recipient's home. The shard runs these one at a time per
 * socket and each home's pipe keeps its order, so each sender's messages stay in order.
 */
export async function routeUpload(
  sender: string,
  frame: Uint8Array,
  deliverTo: DeliverTo,
): Promise<Dispatched> {
  let envelope: DecodedEnvelope;
  try {
    envelope = decodeUpload(frame);
  } catch (error) {
    if (error instanceof FormatError)
      return answer({ type: "error", code: "bad_frame", message: `malformed envelope: ${error.message}` });
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
    return answer({ type: "error", code: "bad_frame", message: "group messages are not supported yet", id });
  }
  const problem = await checkSlots(envelope, [header.target]);
  if (problem) return answer({ type: "error", code: "bad_frame", message: problem, id });

  const delivery = encodeDelivery(signedPartWithSignature(envelope), envelope.slotBytes[0]!);
  const reply = deliverTo(header.target, { id, frame: delivery }).then((result): UploadReply =>
    result.ok
      ? { type: "sent", id, status: result.status }
      : { type: "error", code: "unknown_user", message: `no such user: ${header.target}`, id },
  );
  return { reply };
}

/** Every intended recipient has exactly one slot, and the signed member digest names exactly them. */
async function checkSlots(envelope: DecodedEnvelope, recipients: string[]): Promise<string | null> {
  const slotNames = envelope.slots.map((slot) => slot.recipient);
  const wanted = [...new Set(recipients)].sort();
  if (slotNames.length !== wanted.length || slotNames.some((name, i) => name !== wanted[i])) {
    return `key slots must be exactly for: ${wanted.join(", ")}`;
  }
  const digest = await membersDigest(wanted);
  if (!equalBytes(digest, envelope.header.membersDigest))
    return "members digest does not match the recipients";
  return null;
}

function answer(frame: UploadReply): Dispatched {
  return { reply: Promise.resolve(frame) };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
