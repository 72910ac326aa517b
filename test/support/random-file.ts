// Large files of random bytes for the memory tests, written a MiB at a time so the test process itself
// never holds the whole file; samples of the content are remembered for the run-wide privacy scan.

import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rememberSecret } from "./privacy.js";

const MIB = 1024 * 1024;

/** Writes `size` random bytes (whole MiBs) to `path`, its windows remembered under `label`; its SHA-256. */
export async function writeRandomFile(path: string, size: number, label: string): Promise<string> {
  const hash = createHash("sha256");
  const out = createWriteStream(path);
  for (let written = 0; written < size; written += MIB) {
    const block = randomBytes(MIB);
    hash.update(block);
    // A window from every eighth MiB: any stored copy of the plaintext would contain one.
    if (written % (8 * MIB) === 0) rememberSecret(`content of ${label} at ${written}`, block.subarray(0, 64));
    if (!out.write(block)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
  }
  await new Promise<void>((resolve) => out.end(() => resolve()));
  return hash.digest("hex");
}
