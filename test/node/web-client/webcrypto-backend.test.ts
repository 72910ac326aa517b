// The browser's CryptoBackend (web-client/platform/webcrypto-backend.ts) on Node's WebCrypto, which has
// RSA-OAEP and Ed25519 as Chromium's does: the published vectors the Node backend is held to
// (test/vectors/README.md), its refusals, and a cross-check with the Node backend both ways, from single
// primitives up to whole sealed messages.

import { type KeyObject, createHash, generateKeyPairSync, hkdfSync, scryptSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { scryptAsync } from "@noble/hashes/scrypt.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromHex, toHex } from "../../../protocol/bytes.js";
import { nodeCrypto } from "../../../cli-client/platform/node-crypto.js";
import { installCryptoBackend } from "../../../client/crypto/backend.js";
import { SenderKeyring, UnwrapCache } from "../../../client/crypto/conversation-keys.js";
import { CryptoError } from "../../../client/crypto/errors.js";
import { openEnvelope, readDelivery, sealMessage } from "../../../client/crypto/message.js";
import {
  exportIdentity,
  fingerprint,
  generateIdentity,
  importIdentity,
  importPublicKeys,
} from "../../../client/crypto/primitives.js";
import { type CryptoBackend, KeyImportError, type PlatformKey } from "../../../client/platform.js";
import { webCryptoBackend } from "../../../web-client/platform/webcrypto-backend.js";
import { deliveryFor } from "../crypto/helpers.js";

const web = webCryptoBackend({
  scrypt: (password, salt, { N, r, p }, length) => scryptAsync(password, salt, { N, r, p, dkLen: length }),
});

type Result = "valid" | "invalid" | "acceptable";
interface OaepGroup {
  privateKeyPkcs8: string;
  tests: Array<{ tcId: number; comment: string; msg: string; ct: string; label: string; result: Result }>;
}
interface EddsaGroup {
  publicKeyJwk: { x: string };
  tests: Array<{ tcId: number; comment: string; msg: string; sig: string; result: Result }>;
}

function load<T>(path: string): T {
  return JSON.parse(readFileSync(new URL(`../../vectors/${path}`, import.meta.url), "utf8")) as T;
}
const oaep = load<{ testGroups: OaepGroup[] }>("wycheproof/rsa_oaep_3072_sha256_mgf1sha256_test.json");
const eddsa = load<{ testGroups: EddsaGroup[] }>("wycheproof/ed25519_test.json");

/** A raw 32-byte Ed25519 public key as SPKI DER (RFC 8410: the fixed 12-byte prefix, then the key). */
function ed25519Spki(raw: Uint8Array): Uint8Array {
  return new Uint8Array([...fromHex("302a300506032b6570032100"), ...raw]);
}
const b64url = (text: string) => new Uint8Array(Buffer.from(text, "base64url"));

describe("Wycheproof RSA-OAEP-3072 SHA-256 MGF1-SHA-256 through the WebCrypto backend", () => {
  for (const group of oaep.testGroups) {
    const key = web.importPrivateKey(fromHex(group.privateKeyPkcs8), "RSA-OAEP");
    for (const test of group.tests) {
      it(`tcId ${test.tcId} (${test.result}) ${test.comment}`, async () => {
        const decrypt = async () => web.rsaOaepDecrypt(await key, fromHex(test.ct), fromHex(test.label));
        if (test.result === "valid") expect(toHex(await decrypt())).toBe(test.msg);
        else if (test.result === "invalid") await expect(decrypt()).rejects.toThrow();
        else {
          const out = await decrypt().catch(() => null);
          if (out) expect(toHex(out)).toBe(test.msg);
        }
      });
    }
  }
});

describe("Wycheproof Ed25519 through the WebCrypto backend", () => {
  for (const group of eddsa.testGroups) {
    const key = web.importPublicKey(ed25519Spki(b64url(group.publicKeyJwk.x)), "Ed25519");
    for (const test of group.tests) {
      it(`tcId ${test.tcId} (${test.result}) ${test.comment}`, async () => {
        const accepted = await web.ed25519Verify(await key, fromHex(test.msg), fromHex(test.sig));
        if (test.result === "valid") expect(accepted).toBe(true);
        else if (test.result === "invalid") expect(accepted).toBe(false);
        else expect(typeof accepted).toBe("boolean");
      });
    }
  }
});

describe("keys", () => {
  it("generates RSA-3072 with e = 65537 and reports it, and Ed25519", async () => {
    const rsa = await web.generateRsaKeyPair(3072, 65537);
    expect(web.rsaParameters(rsa.publicKey)).toEqual({ modulusBits: 3072, publicExponent: 65537 });
    expect(web.rsaParameters(rsa.privateKey)).toEqual({ modulusBits: 3072, publicExponent: 65537 });
    const ed = await web.generateEd25519KeyPair();
    expect(web.rsaParameters(ed.publicKey)).toEqual({ modulusBits: 0, publicExponent: 0 });
    expect(await web.exportPublicKey(await web.publicKeyOf(rsa.privateKey))).toEqual(
      await web.exportPublicKey(rsa.publicKey),
    );
  });

  it("imports private keys non-extractable, with their public half kept beside them", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 3072 });
    const der = new Uint8Array(privateKey.export({ type: "pkcs8", format: "der" }));
    const imported = await web.importPrivateKey(der, "RSA-OAEP");
    expect((imported as CryptoKey).extractable).toBe(false);
    await expect(web.exportPrivateKey(imported)).rejects.toThrow();
    expect(await web.exportPublicKey(await web.publicKeyOf(imported))).toEqual(
      new Uint8Array(publicKey.export({ type: "spki", format: "der" })),
    );
    const ed = generateKeyPairSync("ed25519");
    const edImported = await web.importPrivateKey(
      new Uint8Array(ed.privateKey.export({ type: "pkcs8", format: "der" })),
      "Ed25519",
    );
    expect(await web.exportPublicKey(await web.publicKeyOf(edImported))).toEqual(
      new Uint8Array(ed.publicKey.export({ type: "spki", format: "der" })),
    );
  });

  it("tells a key of another algorithm from bytes that are no key", async () => {
    const ed = generateKeyPairSync("ed25519");
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const spki = (key: KeyObject) => new Uint8Array(key.export({ type: "spki", format: "der" }));
    const pkcs8 = (key: KeyObject) => new Uint8Array(key.export({ type: "pkcs8", format: "der" }));
    const reason = (promise: Promise<PlatformKey>) =>
      promise.then(
        () => "imported",
        (error: unknown) => (error instanceof KeyImportError ? error.reason : `other: ${String(error)}`),
      );
    expect(await reason(web.importPublicKey(spki(ed.publicKey), "RSA-OAEP"))).toBe("wrong-algorithm");
    expect(await reason(web.importPublicKey(spki(ec.publicKey), "Ed25519"))).toBe("wrong-algorithm");
    expect(await reason(web.importPublicKey(spki(rsa.publicKey), "Ed25519"))).toBe("wrong-algorithm");
    expect(await reason(web.importPrivateKey(pkcs8(ed.privateKey), "RSA-OAEP"))).toBe("wrong-algorithm");
    expect(await reason(web.importPrivateKey(pkcs8(rsa.privateKey), "Ed25519"))).toBe("wrong-algorithm");
    expect(await reason(web.importPublicKey(new Uint8Array([1, 2, 3]), "RSA-OAEP"))).toBe("malformed");
    expect(await reason(web.importPrivateKey(spki(rsa.publicKey), "RSA-OAEP"))).toBe("malformed");
    const truncated = spki(rsa.publicKey).subarray(0, 100);
    expect(await reason(web.importPublicKey(truncated, "RSA-OAEP"))).toBe("malformed");
    expect(await reason(web.importPublicKey(spki(rsa.publicKey), "RSA-OAEP"))).toBe("imported");
  });

  it("verify is false, not an error, for a key of another type or a short signature", async () => {
    const rsa = await web.generateRsaKeyPair(3072, 65537);
    const ed = await web.generateEd25519KeyPair();
    const message = new Uint8Array([1, 2, 3]);
    const signature = await web.ed25519Sign(ed.privateKey, message);
    expect(await web.ed25519Verify(ed.publicKey, message, signature)).toBe(true);
    expect(await web.ed25519Verify(rsa.publicKey, message, signature)).toBe(false);
    expect(await web.ed25519Verify(ed.privateKey, message, signature)).toBe(false);
    expect(await web.ed25519Verify(ed.publicKey, message, signature.subarray(0, 63))).toBe(false);
  });

  it("signs the message as it was when called, even if the buffer changes right after", async () => {
    const ed = await web.generateEd25519KeyPair();
    const message = new Uint8Array([5, 6, 7]);
    const signing = web.ed25519Sign(ed.privateKey, message);
    message.fill(0);
    expect(await web.ed25519Verify(ed.publicKey, new Uint8Array([5, 6, 7]), await signing)).toBe(true);
  });
});

