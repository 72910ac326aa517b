// Key generation, import/export and its refusals, the fingerprint format, and the never-throwing verify.
// (Published-vector checks of the same primitives are in vectors.test.ts.)

import { createHash, generateKeyPair, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { CryptoError } from "../../../client/crypto/errors.js";
import { fromBase64, toBase64 } from "../../../client/crypto/base64.js";
import {
  bytesEqual,
  exportIdentity,
  fingerprint,
  importIdentity,
  importPublicKeys,
  randomBytes,
  rsaUnwrap,
  rsaWrap,
  secretboxOpen,
  secretboxSeal,
  sign,
  verify,
} from "../../../client/crypto/primitives.js";
import { makeUsers, type TestUser } from "./helpers.js";

let alice: TestUser;
let bob: TestUser;
beforeAll(async () => {
  [alice, bob] = await makeUsers("alice", "bob");
});

const spki = (key: KeyObject) => toBase64(key.export({ type: "spki", format: "der" }));
/** Node's backend holds keys as KeyObjects. */
const node = (key: object) => key as KeyObject;

describe("generateIdentity / exportIdentity / importIdentity", () => {
  it("makes RSA-3072 (e = 65537) and Ed25519 key pairs", () => {
    const { encryption, signing } = alice.identity;
    expect(node(encryption.privateKey).asymmetricKeyType).toBe("rsa");
    expect(node(encryption.privateKey).asymmetricKeyDetails).toMatchObject({
      modulusLength: 3072,
      publicExponent: 65537n,
    });
    expect(node(signing.privateKey).asymmetricKeyType).toBe("ed25519");
  });

  it("exports base64 SPKI / PKCS#8 DER that imports back to the same keys", async () => {
    const exported = await exportIdentity(alice.identity);
    expect(exported.signingPublic).toBe(spki(node(alice.identity.signing.publicKey)));
    const imported = await importIdentity(exported);
    expect(await exportIdentity(imported)).toEqual(exported);
    // The imported keys work with the originals: a signature and a wrap cross over.
    const message = randomBytes(40);
    expect(
      await verify(
        alice.identity.signing.publicKey,
        message,
        await sign(imported.signing.privateKey, message),
      ),
    ).toBe(true);
    const key = randomBytes(32);
    expect(
      await rsaUnwrap(
        imported.encryption.privateKey,
        await rsaWrap(alice.identity.encryption.publicKey, key),
      ),
    ).toEqual(key);
  });

  it("refuses public keys that do not belong to the private keys", async () => {
    const a = await exportIdentity(alice.identity);
    const b = await exportIdentity(bob.identity);
    await expect(importIdentity({ ...a, encryptionPublic: b.encryptionPublic })).rejects.toThrow(
      /encryption public key does not belong/,
    );
    await expect(importIdentity({ ...a, signingPublic: b.signingPublic })).rejects.toThrow(
      /signing public key does not belong/,
    );
  });

  it("refuses private keys of the wrong type or encoding", async () => {
    const a = await exportIdentity(alice.identity);
    await expect(importIdentity({ ...a, encryptionPrivate: a.signingPrivate })).rejects.toThrow(CryptoError);
    await expect(importIdentity({ ...a, signingPrivate: "AAAA" })).rejects.toThrow(/not a PKCS#8/);
  });
});

describe("importPublicKeys", () => {
  const generate = promisify(generateKeyPair) as (
    type: string,
    options: object,
  ) => Promise<{ publicKey: KeyObject }>;
  const other = async (type: string, options: object) => spki((await generate(type, options)).publicKey);

  it("accepts a user's published keys", async () => {
    const keys = await importPublicKeys(alice.publicKeys);
    expect(node(keys.encryption).asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(node(keys.signing).asymmetricKeyType).toBe("ed25519");
  });

  it("refuses RSA under 3072 bits, RSA-PSS, a non-65537 exponent and non-RSA encryption keys", async () => {
    const signing = alice.publicKeys.signing;
    const cases = {
      "rsa-2048": other("rsa", { modulusLength: 2048 }),
      "rsa-pss-3072": other("rsa-pss", { modulusLength: 3072 }),
      "rsa-3072-e3": other("rsa", { modulusLength: 3072, publicExponent: 3 }),
      "ec-p256": other("ec", { namedCurve: "P-256" }),
      x25519: other("x25519", {}),
      ed25519: Promise.resolve(signing),
    };
    for (const [name, pending] of Object.entries(cases)) {
      const encryption = await pending;
      await expect(importPublicKeys({ encryption, signing }), name).rejects.toThrow(CryptoError);
    }
  });

  it("refuses non-Ed25519 signing keys", async () => {
    const { encryption } = alice.publicKeys;
    const others = await Promise.all([other("ed448", {}), other("ec", { namedCurve: "P-256" })]);
    for (const signing of [...others, encryption]) {
      await expect(importPublicKeys({ encryption, signing })).rejects.toThrow(
        /signing public key must be Ed25519/,
      );
    }
  });

  it("refuses bad base64, garbage, and DER with trailing bytes", async () => {
    const { encryption, signing } = alice.publicKeys;
    const withTrailer = toBase64(new Uint8Array([...fromBase64(signing, "key"), 0]));
    await expect(importPublicKeys({ encryption, signing: signing + "!" })).rejects.toThrow(/not base64/);
    await expect(importPublicKeys({ encryption, signing: "AAAAAAAA" })).rejects.toThrow(/not an SPKI/);
    await expect(importPublicKeys({ encryption, signing: withTrailer })).rejects.toThrow(CryptoError);
  });
});

describe("fingerprint", () => {
  it("is SHA-256 over the context, u16-length-prefixed signing then encryption DER, in 16 groups of 4 hex", () => {
    const signing = Buffer.from(alice.publicKeys.signing, "base64");
    const encryption = Buffer.from(alice.publicKeys.encryption, "base64");
    const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
    const expected = createHash("sha256")
      .update("telepound/v1/fingerprint\0")
      .update(u16(signing.length))
      .update(signing)
      .update(u16(encryption.length))
      .update(encryption)
      .digest("hex");
    const print = fingerprint(alice.publicKeys);
    expect(print).toMatch(/^([0-9a-f]{4} ){15}[0-9a-f]{4}$/);
    expect(print.replaceAll(" ", "")).toBe(expected);
  });

  it("changes when either key changes", () => {
    const a = alice.publicKeys;
    const b = bob.publicKeys;
    const prints = new Set([
      fingerprint(a),
      fingerprint(b),
      fingerprint({ encryption: a.encryption, signing: b.signing }),
      fingerprint({ encryption: b.encryption, signing: a.signing }),
    ]);
    expect(prints.size).toBe(4);
  });
});

describe("rsaWrap / rsaUnwrap", () => {
  it("round-trips, and fails with CryptoError under another key or a flipped byte", async () => {
    const key = randomBytes(32);
    const wrap = await rsaWrap(bob.identity.encryption.publicKey, key);
    expect(wrap.length).toBe(384);
    expect(await rsaUnwrap(bob.identity.encryption.privateKey, wrap)).toEqual(key);
    await expect(rsaUnwrap(alice.identity.encryption.privateKey, wrap)).rejects.toThrow(CryptoError);
    const flipped = wrap.slice();
    flipped[200]! ^= 1;
    await expect(rsaUnwrap(bob.identity.encryption.privateKey, flipped)).rejects.toThrow(CryptoError);
  });

  it("is randomised: the same key wraps differently each time", async () => {
    const key = randomBytes(32);
    const pub = bob.identity.encryption.publicKey;
    expect(bytesEqual(await rsaWrap(pub, key), await rsaWrap(pub, key))).toBe(false);
  });
});

describe("sign / verify", () => {
  const message = new TextEncoder().encode("telepound");

  it("verifies a signature only with the right key and message", async () => {
    const signature = await sign(alice.identity.signing.privateKey, message);
    expect(signature.length).toBe(64);
    expect(await verify(alice.identity.signing.publicKey, message, signature)).toBe(true);
    expect(await verify(bob.identity.signing.publicKey, message, signature)).toBe(false);
    expect(await verify(alice.identity.signing.publicKey, message.subarray(1), signature)).toBe(false);
  });

  it("returns false instead of throwing on malformed input", async () => {
    const signature = await sign(alice.identity.signing.privateKey, message);
    const key = alice.identity.signing.publicKey;
    expect(await verify(key, message, signature.subarray(0, 63))).toBe(false);
    expect(await verify(key, message, new Uint8Array([...signature, 0]))).toBe(false);
    expect(await verify(key, message, new Uint8Array(0))).toBe(false);
    expect(await verify(key, message, new Uint8Array(64).fill(0xff))).toBe(false);
    expect(await verify(alice.identity.encryption.publicKey, message, signature)).toBe(false);
  });
});

describe("secretbox", () => {
  it("returns null for a wrong key, nonce or sizes, and refuses to seal with bad sizes", () => {
    const key = randomBytes(32);
    const nonce = randomBytes(24);
    const box = secretboxSeal(new Uint8Array([1, 2, 3]), nonce, key);
    expect(box.length).toBe(3 + 16);
    expect(secretboxOpen(box, nonce, key)).toEqual(new Uint8Array([1, 2, 3]));
    expect(secretboxOpen(box, randomBytes(24), key)).toBeNull();
    expect(secretboxOpen(box, nonce, randomBytes(32))).toBeNull();
    expect(secretboxOpen(box, nonce.subarray(1), key)).toBeNull();
    expect(secretboxOpen(box, nonce, key.subarray(1))).toBeNull();
    expect(secretboxOpen(box.subarray(0, 15), nonce, key)).toBeNull();
    expect(() => secretboxSeal(box, nonce, key.subarray(1))).toThrow(CryptoError);
  });
});

describe("base64", () => {
  it("accepts only canonical standard base64", () => {
    expect(fromBase64("QQ==", "x")).toEqual(new Uint8Array([0x41]));
    expect(fromBase64("", "x")).toEqual(new Uint8Array(0));
    for (const bad of ["QR==", "QQ", "QQ=", "Q Q==", "QQ==\n", "-_8=", "QQ==QQ=="]) {
      expect(() => fromBase64(bad, "x"), bad).toThrow(CryptoError);
    }
    const bytes = randomBytes(100);
    expect(fromBase64(toBase64(bytes), "x")).toEqual(bytes);
  });
});
