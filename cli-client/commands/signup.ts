// telepound signup USER: creates the account (fresh keys, private halves sealed under the password) and
// logs this home in as USER. The account is bound to the origin of --server, where its keys are derived.

import { parseDeviceName, parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

export const signup: CommandSpec = {
  name: "signup",
  summary: "create an account and log in on this home",
  args: [{ syntax: "<user>", description: "the username to take: 3–32 of a-z 0-9 _ -" }],
  examples: [
    "telepound signup alice",
    "telepound signup alice --server https://telepound.example.workers.dev  # an account on a deployed server",
    'telepound signup alice --device-name "home desktop"',
    "telepound signup alice --json",
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
    const result = await ctx.client.signup(username, {
      password: () => ctx.passwords.newPassword(username),
      deviceName,
    });
    ctx.printer.result(
      `signed up and logged in as ${result.username}\nyour key fingerprint: ${result.fingerprint}`,
      {
        username: result.username,
        fingerprint: result.fingerprint,
        server: result.server,
        origin: result.origin,
        deviceName: deviceName ?? null,
      },
    );
  },
};
