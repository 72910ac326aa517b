// The browser adapter as one Platform (client/platform.ts) for TelepoundClient.open: WebCrypto with
// scrypt in a Web Worker, homes in IndexedDB with Web Locks, fetch and the browser's WebSocket, picked
// files and the Origin Private File System for attachments. What a page needs beyond the core's
// interface (registering a picked file, a download URL, wiping this browser's copy) is here too.

import type { HomeStorage, Platform } from "../../client/platform.js";
import { type BrowserFiles, browserFiles } from "./browser-files.js";
import { browserNetwork } from "./browser-network.js";
import { deleteHomeDatabase } from "./idb-database.js";
import { IdbHomeStorage } from "./idb-home.js";
import { type ScryptRunner, scryptInWorker } from "./scrypt-in-worker.js";
import { webCryptoBackend } from "./webcrypto-backend.js";

export interface BrowserPlatformOptions {
  /** The built scrypt-worker.ts (a module worker), served from the page's own origin. */
  scryptWorkerUrl: string | URL;
}

export interface BrowserPlatform extends Platform {
  files: BrowserFiles;
  home(location: string): HomeStorage;
  /** Where the home at `location` keeps received files (a folder of `files`). */
  downloadsOf(location: string): string;
  /** Deletes everything this browser holds for the home at `location`: its database and received files. */
  wipeHome(location: string): Promise<void>;
}

export function browserPlatform(options: BrowserPlatformOptions): BrowserPlatform {
  return browserPlatformWith(scryptInWorker(options.scryptWorkerUrl));
}

/** The same, with scrypt run by `scrypt` (a test's, or a page that runs it elsewhere). */
export function browserPlatformWith(scrypt: ScryptRunner): BrowserPlatform {
  const files = browserFiles();
  const downloadsOf = (location: string) => `/received/${encodeURIComponent(location)}`;
  return {
    crypto: webCryptoBackend({ scrypt }),
    home: (location) => new IdbHomeStorage(location, downloadsOf(location)),
    files,
    network: browserNetwork,
    clock: {
      now: () => Date.now(),
      // A page's timers never keep anything alive on their own: nothing to detach from.
      detach: () => undefined,
    },
    downloadsOf,
    async wipeHome(location) {
      await deleteHomeDatabase(location);
      await files.removeFolder(downloadsOf(location));
    },
  };
}

export type { BrowserFiles } from "./browser-files.js";
