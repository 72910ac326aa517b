// The logged-in user of a home: loading session + keys for commands that need them, and saving them
// after signup or login. Every "not logged in" condition surfaces here, as an AuthError (exit 3).

import type { SessionResponse } from "../protocol/http.js";
import { Api } from "./net/api.js";
import type { Home } from "./store/home.js";
import type { NetPlatform } from "./net/api.js";
import {
  CryptoError,
  type ExportedIdentity,
  type Identity,
  type PasswordAccount,
  fingerprint,
  importIdentity,
  toBase64,
  kdfOrigin,
  newDeviceId,
} from "./crypto/index.js";
import { cryptoBackend } from "./crypto/backend.js";
import { AuthError, UsageError } from "./errors.js";
import type { PlatformKey } from "./platform.js";
import type { SessionFile } from "./store/home.js";

/** A home and the server it is used with: what every session function works on. */
export interface HomeOnServer {
  home: Home;
  /** Base URL of the server, without a trailing slash. */
  server: string;
  /** True when the user named the server; a home logged in to another one is then refused. */
  serverChosen: boolean;
  net: NetPlatform;
}

export interface LoggedIn {
  username: string;
  session: SessionFile;
  /** The server this home is logged in to (the session's, which --server must match when given). */
  server: string;
  /** Authenticated with the session token. */
  api: Api;
  identity: Identity;
  /** The public keys as published (base64 SPKI DER). */
  exported: Pick<ExportedIdentity, "encryptionPublic" | "signingPublic">;
  fingerprint: string;
}

/** The home's session and keys, or an AuthError that says how to log in. */
export async function loadSession(ctx: HomeOnServer): Promise<LoggedIn> {
  const session = await ctx.home.read("session.json");
  if (!session) {
    throw new AuthError(
      `not logged in on ${ctx.home.location}: run "telepound login USER" or "telepound signup USER"`,
    );
  }
  // The token belongs to one server: sending it to another would hand it out, so a different --server is refused.
  if (ctx.serverChosen && session.server !== ctx.server) {
    throw new AuthError(`this home is logged in to ${session.server}, not ${ctx.server}: log in there first`);
  }
  if (session.expiresAt <= Date.now()) throw new AuthError("your session has expired: log in again");
  const stored = await ctx.home.read("identity.json");
  if (!stored || stored.username !== session.username) {
    throw new AuthError(`the keys in ${ctx.home.location} are missing: log in again`);
  }
  const { keys } = stored;
  const { encryptionPrivate, signingPrivate } = keys;
  let identity: Identity;
  if (encryptionPrivate !== undefined && signingPrivate !== undefined) {
    identity = await importIdentity({ ...keys, encryptionPrivate, signingPrivate });
  } else {
    identity = await vaultIdentity(ctx, keys);
  }
  return {
    username: session.username,
    session,
    server: session.server,
    api: new Api(ctx.net, session.server, session.token),
    identity,
    exported: { encryptionPublic: keys.encryptionPublic, signingPublic: keys.signingPublic },
    fingerprint: stored.fingerprint,
  };
}

/** The keys a platform's vault holds, which must be the pairs of identity.json's public keys. */
async function vaultIdentity(
  ctx: HomeOnServer,
  keys: Pick<ExportedIdentity, "encryptionPublic" | "signingPublic">,
): Promise<Identity> {
  const missing = new AuthError(`the keys in ${ctx.home.location} are missing: log in again`);
  const vaulted = await ctx.home.storage.keyVault?.load();
  if (!vaulted) throw missing;
  // Each pair was checked when it was stored; this checks they are the pairs of the published keys.
  const spki = async (key: PlatformKey) => toBase64(await cryptoBackend().exportPublicKey(key));
  if (
    (await spki(vaulted.encryption.publicKey)) !== keys.encryptionPublic ||
    (await spki(vaulted.signing.publicKey)) !== keys.signingPublic
  ) {
    throw missing;
  }
  return vaulted;
}

