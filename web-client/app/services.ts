// What the page needs from the browser beyond the core's Platform: the adapter (web-client/platform/)
// provides these, and main.tsx hands them to the app, so the app names no adapter function itself.

import type { Platform } from "../../client/platform.js";

/** The one home a browser keeps: its IndexedDB database (and OPFS folder) is named for it. */
export const HOME = "telepound";

export interface BrowserServices {
  platform: Platform;
  /** A file the user picked, as a path-like name the core's FileAccess can stat and read piece by piece. */
  registerFile(file: File): string;
  /** A URL to download the received file saved at `path` (a disk-backed object URL), to be revoked after. */
  downloadUrl(path: string): Promise<string>;
  /** Removes everything this browser keeps for the home at `location`: documents, history, files. */
  wipe(location: string): Promise<void>;
}
