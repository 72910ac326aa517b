// The page's entry: the browser platform (web-client/platform/) under the web client's UI, on the page's
// own origin as the server.

import "./zod-jitless.js";
import { render } from "hono/jsx/dom";
import { App } from "./app/app.js";
import type { BrowserServices } from "./app/services.js";
import { browserPlatform } from "./platform/index.js";

/** The hashed URL of the built scrypt worker, compiled in by scripts/build-web.mjs. */
declare const __SCRYPT_WORKER_URL__: string;

const platform = browserPlatform({ scryptWorkerUrl: __SCRYPT_WORKER_URL__ });
const services: BrowserServices = {
  platform,
  registerFile: (file) => platform.files.register(file),
  downloadUrl: (path) => platform.files.downloadUrl(path),
  wipe: (location) => platform.wipeHome(location),
};

render(<App services={services} server={location.origin} />, document.getElementById("app")!);
