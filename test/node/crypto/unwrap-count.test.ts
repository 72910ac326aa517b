// Counts RSA decryptions on the receiving side: one per distinct conversation-key wrap, however many
// messages use it. rsaUnwrap is the real function wrapped in a spy (vi.mock), so the count is exact.

import { beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { SenderKeyring, UnwrapCache } from "../../../client/crypto/conversation-keys.js";
import { openEnvelope, readDelivery, sealMessage } from "../../../client/crypto/message.js";
import { rsaUnwrap } from "../../../client/crypto/primitives.js";
import { deliveryFor, makeUsers, type TestUser } from "./helpers.js";

vi.mock("../../../client/crypto/primitives.js", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../../../client/crypto/primitives.js")>();
  return { ...actual, rsaUnwrap: vi.fn(actual.rsaUnwrap) };
});
const unwraps = vi.mocked(rsaUnwrap);

let alice: TestUser;
let bob: TestUser;
beforeAll(async () => {
  [alice, bob] = await makeUsers("alice", "bob");
});
beforeEach(() => {
  unwraps.mockClear();
});

async function aliceToBob(keyring: SenderKeyring, fingerprint = bob.fingerprint): Promise<Uint8Array> {
  const { frame } = await sealMessage({
    signingPrivateKey: alice.identity.signing.privateKey,
    sender: "alice",
    kind: "direct",
    target: "bob",
    epoch: 0,
    recipients: [{ ...bob.recipient, fingerprint }],
    payload: { text: "hi" },
    counter: 1,
    deviceId: new Uint8Array(16),
    sequence: 1,
    keyring,
  });
  return deliveryFor(frame, "bob");
}

async function bobOpens(delivery: Uint8Array, unwrapCache: UnwrapCache): Promise<string> {
  const opened = await openEnvelope(readDelivery(delivery), {
    me: "bob",
    encryptionPrivateKey: bob.identity.encryption.privateKey,
    senderSigningKey: alice.identity.signing.publicKey,
    unwrapCache,
  });
  return opened.payload.text;
}

describe("UnwrapCache in openEnvelope", () => {
  it("unwraps a conversation key once for many messages, again only after rotation", async () => {
    const keyring = new SenderKeyring();
    const cache = new UnwrapCache();
    for (let i = 0; i < 5; i++) expect(await bobOpens(await aliceToBob(keyring), cache)).toBe("hi");
    expect(unwraps).toHaveBeenCalledTimes(1);

    // Rotation (here: alice sees a new fingerprint for bob) means a new wrap, so one more unwrap.
    await bobOpens(await aliceToBob(keyring, "ffff ".repeat(15) + "ffff"), cache);
    expect(unwraps).toHaveBeenCalledTimes(2);
  });

  it("keeps working after the cache is persisted and restored", async () => {
    const keyring = new SenderKeyring();
    const cache = new UnwrapCache();
    await bobOpens(await aliceToBob(keyring), cache);
    const restored = UnwrapCache.fromJSON(JSON.parse(JSON.stringify(cache)));
    await bobOpens(await aliceToBob(keyring), restored);
    expect(unwraps).toHaveBeenCalledTimes(1);
  });

  it("does not cache a failed unwrap", async () => {
    const keyring = new SenderKeyring();
    const cache = new UnwrapCache();
    const delivery = await aliceToBob(keyring);
    const wrongKey = (d: Uint8Array) =>
      openEnvelope(readDelivery(d), {
        me: "bob",
        encryptionPrivateKey: alice.identity.encryption.privateKey,
        senderSigningKey: alice.identity.signing.publicKey,
        unwrapCache: cache,
      });
    await expect(wrongKey(delivery)).rejects.toThrow(/does not decrypt/);
    await expect(wrongKey(delivery)).rejects.toThrow(/does not decrypt/);
    expect(unwraps).toHaveBeenCalledTimes(2);
    expect(cache.size).toBe(0);
    expect(await bobOpens(delivery, cache)).toBe("hi");
  });
});
