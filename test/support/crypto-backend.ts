// Tests that use the client's crypto module directly (without TelepoundClient.open) get Node's backend,
// as the CLI does.

import { installCryptoBackend } from "../../client/crypto/backend.js";
import { nodeCrypto } from "../../cli-client/platform/node-crypto.js";

installCryptoBackend(nodeCrypto);
