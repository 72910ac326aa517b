// The optional key vault of a home (client/platform.ts HomeStorage.keyVault): with one, the session keeps
// the private keys there as key objects and identity.json holds only the public keys; loading checks the
// vault's keys are the pairs of those public keys; log out empties it. A home without one is unchanged.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { nodePlatform } from "../../../cli-client/platform/index.js";
import { NodeHomeStorage } from "../../../cli-client/platform/node-home.js";
import { exportIdentity, generateIdentity } from "../../../client/crypto/index.js";
import { AuthError } from "../../../client/errors.js";
import type { KeyVault, VaultKeys } from "../../../client/platform.js";
import { type HomeOnServer, forgetSession, loadSession, saveSession } from "../../../client/session.js";
import { Home } from "../../../client/store/home.js";

const SERVER = "http://127.0.0.1:1";

/** A Node home with a vault in memory, as a browser's home has one in IndexedDB. */
class VaultedHome extends NodeHomeStorage {
  held: VaultKeys | null = null;
  readonly keyVault: KeyVault = {
    save: async (keys) => void (this.held = keys),
    load: async () => this.held,
    remove: async () => void (this.held = null),
  };
}

async function signedUp(storage: NodeHomeStorage) {
  const ctx: HomeOnServer = {
    home: new Home(storage),
    server: SERVER,
    serverChosen: false,
    net: nodePlatform(),
  };
  const exported = await exportIdentity(await generateIdentity());
  const publicKeys = { encryption: exported.encryptionPublic, signing: exported.signingPublic };
  await saveSession(
    ctx,
    { origin: SERVER, username: "alice" },
    {
      username: "alice",
      token: "alice.00.11",
      sessionId: "s1",
      expiresAt: Date.now() + 60_000,
      publicKeys,
      sealedPrivateKeys: "",
    },
    exported,
  );
  return { ctx, exported };
}

const freshDir = () => join(mkdtempSync(join(tmpdir(), "telepound-vault-")), "home");

describe("a home with a key vault", () => {
  it("keeps the private keys in the vault, only the public ones in identity.json, and loads them", async () => {
    const storage = new VaultedHome(freshDir());
    const { ctx, exported } = await signedUp(storage);
    const identity = await ctx.home.read("identity.json");
    expect(identity?.keys).toEqual({
      encryptionPublic: exported.encryptionPublic,
      signingPublic: exported.signingPublic,
    });
    expect(storage.held).not.toBeNull();
    const me = await loadSession(ctx);
    expect(me.identity).toBe(storage.held);
    expect(me.exported).toEqual({
      encryptionPublic: exported.encryptionPublic,
      signingPublic: exported.signingPublic,
    });
    await forgetSession(ctx);
    expect(storage.held).toBeNull();
  });

  it("refuses vault keys that are not the pairs of identity.json's public keys, or none", async () => {
    const storage = new VaultedHome(freshDir());
    const { ctx } = await signedUp(storage);
    const other = await generateIdentity();
    storage.held = { encryption: other.encryption, signing: storage.held!.signing };
    await expect(loadSession(ctx)).rejects.toThrow(AuthError);
    storage.held = null;
    await expect(loadSession(ctx)).rejects.toThrow(/keys .* are missing/);
  });
});

describe("a home without one", () => {
  it("keeps the private keys in identity.json, as before", async () => {
    const { ctx, exported } = await signedUp(new NodeHomeStorage(freshDir()));
    expect((await ctx.home.read("identity.json"))?.keys).toEqual(exported);
    expect((await loadSession(ctx)).username).toBe("alice");
  });
});
