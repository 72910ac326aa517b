// Signing and verifying group membership statements (protocol/group-statement.ts) with the user's
// Ed25519 key: the same primitive as envelopes, under the statement's own context prefix.

import { statementSigningInput } from "../../protocol/group-statement.js";
import type { PlatformKey } from "../platform.js";
import { sign, verify } from "./primitives.js";

export function signStatement(signingPrivateKey: PlatformKey, statement: Uint8Array): Promise<Uint8Array> {
  return sign(signingPrivateKey, statementSigningInput(statement));
}

/** Never throws: a wrong key type or a malformed signature is `false`. */
export function verifyStatement(
  signingKey: PlatformKey,
  statement: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  return verify(signingKey, statementSigningInput(statement), signature);
}
