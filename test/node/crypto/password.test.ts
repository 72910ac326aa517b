// Password → keys (scrypt + HKDF), the KDF limits a malicious server cannot push us past, and the sealed
// private-key blob. logN 15 (the protocol's floor) keeps each derivation near 0.1 s.

import { beforeAll, describe, expect, it } from "vitest";
import { toHex } from "../../../protocol/bytes.js";
import { KdfParams } from "../../../protocol/http.js";
import { CryptoError, WrongPasswordError } from "../../../cli-client/crypto/errors.js";
import { fromBase64, toBase64 } from "../../../cli-client/crypto/base64.js";
import {
  derivePasswordKeys,
  newKdfParams,
  sealPrivateKeys,
  unsealPrivateKeys,
  type PasswordKeys,
} from "../../../cli-client/crypto/password.js";
import {
  exportIdentity,
  importIdentity,
  randomBytes,
  secretboxSeal,
} from "../../../cli-client/crypto/primitives.js";
import { makeUser } from "./helpers.js";

const fixedKdf: KdfParams = { algorithm: "scrypt", salt: "AAECAwQFBgcICQoLDA0ODw==", logN: 15, r: 8, p: 1 };
const quick = (): KdfParams => ({ ...newKdfParams(), logN: 15 });

describe("newKdfParams", () => {
  it("gives the defaults with a fresh 16-byte salt, inside the protocol's limits", () => {
    const a = newKdfParams();
    const b = newKdfParams();
    expect(a).toMatchObject({ algorithm: "scrypt", logN: 16, r: 8, p: 1 });
    expect(fromBase64(a.salt, "salt").length).toBe(16);
    expect(a.salt).not.toBe(b.salt);
    expect(KdfParams.safeParse(a).success).toBe(true);
  });
});

describe("derivePasswordKeys", () => {
  it("matches an independently computed vector (Python hashlib.scrypt + RFC 5869 HKDF)", async () => {
    // The vector was computed over NFC("correct horse battery staple é"); here é is typed decomposed
    // (e + U+0301), so this also shows the password is NFC-normalised first.
    const keys = await derivePasswordKeys("correct horse battery staple e\u0301", fixedKdf);
    expect(toHex(keys.sealingKey)).toBe("633854ad6a1e8aa428a229d5b482a8cdf2d948418a4986defbf5b984d61a3133");
    expect(toHex(keys.authKey)).toBe("3e29ff2036f5b631cc0a6e1559235c653d636ffce533464f642649d34f5efb3f");
  });

  it("is deterministic, and differs with the salt, the password and the cost", async () => {
    const kdf = quick();
    const [first, again, otherSalt, otherPassword, otherCost] = await Promise.all([
      derivePasswordKeys("hunter2", kdf),
      derivePasswordKeys("hunter2", kdf),
      derivePasswordKeys("hunter2", quick()),
      derivePasswordKeys("hunter3", kdf),
      derivePasswordKeys("hunter2", { ...kdf, r: 9 }),
    ]);
    const hex = (keys: PasswordKeys) => [toHex(keys.sealingKey), toHex(keys.authKey)];
    expect(hex(again)).toEqual(hex(first));
    expect(first.sealingKey.length).toBe(32);
    expect(first.authKey.length).toBe(32);
    expect(toHex(first.sealingKey)).not.toBe(toHex(first.authKey));
    const all = [first, otherSalt, otherPassword, otherCost].flatMap(hex);
    expect(new Set(all).size).toBe(all.length);
  });

  it("refuses KDF parameters outside KDF_LIMITS before doing any work", async () => {
    const base = quick();
    const refused: Array<[string, unknown]> = [
      ["logN too small", { ...base, logN: 14 }],
      ["logN too large", { ...base, logN: 21 }],
      ["r too small", { ...base, r: 7 }],
      ["r too large", { ...base, r: 33 }],
      ["p too small", { ...base, p: 0 }],
      ["p too large", { ...base, p: 17 }],
      ["4 GiB of memory (logN 20, r 32)", { ...base, logN: 20, r: 32 }],
      ["2 GiB of memory (logN 20, r 16)", { ...base, logN: 20, r: 16 }],
      ["salt too short", { ...base, salt: toBase64(randomBytes(8)) }],
      ["salt not base64", { ...base, salt: "not base64 at all!!!!!!!" }],
      ["other algorithm", { ...base, algorithm: "argon2id" }],
      ["unknown field", { ...base, extra: 1 }],
      ["fractional logN", { ...base, logN: 15.5 }],
    ];
    for (const [what, kdf] of refused) {
      const started = performance.now();
      await expect(derivePasswordKeys("pw", kdf as KdfParams), what).rejects.toThrow(CryptoError);
      expect(performance.now() - started, what).toBeLessThan(500); // scrypt at these sizes would take seconds
    }
  });
});

