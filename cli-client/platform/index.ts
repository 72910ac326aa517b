// The Node adapter as one Platform (client/platform.ts): node:crypto, homes as owner-only folders with
// SQLite history, attachments on the local disk, `ws` sockets and node:http uploads, Node's timers.

import type { Platform } from "../../client/platform.js";
import { nodeCrypto } from "./node-crypto.js";
import { nodeFiles } from "./node-files.js";
import { NodeHomeStorage } from "./node-home.js";
import { nodeNetwork } from "./node-network.js";

export function nodePlatform(): Platform {
  return {
    crypto: nodeCrypto,
    home: (location) => new NodeHomeStorage(location),
    files: nodeFiles,
    network: nodeNetwork,
    clock: {
      now: () => Date.now(),
      detach: (timer) => {
        timer.unref();
      },
    },
  };
}
