// Checks a membership statement's Ed25519 signature in the Worker, with WebCrypto, under the signer's
// published signing key (SPKI DER, base64). The statement format and the rules are protocol/group-statement.ts.

import { decodeBase64 } from "hono/utils/encode";
import { statementSigningInput } from "../../protocol/group-statement.js";

/** True only for a valid signature; a key that does not import is a failed check, never a throw. */
export async function statementSignatureValid(
  signingKeySpki: string,
  statement: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  try {
    const key = await crypto.subtle.importKey(
      "spki",
      decodeBase64(signingKeySpki),
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, statementSigningInput(statement));
  } catch {
    return false;
  }
}
