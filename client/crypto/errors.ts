// The errors the crypto module throws, so callers can tell a wrong password from a forged message.
// Every one extends CryptoError; client/errors.ts maps them to exit codes.

/** A key, parameter or input that the crypto layer refuses (bad key type, bad origin, malformed blob). */
export class CryptoError extends Error {
  override name = "CryptoError";
}

/** The sealed private keys did not open: the password is wrong, or the server sent another blob. */
export class WrongPasswordError extends CryptoError {
  override name = "WrongPasswordError";
  constructor(message = "wrong password: the private keys did not unseal") {
    super(message);
  }
}

/**
 * A received envelope failed a check: malformed, not for us, bad signature, wrong recipients or epoch,
 * undecryptable, or a key commitment mismatch. `reason` names the check; the message says it too.
 */
export class TamperedMessageError extends CryptoError {
  override name = "TamperedMessageError";
  constructor(readonly reason: string) {
    super(`message rejected: ${reason}`);
  }
}

/** Text or attachment descriptor over the protocol's limits: the user's input, not an attack. */
export class PayloadTooLargeError extends CryptoError {
  override name = "PayloadTooLargeError";
}
