// Shared fixtures for the crypto tests: users with real key pairs, and the server's fan-out step.
// Key pairs are made once per test file (RSA-3072 generation takes ~0.5–1.5 s each, run in parallel).

import { decodeUpload, encodeDelivery, signedPartWithSignature } from "../../../protocol/envelope.js";
import type { PublicKeys } from "../../../protocol/http.js";
import { UnwrapCache } from "../../../client/crypto/conversation-keys.js";
import type { Recipient } from "../../../client/crypto/message.js";
import {
  exportIdentity,
  fingerprint,
  generateIdentity,
  type Identity,
} from "../../../client/crypto/primitives.js";

export interface TestUser {
  name: string;
  identity: Identity;
  publicKeys: PublicKeys;
  fingerprint: string;
  recipient: Recipient;
  unwrapCache: UnwrapCache;
}

export async function makeUser(name: string): Promise<TestUser> {
  const identity = await generateIdentity();
  const exported = await exportIdentity(identity);
  const publicKeys = { encryption: exported.encryptionPublic, signing: exported.signingPublic };
  const print = fingerprint(publicKeys);
  return {
    name,
    identity,
    publicKeys,
    fingerprint: print,
    recipient: { username: name, encryptionKey: identity.encryption.publicKey, fingerprint: print },
    unwrapCache: new UnwrapCache(),
  };
}

export async function makeUsers<const N extends readonly string[]>(
  ...names: N
): Promise<{ [K in keyof N]: TestUser }> {
  return Promise.all(names.map(makeUser)) as Promise<{ [K in keyof N]: TestUser }>;
}

/** What the server does: cut `recipient`'s copy out of an upload frame, unchanged. */
export function deliveryFor(upload: Uint8Array, recipient: string): Uint8Array {
  const envelope = decodeUpload(upload);
  const index = envelope.slots.findIndex((slot) => slot.recipient === recipient);
  if (index < 0) throw new Error(`no slot for ${recipient}`);
  return encodeDelivery(signedPartWithSignature(envelope), envelope.slotBytes[index]!);
}
