// Password → keys: the salt the client derives from the server's origin and the username (checked against
// a fixed vector and an independent node:crypto computation), scrypt at the protocol's fixed cost + HKDF
// (checked against a Python vector), and the sealed private-key blob. Each derivation takes 64 MiB.

import { createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { toHex } from "../../../protocol/bytes.js";
import { CryptoError, WrongPasswordError } from "../../../client/crypto/errors.js";
import { fromBase64, toBase64 } from "../../../client/crypto/base64.js";
import {
  KDF_SALT_CONTEXT,
  derivePasswordKeys,
  kdfOrigin,
  kdfSalt,
  sealPrivateKeys,
  unsealPrivateKeys,
  type PasswordKeys,
} from "../../../client/crypto/password.js";
import {
  exportIdentity,
  importIdentity,
  randomBytes,
  secretboxSeal,
} from "../../../client/crypto/primitives.js";
import { makeUser } from "./helpers.js";

const chat = { origin: "https://chat.example.com", username: "alice" };
const local = (username: string) => ({ origin: "http://127.0.0.1:8787", username });

/** The salt's definition (PROTOCOL §3.2), written again from the document with node:crypto alone. */
function saltFromTheDocument(origin: string, username: string): string {
  const str8 = (text: string) => Buffer.concat([Buffer.from([text.length]), Buffer.from(text, "ascii")]);
  return createHash("sha256")
    .update(Buffer.from("telepound/v1/kdf-salt\0", "ascii"))
    .update(str8(origin))
    .update(str8(username))
    .digest("hex");
}

describe("kdfOrigin", () => {
  it.each([
    ["http://127.0.0.1:8787", "http://127.0.0.1:8787"],
    ["https://chat.example.com", "https://chat.example.com"],
    ["HTTPS://Chat.EXAMPLE.com", "https://chat.example.com"],
    ["https://chat.example.com:443", "https://chat.example.com"],
    ["http://chat.example.com:80/", "http://chat.example.com"],
    ["http://chat.example.com:443", "http://chat.example.com:443"],
    ["https://chat.example.com:8443/", "https://chat.example.com:8443"],
    ["https://chat.example.com/", "https://chat.example.com"],
    ["https://chat.example.com/telepound/v1/", "https://chat.example.com"],
    ["https://user:secret@chat.example.com", "https://chat.example.com"],
    ["http://[::1]:8787", "http://[::1]:8787"],
    ["https://bücher.example", "https://xn--bcher-kva.example"],
  ])("%s → %s", (server, origin) => {
    expect(kdfOrigin(server)).toBe(origin);
  });

  it("refuses what is not an http(s) URL", () => {
    for (const server of ["chat.example.com", "ws://chat.example.com", "file:///tmp/x", ""]) {
      expect(() => kdfOrigin(server), server).toThrow(CryptoError);
    }
    expect(() =>
      kdfOrigin(`https://${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}:1`),
    ).toThrow(/longer than 255/);
  });
});

describe("kdfSalt", () => {
  it("matches a fixed vector, and the document's construction computed with node:crypto", () => {
    expect(toHex(KDF_SALT_CONTEXT)).toBe("74656c65706f756e642f76312f6b64662d73616c7400");
    // Computed once with Python's hashlib over the same bytes.
    const vector = "46c53f901af57aee351859ad7a4258e022237af7850e6f30b933733359c5b0c4";
    expect(toHex(kdfSalt(chat))).toBe(vector);
    expect(saltFromTheDocument("https://chat.example.com", "alice")).toBe(vector);
    expect(toHex(kdfSalt(local("bob")))).toBe(saltFromTheDocument("http://127.0.0.1:8787", "bob"));
  });

  it("differs per user and per server, and is the same for every spelling of one server", () => {
    const salts = [
      kdfSalt(chat),
      kdfSalt({ ...chat, username: "bob" }),
      kdfSalt({ ...chat, origin: "https://chat.example.org" }),
      kdfSalt({ ...chat, origin: "http://chat.example.com" }),
      kdfSalt({ ...chat, origin: "https://chat.example.com:8443" }),
    ].map(toHex);
    expect(new Set(salts).size).toBe(salts.length);
    for (const spelling of ["HTTPS://CHAT.example.com:443", "https://chat.example.com/some/path/"]) {
      expect(toHex(kdfSalt({ ...chat, origin: kdfOrigin(spelling) }))).toBe(salts[0]);
    }
  });

  it("refuses an origin that is not serialised, and a name that is not a lower-case username", () => {
    for (const origin of [
      "https://chat.example.com/",
      "HTTPS://chat.example.com",
      "https://chat.example.com:443",
    ]) {
      expect(() => kdfSalt({ ...chat, origin }), origin).toThrow(/not a serialised origin/);
    }
    for (const username of ["Alice", "al", "a".repeat(33), "al ice", ""]) {
      expect(() => kdfSalt({ ...chat, username }), username).toThrow(/not a lower-case username/);
    }
  });
});

describe("derivePasswordKeys", () => {
  it("matches an independently computed vector (Python hashlib.scrypt N=2^16 r=8 p=1 + RFC 5869 HKDF)", async () => {
    // The vector was computed over NFC("correct horse battery staple é") with the salt of `chat` above;
    // here é is typed decomposed (e + U+0301), so this also shows the password is NFC-normalised first.
    const keys = await derivePasswordKeys("correct horse battery staple e\u0301", chat);
    expect(toHex(keys.sealingKey)).toBe("31b71d776b7e887321b3bc4d7ff7a807c344c1189ef5df3892ba0566d4e8dbb2");
    expect(toHex(keys.authKey)).toBe("9c8162bc433782b10cd1983b6efcc48313a2a4fe9b991b8ff7ba60885dc5e9a0");
  });

  it("is deterministic, and differs with the password, the user and the server", async () => {
    const [first, again, otherPassword, otherUser, otherServer] = await Promise.all([
      derivePasswordKeys("hunter2", local("alice")),
      derivePasswordKeys("hunter2", local("alice")),
      derivePasswordKeys("hunter3", local("alice")),
      derivePasswordKeys("hunter2", local("bob")),
      derivePasswordKeys("hunter2", { origin: "http://127.0.0.1:8788", username: "alice" }),
    ]);
    const hex = (keys: PasswordKeys) => [toHex(keys.sealingKey), toHex(keys.authKey)];
    expect(hex(again)).toEqual(hex(first));
    expect(first.sealingKey.length).toBe(32);
    expect(first.authKey.length).toBe(32);
    expect(toHex(first.sealingKey)).not.toBe(toHex(first.authKey));
    const all = [first, otherPassword, otherUser, otherServer].flatMap(hex);
    expect(new Set(all).size).toBe(all.length);
  });

  it("refuses an account it cannot derive a salt for, before any scrypt work", async () => {
    const started = performance.now();
    await expect(derivePasswordKeys("pw", { origin: "chat.example.com", username: "alice" })).rejects.toThrow(
      CryptoError,
    );
    await expect(derivePasswordKeys("pw", { ...chat, username: "Alice" })).rejects.toThrow(CryptoError);
    expect(performance.now() - started).toBeLessThan(100);
  });
});

describe("sealPrivateKeys / unsealPrivateKeys", () => {
  let keys: PasswordKeys;
  let wrong: PasswordKeys;
  beforeAll(async () => {
    [keys, wrong] = await Promise.all([
      derivePasswordKeys("right", local("alice")),
      derivePasswordKeys("wrong", local("alice")),
    ]);
  });

  it("round-trips a real identity, and the result imports", async () => {
    const exported = await exportIdentity((await makeUser("alice")).identity);
    const privateKeys = {
      encryptionPrivate: exported.encryptionPrivate,
      signingPrivate: exported.signingPrivate,
    };
    const sealed = sealPrivateKeys(keys.sealingKey, privateKeys);
    expect(sealed.length).toBeLessThan(8 * 1024);
    expect(sealed).not.toContain(exported.signingPrivate.slice(0, 20));
    const unsealed = unsealPrivateKeys(keys.sealingKey, sealed);
    expect(unsealed).toEqual(privateKeys);
    expect(await exportIdentity(await importIdentity({ ...exported, ...unsealed }))).toEqual(exported);
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
