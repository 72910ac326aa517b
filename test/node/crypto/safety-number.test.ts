// Safety numbers: the same for both sides, different for any other name or key, and equal to an
// independent implementation of the derivation as docs/PROTOCOL.md §3.7 writes it, so the two cannot drift.
// Keys are fixed: the RSA-3072 key of the Wycheproof RSA-OAEP file and Ed25519 keys of the Ed25519 file.

import { createHash, createPrivateKey, createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { PublicKeys } from "../../../protocol/http.js";
import { type SafetyNumberParty, safetyNumber, safetyNumberHalf } from "../../../client/crypto/index.js";

function load<T>(path: string): T {
  return JSON.parse(readFileSync(new URL(`../../vectors/${path}`, import.meta.url), "utf8")) as T;
}

const rsaPkcs8 = load<{ testGroups: Array<{ privateKeyPkcs8: string }> }>(
  "wycheproof/rsa_oaep_3072_sha256_mgf1sha256_test.json",
).testGroups[0]!.privateKeyPkcs8;
const ed25519Ders = load<{ testGroups: Array<{ publicKeyDer: string }> }>(
  "wycheproof/ed25519_test.json",
).testGroups.map((group) => group.publicKeyDer);

const rsaSpki = createPublicKey(
  createPrivateKey({ key: Buffer.from(rsaPkcs8, "hex"), format: "der", type: "pkcs8" }),
)
  .export({ type: "spki", format: "der" })
  .toString("base64");
const ed25519 = (hex: string) => Buffer.from(hex, "hex").toString("base64");
const distinctEd25519 = [...new Set(ed25519Ders)];

const alice: SafetyNumberParty = {
  username: "alice",
  publicKeys: { encryption: rsaSpki, signing: ed25519(distinctEd25519[0]!) },
};
const bob: SafetyNumberParty = {
  username: "bob",
  publicKeys: { encryption: rsaSpki, signing: ed25519(distinctEd25519[1]!) },
};

/** PROTOCOL.md §3.7, written again from the text with Buffers and BigInts instead of the client's code. */
function documentedHalf(username: string, keys: PublicKeys): string {
  const name = Buffer.from(username, "utf8");
  const encryption = Buffer.from(keys.encryption, "base64");
  const signing = Buffer.from(keys.signing, "base64");
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const m = Buffer.concat([
    Buffer.from([name.length]),
    name,
    u16(encryption.length),
    encryption,
    u16(signing.length),
    signing,
  ]);
  const context = Buffer.concat([Buffer.from("telepound/v1/safety-number", "ascii"), Buffer.from([0])]);
  let h = createHash("sha512")
    .update(Buffer.concat([context, m]))
    .digest();
  for (let i = 1; i <= 5199; i++)
    h = createHash("sha512")
      .update(Buffer.concat([h, m]))
      .digest();
  let digits = "";
  for (let k = 0; k < 6; k++) {
    const chunk = BigInt(`0x${h.subarray(5 * k, 5 * k + 5).toString("hex")}`);
    digits += (chunk % 100000n).toString().padStart(5, "0");
  }
  return digits;
}

function documentedNumber(a: SafetyNumberParty, b: SafetyNumberParty): string {
  const x = documentedHalf(a.username, a.publicKeys);
  const y = documentedHalf(b.username, b.publicKeys);
  const both = BigInt(x) <= BigInt(y) ? x + y : y + x;
  const groups: string[] = [];
  for (let i = 0; i < 60; i += 5) groups.push(both.slice(i, i + 5));
  return groups.join(" ");
}

/** Flips the last byte of a base64 DER value (the key's last byte), keeping it canonical base64. */
function flipLastByte(base64: string): string {
  const bytes = Buffer.from(base64, "base64");
  const last = bytes.length - 1;
  bytes[last] = bytes[last]! ^ 1;
  return bytes.toString("base64");
}

describe("safety numbers", () => {
  it("are 12 groups of 5 digits, the same whichever side computes them", () => {
    const number = safetyNumber(alice, bob);
    expect(number).toMatch(/^\d{5}( \d{5}){11}$/);
    expect(safetyNumber(bob, alice)).toBe(number);
  });

  it("match the documented derivation over fixed keys", () => {
    expect(safetyNumberHalf(alice)).toBe(documentedHalf(alice.username, alice.publicKeys));
    expect(safetyNumberHalf(bob)).toBe(documentedHalf(bob.username, bob.publicKeys));
    expect(safetyNumber(alice, bob)).toBe(documentedNumber(alice, bob));
    // Frozen: a change to the derivation changes every user's number, so it must be deliberate.
    expect(safetyNumber(alice, bob)).toBe(
      "53739 48645 60078 41119 73684 95991 61526 00392 74888 19739 03947 11694",
    );
  });

  it("put the smaller half first", () => {
    const [first, second] = [safetyNumberHalf(alice), safetyNumberHalf(bob)].sort((x, y) =>
      BigInt(x) < BigInt(y) ? -1 : 1,
    );
    expect(safetyNumber(alice, bob).replaceAll(" ", "")).toBe(`${first}${second}`);
  });

  it("change when either name or any key changes", () => {
    const number = safetyNumber(alice, bob);
    const variants: SafetyNumberParty[] = [
      { ...bob, username: "bobby" },
      { ...bob, publicKeys: { ...bob.publicKeys, encryption: flipLastByte(bob.publicKeys.encryption) } },
      { ...bob, publicKeys: { ...bob.publicKeys, signing: ed25519(distinctEd25519[2]!) } },
      // The two keys swapped: each has its own place in the input.
      { ...bob, publicKeys: { encryption: bob.publicKeys.signing, signing: bob.publicKeys.encryption } },
    ];
    const numbers = variants.map((variant) => safetyNumber(alice, variant));
    for (const other of numbers) expect(other).not.toBe(number);
    expect(new Set(numbers).size).toBe(variants.length);
    expect(safetyNumber({ ...alice, username: "alicia" }, bob)).not.toBe(number);
  });

  it("refuse keys that are not canonical base64", () => {
    expect(() => safetyNumberHalf({ ...bob, publicKeys: { ...bob.publicKeys, signing: "QR==" } })).toThrow(
      /signing public key is not canonical base64/,
    );
  });
});