describe("the WebCrypto and Node backends agree", () => {
  const message = new TextEncoder().encode("a conversation key, or close enough");
  const label = new Uint8Array([0, 1, 2, 3, 4]);

  /** The same key pair in both backends, made by `maker` and carried over as DER. */
  async function pairIn(maker: CryptoBackend, algorithm: "RSA-OAEP" | "Ed25519") {
    const pair =
      algorithm === "RSA-OAEP"
        ? await maker.generateRsaKeyPair(3072, 65537)
        : await maker.generateEd25519KeyPair();
    const other = maker === web ? nodeCrypto : web;
    const publicDer = await maker.exportPublicKey(pair.publicKey);
    const privateDer = await maker.exportPrivateKey(pair.privateKey);
    return {
      maker: pair,
      other: {
        publicKey: await other.importPublicKey(publicDer, algorithm),
        privateKey: await other.importPrivateKey(privateDer, algorithm),
      },
      publicDer,
      otherBackend: other,
    };
  }

  for (const [name, maker] of [
    ["WebCrypto", web],
    ["Node", nodeCrypto],
  ] as const) {
    it(`RSA-OAEP: what one encrypts under a ${name} key the other decrypts, with and without a label`, async () => {
      const { maker: pair, other, otherBackend, publicDer } = await pairIn(maker, "RSA-OAEP");
      expect(await otherBackend.exportPublicKey(other.publicKey)).toEqual(publicDer);
      for (const withLabel of [undefined, label]) {
        const there = await otherBackend.rsaOaepEncrypt(other.publicKey, message, withLabel);
        expect(await maker.rsaOaepDecrypt(pair.privateKey, there, withLabel)).toEqual(message);
        const back = await maker.rsaOaepEncrypt(pair.publicKey, message, withLabel);
        expect(await otherBackend.rsaOaepDecrypt(other.privateKey, back, withLabel)).toEqual(message);
      }
      const labelled = await otherBackend.rsaOaepEncrypt(other.publicKey, message, label);
      await expect(maker.rsaOaepDecrypt(pair.privateKey, labelled)).rejects.toThrow();
    });

    it(`Ed25519: what one signs with a ${name} key the other verifies, and they sign alike`, async () => {
      const { maker: pair, other, otherBackend } = await pairIn(maker, "Ed25519");
      const signature = await maker.ed25519Sign(pair.privateKey, message);
      // Ed25519 is deterministic: the same key signs the same message with the same bytes.
      expect(await otherBackend.ed25519Sign(other.privateKey, message)).toEqual(signature);
      expect(await otherBackend.ed25519Verify(other.publicKey, message, signature)).toBe(true);
      const forged = signature.slice();
      forged[10]! ^= 1;
      expect(await otherBackend.ed25519Verify(other.publicKey, message, forged)).toBe(false);
    });
  }

  it("hashes incrementally as node:crypto does", () => {
    const pieces = [new Uint8Array(0), new Uint8Array(1000).fill(7), new TextEncoder().encode("tail")];
    for (const algorithm of ["sha256", "sha512"] as const) {
      const hasher = web.hasher(algorithm);
      const reference = createHash(algorithm);
      for (const piece of pieces) {
        hasher.update(piece);
        reference.update(piece);
      }
      expect(toHex(hasher.digest())).toBe(reference.digest("hex"));
    }
  });

  it("derives HKDF-SHA256 and scrypt as node:crypto does", async () => {
    const key = new Uint8Array(32).fill(9);
    const salt = new Uint8Array([1, 2, 3]);
    const info = new TextEncoder().encode("telepound test");
    expect(await web.hkdfSha256(key, salt, info, 32)).toEqual(
      new Uint8Array(hkdfSync("sha256", key, salt, info, 32)),
    );
    expect(await web.hkdfSha256(key, new Uint8Array(0), info, 32)).toEqual(
      new Uint8Array(hkdfSync("sha256", key, new Uint8Array(0), info, 32)),
    );
    const password = new TextEncoder().encode("correct horse");
    expect(await web.scrypt(password, salt, { N: 1024, r: 8, p: 1 }, 32)).toEqual(
      new Uint8Array(scryptSync(password, salt, 32, { N: 1024, r: 8, p: 1 })),
    );
  });

  it("fills large buffers with randomness (beyond getRandomValues' 64 KiB at once)", () => {
    const bytes = new Uint8Array(200_000);
    web.fillRandom(bytes);
    expect(bytes.subarray(150_000).some((byte) => byte !== 0)).toBe(true);
    expect(new Set(bytes.subarray(0, 1000)).size).toBeGreaterThan(200);
  });
});

