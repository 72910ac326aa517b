// telepound signup USER: creates the account (fresh keys, private halves sealed under the password) and
// logs this home in as USER. The account is bound to the origin of --server, where its keys are derived.

import { Api } from "../../client/net/api.js";
import {
  exportIdentity,
  fingerprint,
  generateIdentity,
  derivePasswordKeys,
  sealPrivateKeys,
} from "../../client/crypto/index.js";
import { NetworkError } from "../../client/errors.js";
import { assertHomeFreeFor, passwordAccount, saveSession } from "../../client/session.js";
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
    await assertHomeFreeFor(ctx, username);
    const account = passwordAccount(ctx, username);
    // Before the password is asked for: a server of another protocol could not use the account anyway.
    await new Api(ctx.server).checkProtocol();
    const password = await ctx.passwords.newPassword(username);
    // Key generation (RSA-3072) and scrypt take a moment each; run them side by side.
    const [identity, keys] = await Promise.all([generateIdentity(), derivePasswordKeys(password, account)]);
    const exported = await exportIdentity(identity);
    const publicKeys = { encryption: exported.encryptionPublic, signing: exported.signingPublic };
    const api = new Api(ctx.server);
    const response = await api.signup({
      username,
      authKey: Buffer.from(keys.authKey).toString("base64"),
      publicKeys,
      sealedPrivateKeys: sealPrivateKeys(keys.sealingKey, {
        encryptionPrivate: exported.encryptionPrivate,
        signingPrivate: exported.signingPrivate,
      }),
      ...(deviceName === undefined ? {} : { deviceName }),
    });
    if (
      response.username !== username ||
      response.publicKeys.encryption !== publicKeys.encryption ||
      response.publicKeys.signing !== publicKeys.signing
    ) {
      throw new NetworkError("protocol failure: the server's signup answer names other keys or another user");
    }
    await saveSession(ctx, account, response, exported);
    const print = fingerprint(publicKeys);
    ctx.printer.result(`signed up and logged in as ${response.username}\nyour key fingerprint: ${print}`, {
      username: response.username,
      fingerprint: print,
      server: ctx.server,
      origin: account.origin,
      deviceName: deviceName ?? null,
    });
  },
};