/**
 * Whose home this is, for local-only commands (history): the session's username, even if the session
 * expired; no keys needed and no server asked.
 */
export async function requireLocalSession(ctx: HomeOnServer): Promise<string> {
  const session = await ctx.home.read("session.json");
  if (!session) {
    throw new AuthError(
      `not logged in on ${ctx.home.location}: run "telepound login USER" or "telepound signup USER"`,
    );
  }
  return session.username;
}

/**
 * The account the password keys are derived for at signup and login: the username under the origin of the
 * server this command talks to (--server), never anything the server says (PROTOCOL §3.2).
 */
export function passwordAccount(ctx: HomeOnServer, username: string): PasswordAccount {
  try {
    return { origin: kdfOrigin(ctx.server), username };
  } catch (error) {
    if (error instanceof CryptoError) throw new UsageError(`--server ${ctx.server}: ${error.message}`);
    throw error;
  }
}

/** Signup and login refuse to replace another user's session: logout first, so nothing is left behind. */
export async function assertHomeFreeFor(ctx: HomeOnServer, username: string): Promise<SessionFile | null> {
  const current = await ctx.home.read("session.json");
  if (current && current.username !== username) {
    throw new UsageError(
      `${ctx.home.location} is logged in as ${current.username}: run "telepound logout" first`,
    );
  }
  return current;
}

/**
 * Stores a fresh session and the unsealed keys. Keys first, so a session file never exists without them.
 * The session records the origin the password keys were derived under: the account is bound to it.
 * Pins, seen ids and message state of a previous, different user of this home are dropped.
 */
export async function saveSession(
  ctx: HomeOnServer,
  account: PasswordAccount,
  response: SessionResponse,
  exported: ExportedIdentity,
): Promise<void> {
  const { username } = response;
  const vault = ctx.home.storage.keyVault;
  // A vault gets the keys as imported key objects (a browser's are then non-extractable), checked as
  // pairs; identity.json keeps only the public halves then.
  const vaulted = vault ? await importIdentity(exported) : null;
  await ctx.home.withLock(async () => {
    if (vault && vaulted) await vault.save(vaulted);
    const { encryptionPublic, signingPublic } = exported;
    await ctx.home.write("identity.json", {
      username,
      publicKeys: response.publicKeys,
      fingerprint: fingerprint(response.publicKeys),
      keys: vault ? { encryptionPublic, signingPublic } : { ...exported },
    });
    const state = await ctx.home.read("state.json");
    // A new device id at every login, its sequences starting again at 1: receivers know it as a new
    // device, so the numbers of an earlier login on this home can never collide with the new ones.
    const deviceId = newDeviceId();
    const kept = state?.username === username ? state : { username, counter: 0 };
    await ctx.home.write("state.json", { ...kept, deviceId, sequences: [] });
    const contacts = await ctx.home.read("contacts.json");
    if (contacts && contacts.owner !== username) await ctx.home.remove("contacts.json");
    const seen = await ctx.home.read("seen.json");
    if (seen && seen.owner !== username) await ctx.home.remove("seen.json");
    const sequences = await ctx.home.read("sequences.json");
    if (sequences && sequences.owner !== username) await ctx.home.remove("sequences.json");
    const groups = await ctx.home.read("groups.json");
    if (groups && groups.owner !== username) await ctx.home.remove("groups.json");
    await ctx.home.write("session.json", {
      server: ctx.server,
      origin: account.origin,
      username,
      token: response.token,
      sessionId: response.sessionId,
      expiresAt: response.expiresAt,
    });
  });
}

/**
 * Logout: the session, every secret and the messages still waiting to be sent go; contacts (pins) and
 * seen ids stay for the next login.
 */
export async function forgetSession(ctx: HomeOnServer): Promise<void> {
  await ctx.home.withLock(async () => {
    await ctx.home.remove("session.json");
    await ctx.home.remove("identity.json");
    await ctx.home.storage.keyVault?.remove();
    await ctx.home.remove("state.json");
    await ctx.home.remove("outbox.json");
  });
}
