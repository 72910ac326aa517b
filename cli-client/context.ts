// What every command receives: the printer, the home folder, the server URL and the password source,
// resolved once from the global options (--server, --home, --json) and the environment.

import { UsageError } from "../client/errors.js";
import type { Home } from "../client/store/home.js";
import { nodeHome, resolveHomeDir } from "./platform/node-home.js";
import { Printer, wantsColors } from "./output.js";
import { type PasswordSource, passwordSource } from "./password.js";

export const DEFAULT_SERVER = "http://127.0.0.1:8787";

/** The process's streams and environment; tests pass their own. */
export interface CliIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

export interface GlobalOptions {
  server?: string;
  home?: string;
  json?: boolean;
}

export interface Context {
  printer: Printer;
  home: Home;
  /** Base URL of the server, without a trailing slash. */
  server: string;
  /** True when --server or $TELEPOUND_SERVER named it; false when it is the default. */
  serverChosen: boolean;
  passwords: PasswordSource;
  io: CliIo;
}

export function createContext(options: GlobalOptions, io: CliIo): Context {
  const chosen = options.server ?? io.env.TELEPOUND_SERVER;
  return {
    printer: new Printer(
      options.json === true,
      { stdout: io.stdout, stderr: io.stderr },
      wantsColors(io.stdout, io.env),
    ),
    home: nodeHome(resolveHomeDir(options.home, io.env)),
    server: normalizeServer(chosen || DEFAULT_SERVER),
    serverChosen: Boolean(chosen),
    passwords: passwordSource(io),
    io,
  };
}

/** Accepts http(s) URLs only (ws:// is derived for /v1/connect); drops a trailing slash so URLs compare equal. */
export function normalizeServer(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--server must be a URL such as ${DEFAULT_SERVER}, not "${raw}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`--server must be an http:// or https:// URL, not "${raw}"`);
  }
  if (url.search || url.hash) throw new UsageError(`--server must not have a query or fragment: "${raw}"`);
  return url.href.replace(/\/+$/, "");
}
