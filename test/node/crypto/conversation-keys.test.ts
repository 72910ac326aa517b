// SenderKeyring (one RSA wrap per recipient until rotation) and UnwrapCache (one RSA unwrap per wrap),
// including their JSON persistence.

import { beforeAll, describe, expect, it } from "vitest";
import { toHex } from "../../../protocol/bytes.js";
import {
  CONVERSATION_KEY_MAX_AGE_MS,
  CONVERSATION_KEY_MAX_MESSAGES,
  SenderKeyring,
  UnwrapCache,
} from "../../../client/crypto/conversation-keys.js";
import { CryptoError } from "../../../client/crypto/errors.js";
import { randomBytes, rsaUnwrap } from "../../../client/crypto/primitives.js";
import { makeUsers, type TestUser } from "./helpers.js";

let bob: TestUser;
let carol: TestUser;
beforeAll(async () => {
  [bob, carol] = await makeUsers("bob", "carol");
});

const T0 = Date.UTC(2030, 0, 1);
const forBob = (keyring: SenderKeyring, now = T0, print = bob.fingerprint) =>
  keyring.forRecipient("bob", bob.identity.encryption.publicKey, print, now);
const hex = (c: { key: Uint8Array; wrap: Uint8Array }) => toHex(c.key) + "/" + toHex(c.wrap);

describe("SenderKeyring", () => {
  it("wraps a random 32-byte key for the recipient once, then reuses key and wrap", async () => {
    const keyring = new SenderKeyring();
    const first = await forBob(keyring);
    expect(first.key.length).toBe(32);
    expect(await rsaUnwrap(bob.identity.encryption.privateKey, first.wrap)).toEqual(first.key);
    expect(hex(await forBob(keyring, T0 + 1000))).toBe(hex(first));
    expect(hex(await forBob(keyring, T0 + 2000))).toBe(hex(first));
  });

  it("keeps a separate key per recipient", async () => {
    const keyring = new SenderKeyring();
    const toBob = await forBob(keyring);
    const toCarol = await keyring.forRecipient(
      "carol",
      carol.identity.encryption.publicKey,
      carol.fingerprint,
      T0,
    );
    expect(toHex(toCarol.key)).not.toBe(toHex(toBob.key));
    expect(await rsaUnwrap(carol.identity.encryption.privateKey, toCarol.wrap)).toEqual(toCarol.key);
  });

  it(`rotates after ${CONVERSATION_KEY_MAX_MESSAGES} messages`, async () => {
    const keyring = new SenderKeyring();
    const first = hex(await forBob(keyring));
    for (let i = 2; i <= CONVERSATION_KEY_MAX_MESSAGES; i++) {
      if (hex(await forBob(keyring)) !== first) throw new Error(`rotated early, at message ${i}`);
    }
    const next = hex(await forBob(keyring));
    expect(next).not.toBe(first);
    expect(hex(await forBob(keyring))).toBe(next);
  });

  it("rotates after 7 days, and when the clock goes backwards", async () => {
    const keyring = new SenderKeyring();
    const first = hex(await forBob(keyring));
    expect(hex(await forBob(keyring, T0 + CONVERSATION_KEY_MAX_AGE_MS - 1))).toBe(first);
    const week = hex(await forBob(keyring, T0 + CONVERSATION_KEY_MAX_AGE_MS));
    expect(week).not.toBe(first);
    expect(hex(await forBob(keyring, T0 + CONVERSATION_KEY_MAX_AGE_MS - 1))).not.toBe(week);
  });

  it("rotates when the recipient's fingerprint changes, wrapping for the new key", async () => {
    const keyring = new SenderKeyring();
    const first = await forBob(keyring);
    // Bob's name, Carol's key pair: what the sender sees after Bob re-registers with new keys.
    const rotated = await keyring.forRecipient(
      "bob",
      carol.identity.encryption.publicKey,
      carol.fingerprint,
      T0 + 1,
    );
    expect(hex(rotated)).not.toBe(hex(first));
    expect(await rsaUnwrap(carol.identity.encryption.privateKey, rotated.wrap)).toEqual(rotated.key);
  });

  it("forget() makes the next message wrap a new key", async () => {
    const keyring = new SenderKeyring();
    const first = hex(await forBob(keyring));
    keyring.forget("bob");
    expect(hex(await forBob(keyring))).not.toBe(first);
  });

  it("survives JSON persistence with keys, wraps and message counts intact", async () => {
    const keyring = new SenderKeyring();
    const first = hex(await forBob(keyring));
    for (let i = 2; i < CONVERSATION_KEY_MAX_MESSAGES; i++) await forBob(keyring);
    // "__proto__" is a valid username: persistence must not turn it into a prototype change.
    const proto = hex(
      await keyring.forRecipient("__proto__", carol.identity.encryption.publicKey, carol.fingerprint, T0),
    );
    const restored = SenderKeyring.fromJSON(JSON.parse(JSON.stringify(keyring)));
    expect(hex(await forBob(restored))).toBe(first); // message 10,000: still the same key
    expect(hex(await forBob(restored))).not.toBe(first); // 10,001: the count survived, so it rotates
    expect(
      hex(
        await restored.forRecipient("__proto__", carol.identity.encryption.publicKey, carol.fingerprint, T0),
      ),
    ).toBe(proto);
  });

  it("refuses malformed stored keyrings", async () => {
    const good = new SenderKeyring();
    await forBob(good);
    const json = good.toJSON();
    const entry = json.recipients[0]!;
    const variants: unknown[] = [
      null,
      { v: 2, recipients: [] },
      { ...json, recipients: [{ ...entry, key: "AAAA" }] },
      { ...json, recipients: [{ ...entry, wrap: "not base64" }] },
      { ...json, recipients: [{ ...entry, username: "Bob!" }] },
      { ...json, recipients: [{ ...entry, messages: 0 }] },
    ];
    for (const variant of variants) expect(() => SenderKeyring.fromJSON(variant)).toThrow(CryptoError);
  });
});

