// Where a message is routed: validate an upload frame from a connected user, then hand each recipient's
// copy to that recipient's home. The server reads only the envelope's routing header; the ciphertext
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
import type { UserHome } from "../user-home.js";

export type UploadReply = SentFrame | ErrorFrame;

/** Looks up (and caches) the stub of a user's home; the cache keeps calls per recipient in order. */
export type HomeLookup = (username: string) => DurableObjectStub<UserHome>;

export async function routeUpload(sender: string, frame: Uint8Array, homeOf: HomeLookup): Promise<UploadReply> {
  let envelope: DecodedEnvelope;
  try {
    envelope = decodeUpload(frame);
  } catch (error) {
    if (error instanceof FormatError) return badFrame(`malformed envelope: ${error.message}`);
    throw error;
  }
  const { header, messageIdHex: id } = envelope;

  // The sender field is signed by the client, but only the server knows who is really on this socket:
  // nobody can send as someone else, even with a valid signature of their own.
  if (header.sender !== sender) {
    return { type: "error", code: "forbidden", message: `you are ${sender}, not ${header.sender}`, id };
  }
  if (header.kind === "group") {
    return { type: "error", code: "bad_frame", message: "group messages are not supported yet", id };
  }

  const recipients = [header.target];
  const problem = await checkSlots(envelope, recipients);
  if (problem) return { type: "error", code: "bad_frame", message: problem, id };

  const prefix = signedPartWithSignature(envelope);
  const result = await homeOf(header.target).deliver(id, encodeDelivery(prefix, envelope.slotBytes[0]!));
  if (!result.ok) return { type: "error", code: "unknown_user", message: `no such user: ${header.target}`, id };
  return { type: "sent", id, status: result.status };
}

/** Every intended recipient has exactly one slot, and the signed member digest names exactly them. */
async function checkSlots(envelope: DecodedEnvelope, recipients: string[]): Promise<string | null> {
  const slotNames = envelope.slots.map((slot) => slot.recipient);
  const wanted = [...new Set(recipients)].sort();
  if (slotNames.length !== wanted.length || slotNames.some((name, i) => name !== wanted[i])) {
    return `key slots must be exactly for: ${wanted.join(", ")}`;
  }
  const digest = await membersDigest(wanted);
  if (!equalBytes(digest, envelope.header.membersDigest)) return "members digest does not match the recipients";
  return null;
}

function badFrame(message: string): ErrorFrame {
  return { type: "error", code: "bad_frame", message };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
