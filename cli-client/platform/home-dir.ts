// Where the home folder is, from --home and the environment: its own small module, because the daemon's
// thin path (daemon/thin-client.ts) finds the daemon's socket there before loading anything heavy.

import { homedir } from "node:os";
import { join, resolve } from "node:path";

/** DIR from --home, else $TELEPOUND_HOME, else $XDG_CONFIG_HOME/telepound, else ~/.config/telepound. */
export function resolveHomeDir(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (option) return resolve(option);
  if (env.TELEPOUND_HOME) return resolve(env.TELEPOUND_HOME);
  const config = env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return resolve(config, "telepound");
}

/** The daemon's socket: in the home (0700), so only its owner can reach it. */
export function daemonSocketPath(homeDir: string): string {
  return join(homeDir, "daemon.sock");
}
