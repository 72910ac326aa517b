// telepound login USER: derives the password keys for USER at the origin of --server (nothing asked
// first), proves the password to the server, unseals the private keys it keeps for us, and stores
// session + keys in this home so later commands need no password.

import { Api } from "../../client/net/api.js";
import {
  type ExportedIdentity,
  derivePasswordKeys,
  fingerprint,
  importIdentity,
  unsealPrivateKeys,
} from "../../client/crypto/index.js";
import { NetworkError } from "../../client/errors.js";
import { describeDevice, isoTime, localTime, shownLines } from "../output.js";
import { assertHomeFreeFor, passwordAccount, saveSession } from "../../client/session.js";
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
    const previous = await assertHomeFreeFor(ctx, username);
    // Before the password is asked for and anything derived from it is sent.
    await new Api(ctx.server).checkProtocol();
    const api = new Api(ctx.server);
    // Salt and cost are ours (PROTOCOL §3.2): the server is asked nothing before the keys are derived, so
    // it cannot steer them. The price: an unknown user and a wrong password look alike to us too.
    const account = passwordAccount(ctx, username);
    const password = await ctx.passwords.password(username);
    const keys = await derivePasswordKeys(password, account);
    const response = await api.login({
      username,
      authKey: Buffer.from(keys.authKey).toString("base64"),
      ...(deviceName === undefined ? {} : { deviceName }),
    });
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
    await importIdentity(exported);
    if (previous && previous.server === ctx.server) {
      // Logging in again on the same home: the old session is no longer used, so revoke it (best effort).
      await api
        .withToken(previous.token)
        .logout()
        .catch(() => undefined);
    }
    await saveSession(ctx, account, response, exported);
    const print = fingerprint(response.publicKeys);
    // At the session cap the server ended the longest-idle sessions to make room: the user should know.
    const ended = (response.endedSessions ?? []).filter((session) => session.id !== previous?.sessionId);
    const endedLines = ended.map(
      (session) =>
        `the account was at its session limit: ended the session ${session.id.slice(0, 8)} (${describeDevice(session.deviceName)}, last seen ${localTime(session.lastSeenAt)})`,
    );
    ctx.printer.result(
      shownLines([`logged in as ${username}`, `your key fingerprint: ${print}`, ...endedLines]),
      {
        username,
        fingerprint: print,
        server: ctx.server,
        origin: account.origin,
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
