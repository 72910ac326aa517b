// Bundles the web client into dist/web/, the directory wrangler.toml serves as static assets:
//   index.html           the page (web-client/index.html with the hashed names filled in; no inline script)
//   assets/*-[hash].*    the page's script (web-client/main.tsx), the scrypt Web Worker and the stylesheet;
//                        their names change with their content, so `_headers` lets browsers keep them
//   _headers             the page's Content-Security-Policy and other security headers (never served itself)
// and fails when the page's JavaScript, gzipped, is over its budget: what a first visit downloads is the
// product's start-up time, so it is measured on every build, not once.

import { mkdir, readFile, rm, stat, writeFile, copyFile } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { zodEnglishOnly } from "./zod-english-only.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const source = join(root, "web-client");
const outdir = join(root, "dist", "web");
const assets = join(outdir, "assets");

/** The budget for all of the page's JavaScript together (gzip). */
const JAVASCRIPT_BUDGET_BYTES = 150 * 1024;

/**
 * Served with the page and every other asset (the API under /v1 is the Worker's and never reaches here).
 * 'self' covers the page's own ws:/wss: origin for the WebSocket (CSP Level 3; Chromium since 71), so the
 * policy names no host and the same file serves localhost and a deployment. No 'unsafe-inline' anywhere:
 * the page has no inline script, no inline style and no style attribute. form-action 'none': the page's
 * forms are handled by script; a native submission (script broken) must not put a password in a URL.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "worker-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS = {
  "Content-Security-Policy": CONTENT_SECURITY_POLICY,
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  // frame-ancestors for browsers that predate it.
  "X-Frame-Options": "DENY",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
};

await rm(outdir, { recursive: true, force: true });
await mkdir(assets, { recursive: true });

const common = {
  bundle: true,
  platform: "browser",
  format: "esm",
  target: ["chrome120", "firefox120", "safari17"],
  minify: true,
  sourcemap: "linked",
  legalComments: "none",
  logLevel: "warning",
  outdir: assets,
  entryNames: "[name]-[hash]",
  metafile: true,
  plugins: [zodEnglishOnly],
  // The metafile's paths are relative to this.
  absWorkingDir: root,
};

/** The output file of an entry point, as the page refers to it (/assets/name-hash.ext). */
function outputOf(metafile, entry) {
  const wanted = relative(root, entry);
  const [file] = Object.entries(metafile.outputs).find(([, output]) => output.entryPoint === wanted) ?? [];
  if (!file) throw new Error(`esbuild wrote nothing for ${wanted}`);
  return "/assets/" + basename(file);
}

// The scrypt Web Worker belongs to the browser platform (web-client/platform/); a tree without it still
// builds a page, which then has no worker to name.
const workerEntry = join(source, "platform", "scrypt-worker.ts");
const hasWorker = await stat(workerEntry).then(
  (found) => found.isFile(),
  () => false,
);
let scryptWorkerUrl = "";
const outputs = [];
if (hasWorker) {
  const worker = await build({ ...common, entryPoints: [workerEntry] });
  scryptWorkerUrl = outputOf(worker.metafile, workerEntry);
  outputs.push(worker.metafile);
}

const mainEntry = join(source, "main.tsx");
const styleEntry = join(source, "app", "style.css");
const page = await build({
  ...common,
  entryPoints: [mainEntry, styleEntry],
  jsx: "automatic",
  jsxImportSource: "hono/jsx/dom",
  // The platform starts the worker from its hashed name; known only now, so it is compiled in.
  define: { __SCRYPT_WORKER_URL__: JSON.stringify(scryptWorkerUrl) },
});
outputs.push(page.metafile);

const template = await readFile(join(source, "index.html"), "utf8");
const html = template
  .replace("{{script}}", outputOf(page.metafile, mainEntry))
  .replace("{{stylesheet}}", outputOf(page.metafile, styleEntry));
if (html.includes("{{")) throw new Error("web-client/index.html has a placeholder the build does not fill");
await writeFile(join(outdir, "index.html"), html);
await copyFile(join(source, "favicon.svg"), join(outdir, "favicon.svg"));

const headerLines = Object.entries(SECURITY_HEADERS).map(([name, value]) => `  ${name}: ${value}`);
await writeFile(
  join(outdir, "_headers"),
  ["/*", ...headerLines, "", "/assets/*", "  Cache-Control: public, max-age=31536000, immutable", ""].join(
    "\n",
  ),
);

// Every script the page may load: the entry, its chunks and the worker, as a browser downloads them.
let gzipped = 0;
for (const metafile of outputs) {
  for (const file of Object.keys(metafile.outputs)) {
    if (!file.endsWith(".js")) continue;
    gzipped += gzipSync(await readFile(join(root, file)), { level: 9 }).length;
  }
}
const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
console.log(`web client: page JavaScript ${kib(gzipped)} gzip (budget ${kib(JAVASCRIPT_BUDGET_BYTES)})`);
if (gzipped > JAVASCRIPT_BUDGET_BYTES) {
  console.error(
    `web client: the page's JavaScript is over its budget by ${kib(gzipped - JAVASCRIPT_BUDGET_BYTES)}`,
  );
  process.exit(1);
}
