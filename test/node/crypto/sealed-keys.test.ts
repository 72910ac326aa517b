// The sealed private keys' contents (PROTOCOL §3.3) as another client may have written them: unknown
// fields are ignored, as in every JSON object one client writes for another inside encryption.

import { describe, expect, it } from "vitest";
import { toBase64 } from "../../../client/crypto/base64.js";
import { CryptoError } from "../../../client/crypto/errors.js";
import { unsealPrivateKeys } from "../../../client/crypto/password.js";
import { randomBytes, secretboxSeal } from "../../../client/crypto/primitives.js";

const sealingKey = randomBytes(32);

/** base64(nonce ‖ secretbox(json)), as any client following §3.3 would seal it. */
function sealJson(json: string): string {
  const nonce = randomBytes(24);
  return toBase64(
    new Uint8Array([...nonce, ...secretboxSeal(new TextEncoder().encode(json), nonce, sealingKey)]),
  );
}

describe("unsealPrivateKeys", () => {
  it("ignores fields it does not know, wherever they stand", () => {
    for (const json of [
      '{"v":1,"encryption":"RSA","signing":"ED","device":"laptop"}',
      '{"createdBy":"other-client 0.3","v":1,"signing":"ED","encryption":"RSA","extra":{"nested":[1,2]}}',
      '{"v":1,"encryption":"RSA","signing":"ED","__proto__":{"encryption":"forged"}}',
    ]) {
      expect(unsealPrivateKeys(sealingKey, sealJson(json)), json).toEqual({
        encryptionPrivate: "RSA",
        signingPrivate: "ED",
      });
    }
  });

  it("still requires version 1 and both keys as strings", () => {
    for (const json of [
      '{"v":2,"encryption":"RSA","signing":"ED"}',
      '{"encryption":"RSA","signing":"ED"}',
      '{"v":1,"encryption":"RSA"}',
      '{"v":1,"encryption":"RSA","signing":7}',
      '[1,"RSA","ED"]',
      "not json",
    ]) {
      expect(() => unsealPrivateKeys(sealingKey, sealJson(json)), json).toThrow(CryptoError);
    }
  });
});