describe("the core's crypto on the WebCrypto backend", () => {
  beforeAll(() => installCryptoBackend(web));
  afterAll(() => installCryptoBackend(nodeCrypto));

  it("exports a generated identity and imports it back, checking each public key against its private key", async () => {
    const exported = await exportIdentity(await generateIdentity());
    const imported = await importIdentity(exported);
    expect(await web.exportPublicKey(imported.encryption.publicKey)).toEqual(
      new Uint8Array(Buffer.from(exported.encryptionPublic, "base64")),
    );
    const other = await exportIdentity(await generateIdentity());
    await expect(importIdentity({ ...exported, signingPublic: other.signingPublic })).rejects.toThrow(
      /signing public key does not belong/,
    );
    await expect(importIdentity({ ...exported, encryptionPublic: other.encryptionPublic })).rejects.toThrow(
      /encryption public key does not belong/,
    );
  });

  it("refuses an RSA key below 3072 bits and a signing key that is not Ed25519", async () => {
    const small = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const ed = generateKeyPairSync("ed25519");
    const spki = (key: KeyObject) => key.export({ type: "spki", format: "der" }).toString("base64");
    await expect(
      importPublicKeys({ encryption: spki(small.publicKey), signing: spki(ed.publicKey) }),
    ).rejects.toThrow(CryptoError);
    const big = generateKeyPairSync("rsa", { modulusLength: 3072 });
    await expect(
      importPublicKeys({ encryption: spki(big.publicKey), signing: spki(big.publicKey) }),
    ).rejects.toThrow(/must be Ed25519/);
  });

  /** A user as one backend holds it, with its public keys imported into `peer`, the other backend. */
  async function user(name: string, own: CryptoBackend) {
    installCryptoBackend(own);
    const identity = await generateIdentity();
    const exported = await exportIdentity(identity);
    const publicKeys = { encryption: exported.encryptionPublic, signing: exported.signingPublic };
    return { name, own, identity, publicKeys, fingerprint: fingerprint(publicKeys) };
  }

  it("a message sealed with one backend opens with the other, both ways", async () => {
    const alice = await user("alice", web);
    const bob = await user("bob", nodeCrypto);
    for (const [from, to] of [
      [alice, bob],
      [bob, alice],
    ] as const) {
      installCryptoBackend(to.own);
      const senderSigningKey = (await importPublicKeys(from.publicKeys)).signing;
      installCryptoBackend(from.own);
      const recipientKey = (await importPublicKeys(to.publicKeys)).encryption;
      const sealed = await sealMessage({
        signingPrivateKey: from.identity.signing.privateKey,
        sender: from.name,
        kind: "direct",
        target: to.name,
        epoch: 0,
        recipients: [{ username: to.name, encryptionKey: recipientKey, fingerprint: to.fingerprint }],
        payload: { text: `hello ${to.name}` },
        counter: 1,
        deviceId: new Uint8Array(16).fill(1),
        sequence: 1,
        keyring: new SenderKeyring(),
      });
      installCryptoBackend(to.own);
      const opened = await openEnvelope(readDelivery(deliveryFor(sealed.frame, to.name)), {
        me: to.name,
        encryptionPrivateKey: to.identity.encryption.privateKey,
        senderSigningKey,
        unwrapCache: new UnwrapCache(),
      });
      expect(opened.payload.text).toBe(`hello ${to.name}`);
      expect(opened.header.sender).toBe(from.name);
    }
    installCryptoBackend(web);
  });
});
