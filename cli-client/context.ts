// What every command receives: the printer, the client of the home (on the Node platform, for the
// server), and the password source, resolved once from the global options (--server, --home, --json)
// and the environment. The printer subscribes to the client's events here: every command shows the
// group changes, warnings and key changes the core reports the same way.

import { UsageError } from "../client/errors.js";
import type { Platform } from "../client/platform.js";
import type { Home } from "../client/store/home.js";
import { TelepoundClient } from "../client/telepound-client.js";
import { nodePlatform } from "./platform/index.js";
import { resolveHomeDir } from "./platform/node-home.js";
import { Printer, showEvents, wantsColors } from "./output.js";
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
  /** The core, for this home and server: every command is parse, then calls on it, then print. */
  client: TelepoundClient;
  /** The client's home. */
  home: Home;
  /** Base URL of the server, without a trailing slash. */
  server: string;
  /** True when --server or $TELEPOUND_SERVER named it; false when it is the default. */
  serverChosen: boolean;
  passwords: PasswordSource;
  io: CliIo;
}

export async function createContext(
  options: GlobalOptions,
  io: CliIo,
  platform: Platform = nodePlatform(),
): Promise<Context> {
  const chosen = options.server ?? io.env.TELEPOUND_SERVER;
  const printer = new Printer(
    options.json === true,
    { stdout: io.stdout, stderr: io.stderr },
    wantsColors(io.stdout, io.env),
  );
  const server = normalizeServer(chosen || DEFAULT_SERVER);
  const client = await TelepoundClient.open(platform, {
    home: resolveHomeDir(options.home, io.env),
    server,
    serverChosen: Boolean(chosen),
  });
  showEvents(printer, client.events);
  return {
    printer,
    client,
    home: client.home,
    server,
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