describe("sealPrivateKeys / unsealPrivateKeys", () => {
  let keys: PasswordKeys;
  let wrong: PasswordKeys;
  const kdf = quick();
  beforeAll(async () => {
    [keys, wrong] = await Promise.all([derivePasswordKeys("right", kdf), derivePasswordKeys("wrong", kdf)]);
  });

  it("round-trips a real identity, and the result imports", async () => {
    const exported = exportIdentity((await makeUser("alice")).identity);
    const privateKeys = {
      encryptionPrivate: exported.encryptionPrivate,
      signingPrivate: exported.signingPrivate,
    };
    const sealed = sealPrivateKeys(keys.sealingKey, privateKeys);
    expect(sealed.length).toBeLessThan(8 * 1024);
    expect(sealed).not.toContain(exported.signingPrivate.slice(0, 20));
    const unsealed = unsealPrivateKeys(keys.sealingKey, sealed);
    expect(unsealed).toEqual(privateKeys);
    expect(exportIdentity(importIdentity({ ...exported, ...unsealed }))).toEqual(exported);
    // A fresh nonce each time: sealing twice gives different blobs.
    expect(sealPrivateKeys(keys.sealingKey, privateKeys)).not.toBe(sealed);
  });

  it("has the layout base64(nonce(24) ‖ secretbox(JSON {v, encryption, signing}))", async () => {
    const sealed = fromBase64(
      sealPrivateKeys(keys.sealingKey, { encryptionPrivate: "RSA", signingPrivate: "ED" }),
      "x",
    );
    const json = '{"v":1,"encryption":"RSA","signing":"ED"}';
    expect(sealed.length).toBe(24 + json.length + 16);
    const nonce = sealed.subarray(0, 24);
    expect(toHex(secretboxSeal(new TextEncoder().encode(json), nonce, keys.sealingKey))).toBe(
      toHex(sealed.subarray(24)),
    );
  });

  it("throws WrongPasswordError under the wrong password or after tampering", () => {
    const sealed = sealPrivateKeys(keys.sealingKey, { encryptionPrivate: "a", signingPrivate: "b" });
    expect(() => unsealPrivateKeys(wrong.sealingKey, sealed)).toThrow(WrongPasswordError);
    const bytes = fromBase64(sealed, "x");
    bytes[30]! ^= 1;
    expect(() => unsealPrivateKeys(keys.sealingKey, toBase64(bytes))).toThrow(WrongPasswordError);
    expect(() => unsealPrivateKeys(keys.sealingKey, toBase64(bytes.subarray(0, 20)))).toThrow(
      WrongPasswordError,
    );
  });

  it("throws a plain CryptoError for a blob that opens but holds something else, or is not base64", () => {
    const nonce = randomBytes(24);
    const box = secretboxSeal(
      new TextEncoder().encode('{"v":2,"encryption":"a","signing":"b"}'),
      nonce,
      keys.sealingKey,
    );
    const otherVersion = toBase64(new Uint8Array([...nonce, ...box]));
    expect(() => unsealPrivateKeys(keys.sealingKey, otherVersion)).toThrow(/do not hold version 1 keys/);
    expect(() => unsealPrivateKeys(keys.sealingKey, otherVersion)).not.toThrow(WrongPasswordError);
    expect(() => unsealPrivateKeys(keys.sealingKey, "%%%")).toThrow(CryptoError);
  });
});
