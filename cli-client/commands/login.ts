// telepound login USER: derives the password keys for USER at the origin of --server (nothing asked
// first), proves the password to the server, unseals the private keys it keeps for us, and stores
// session + keys in this home so later commands need no password.

import { Api } from "../api.js";
import {
  type ExportedIdentity,
  derivePasswordKeys,
  fingerprint,
  importIdentity,
  unsealPrivateKeys,
} from "../crypto/index.js";
import { NetworkError } from "../errors.js";
import { assertHomeFreeFor, passwordAccount, saveSession } from "../session.js";
import { parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

export const login: CommandSpec = {
  name: "login",
  summary: "log in on this home",
  args: [{ syntax: "<user>", description: "your username" }],
  examples: [
    "telepound login alice",
    "telepound login alice --home ~/.telepound-laptop  # a second session, in its own home",
    "telepound login alice --json",
  ],
  async run(ctx, { args: [raw = ""] }) {
    const username = parseUsername(raw);
    const previous = await assertHomeFreeFor(ctx, username);
    // Before the password is asked for and anything derived from it is sent.
    await new Api(ctx.server).checkProtocol();
    const api = new Api(ctx.server);
    // Salt and cost are ours (PROTOCOL §3.2): the server is asked nothing before the keys are derived, so
    // it cannot steer them. The price: an unknown user and a wrong password look alike to us too.
    const account = passwordAccount(ctx, username);
    const password = await ctx.passwords.password(username);
    const keys = await derivePasswordKeys(password, account);
    const response = await api.login({ username, authKey: Buffer.from(keys.authKey).toString("base64") });
    if (response.username !== username) {
      throw new NetworkError(
        `protocol failure: logged in as ${username} but the server answered for ${response.username}`,
      );
    }
    // A wrong password normally fails at the server (401); this catches a server handing back another blob.
    const privateKeys = unsealPrivateKeys(keys.sealingKey, response.sealedPrivateKeys);
    const exported: ExportedIdentity = {
      encryptionPublic: response.publicKeys.encryption,
      signingPublic: response.publicKeys.signing,
      ...privateKeys,
    };
    // Refuses public keys that do not belong to our private keys (a server swapping them is caught here).
    importIdentity(exported);
    if (previous && previous.server === ctx.server) {
      // Logging in again on the same home: the old session is no longer used, so revoke it (best effort).
      await api
        .withToken(previous.token)
        .logout()
        .catch(() => undefined);
    }
    await saveSession(ctx, account, response, exported);
    const print = fingerprint(response.publicKeys);
    ctx.printer.result(`logged in as ${username}\nyour key fingerprint: ${print}`, {
      username,
      fingerprint: print,
      server: ctx.server,
      origin: account.origin,
    });
  },
};
