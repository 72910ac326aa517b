// Which platform's cryptography the crypto module uses: installed once per process (TelepoundClient.open
// installs its platform's), as a process has one platform and every key it holds comes from it.

import type { CryptoBackend } from "../platform.js";

let installed: CryptoBackend | null = null;

export function installCryptoBackend(backend: CryptoBackend): void {
  installed = backend;
}

export function cryptoBackend(): CryptoBackend {
  if (!installed)
    throw new Error("no crypto backend installed (installCryptoBackend, or TelepoundClient.open)");
  return installed;
}
