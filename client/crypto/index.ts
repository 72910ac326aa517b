// The client's crypto module, as the CLI uses it: identities, password keys, messages, file attachments
// and safety numbers. The rest of client/crypto/ is internal (tests import primitives for the vectors).

export { CryptoError, PayloadTooLargeError, TamperedMessageError, WrongPasswordError } from "./errors.js";
export {
  exportIdentity,
  fingerprint,
  generateIdentity,
  importIdentity,
  importPublicKeys,
  type ExportedIdentity,
  type Identity,
  type PublicKeyObjects,
} from "./primitives.js";
export { toBase64 } from "./base64.js";
export {
  SAFETY_NUMBER_CONTEXT,
  SAFETY_NUMBER_ITERATIONS,
  safetyNumber,
  safetyNumberHalf,
  type SafetyNumberParty,
} from "./safety-number.js";
export {
  derivePasswordKeys,
  kdfOrigin,
  sealPrivateKeys,
  unsealPrivateKeys,
  type PasswordAccount,
  type PasswordKeys,
  type PrivateKeys,
} from "./password.js";
export { newDeviceId } from "./payload.js";
export {
  DEVICE_ID_BYTES,
  type DecodedPayload,
  type Payload,
  type SenderSequence,
} from "../../protocol/payload.js";
export {
  SenderKeyring,
  UnwrapCache,
  type SenderKeyringJson,
  type UnwrapCacheJson,
} from "./conversation-keys.js";
export {
  openEnvelope,
  readDelivery,
  sealMessage,
  type OpenOptions,
  type OpenedMessage,
  type Recipient,
  type SealOptions,
  type SealedMessage,
} from "./message.js";
export { ReplayGuard, replayId, type SeenIds } from "./replay-guard.js";
export {
  FILE_KEY_BYTES,
  NONCE_PREFIX_BYTES,
  TamperedFileError,
  chunkCount,
  newFileSecrets,
  openFile,
  sealFile,
  type FileDigest,
  type FileSecrets,
  type OpenFileOptions,
  type StreamOptions,
} from "./file.js";
export { fromBase64 } from "./base64.js";
export { signStatement, verifyStatement } from "./group-statement.js";
