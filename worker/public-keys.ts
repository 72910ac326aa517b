// Signup refuses keys no client could use: the encryption key must be RSA-OAEP of at least 3072 bits,
// the signing key Ed25519. Parsed with WebCrypto, so a malformed DER is caught here, not by a peer.

import { decodeBase64 } from "hono/utils/encode";
import type { PublicKeys } from "../protocol/http.js";
import { ApiError } from "./errors.js";

export async function assertUsablePublicKeys(keys: PublicKeys): Promise<void> {
  let rsa: CryptoKey;
  try {
    rsa = await crypto.subtle.importKey(
      "spki",
      decodeBase64(keys.encryption),
      { name: "RSA-OAEP", hash: "SHA-256" },
      true,
      ["encrypt"],
    );
  } catch {
    throw new ApiError("bad_request", "publicKeys.encryption is not an RSA SPKI public key");
  }
  const modulusLength = (rsa.algorithm as { modulusLength?: number }).modulusLength ?? 0;
  if (modulusLength < 3072)
    throw new ApiError("bad_request", `RSA keys must have at least 3072 bits, got ${modulusLength}`);
  try {
    await crypto.subtle.importKey("spki", decodeBase64(keys.signing), { name: "Ed25519" }, true, ["verify"]);
  } catch {
    throw new ApiError("bad_request", "publicKeys.signing is not an Ed25519 SPKI public key");
  }
}
