// telepound login USER: derives the password keys for USER at the origin of --server (nothing asked
// first), proves the password to the server, unseals the private keys it keeps for us, and stores
// session + keys in this home so later commands need no password.

import { describeDevice, isoTime, localTime, shownLines } from "../output.js";
import { parseDeviceName, parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

export const login: CommandSpec = {
  name: "login",
  summary: "log in on this home",
  args: [{ syntax: "<user>", description: "your username" }],
  examples: [
    "telepound login alice",
    "telepound login alice --home ~/.telepound-laptop  # a second session, in its own home",
    'telepound login alice --device-name "work laptop"  # how `telepound devices` lists this session',
    "telepound login alice --json",
  ],
  options: [
    {
      flags: "--device-name <name>",
      description: "how this session is listed by `telepound devices` (default: this machine's host name)",
    },
  ],
  async run(ctx, { args: [raw = ""], options }) {
    const username = parseUsername(raw);
    const deviceName = parseDeviceName(options.deviceName);
    const result = await ctx.client.login(username, {
      password: () => ctx.passwords.password(username),
      deviceName,
    });
    const ended = result.endedSessions;
    const endedLines = ended.map(
      (session) =>
        `the account was at its session limit: ended the session ${session.id.slice(0, 8)} (${describeDevice(session.deviceName)}, last seen ${localTime(session.lastSeenAt)})`,
    );
    ctx.printer.result(
      shownLines([`logged in as ${username}`, `your key fingerprint: ${result.fingerprint}`, ...endedLines]),
      {
        username,
        fingerprint: result.fingerprint,
        server: result.server,
        origin: result.origin,
        deviceName: deviceName ?? null,
        endedSessions: ended.map((session) => ({
          id: session.id,
          deviceName: session.deviceName,
          createdAt: isoTime(session.createdAt),
          lastSeenAt: isoTime(session.lastSeenAt),
        })),
      },
    );
  },
};