describe("UnwrapCache", () => {
  const wrap = (n: number) => new Uint8Array(384).fill(n);

  it("returns the remembered key for the same wrap bytes, nothing for others", () => {
    const cache = new UnwrapCache();
    const key = randomBytes(32);
    cache.remember(wrap(1), key);
    expect(cache.get(wrap(1))).toEqual(key);
    expect(cache.get(wrap(2))).toBeUndefined();
    const almost = wrap(1);
    almost[383] = 0;
    expect(cache.get(almost)).toBeUndefined();
  });

  it("evicts the least recently used entry beyond its capacity", () => {
    const cache = new UnwrapCache(3);
    for (const n of [1, 2, 3]) cache.remember(wrap(n), randomBytes(32));
    cache.get(wrap(1)); // 2 is now the least recently used
    cache.remember(wrap(4), randomBytes(32));
    expect(cache.size).toBe(3);
    expect(cache.get(wrap(2))).toBeUndefined();
    for (const n of [1, 3, 4]) expect(cache.get(wrap(n)), `wrap ${n}`).toBeDefined();
  });

  it("holds at most 4096 entries by default", () => {
    const cache = new UnwrapCache();
    for (let n = 0; n < 4100; n++)
      cache.remember(new Uint8Array(new Uint32Array([n]).buffer), randomBytes(32));
    expect(cache.size).toBe(4096);
  });

  it("survives JSON persistence, order included, and refuses malformed input", () => {
    const cache = new UnwrapCache(3);
    const keys = [randomBytes(32), randomBytes(32), randomBytes(32)];
    keys.forEach((key, n) => cache.remember(wrap(n), key));
    cache.get(wrap(0));
    const restored = UnwrapCache.fromJSON(JSON.parse(JSON.stringify(cache)), 3);
    restored.remember(wrap(9), randomBytes(32)); // evicts wrap 1, the least recently used before saving
    expect(restored.get(wrap(1))).toBeUndefined();
    expect(restored.get(wrap(0))).toEqual(keys[0]);
    expect(restored.get(wrap(2))).toEqual(keys[2]);
    expect(UnwrapCache.fromJSON(cache.toJSON(), 1).size).toBe(1);
    for (const bad of [
      {},
      { v: 1, entries: [["zz", "AAAA"]] },
      { v: 1, entries: [["0".repeat(64), "AAAA"]] },
    ]) {
      expect(() => UnwrapCache.fromJSON(bad)).toThrow(CryptoError);
    }
  });
});
