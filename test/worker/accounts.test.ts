// Accounts through the real HTTP API: signup rules, duplicate names (also concurrent), login (its failure
// limits are in login-failures.test.ts), sessions (revocation, forgery), and what the server stores.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { PROTOCOL_1_KDF } from "../../protocol/http.js";
import { api, authKeyFor, login, signup, signupBody, uniqueName } from "./helpers.js";

describe("signup", () => {
  it("creates the account and returns a working session", async () => {
    const name = uniqueName("ann");
    const session = await signup(name);
    expect(session.username).toBe(name);
    const whoami = await api("/v1/whoami", { token: session.token });
    expect(whoami.status).toBe(200);
    expect(await whoami.json()).toMatchObject({ username: name, sessionId: session.sessionId });
  });

  it("refuses a taken name, regardless of case", async () => {
    const name = uniqueName("bob");
    await signup(name);
    const again = await api("/v1/signup", { method: "POST", body: await signupBody(name.toUpperCase()) });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ error: { code: "conflict" } });
  });

  it("lets exactly one of several simultaneous signups for one name win", async () => {
    const name = uniqueName("race");
    const body = await signupBody(name);
    const statuses = await Promise.all(
      Array.from({ length: 6 }, () => api("/v1/signup", { method: "POST", body }).then((r) => r.status)),
    );
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(5);
  });

  it.each([
    ["too short", "ab"],
    ["too long", "a".repeat(33)],
    ["a space", "a b c"],
    ["non-ASCII letters", "zoë-user"],
    ["a dot", "a.bcd"],
  ])("rejects a username with %s", async (_, name) => {
    const response = await api("/v1/signup", { method: "POST", body: await signupBody(name) });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: "bad_request" } });
  });

  it("refuses a protocol 1 body that still carries KDF parameters, saying so", async () => {
    const body = await signupBody(uniqueName("proto1"), {
      kdf: { algorithm: "scrypt", salt: "AAAAAAAAAAAAAAAAAAAAAA==", logN: 16, r: 8, p: 1 },
    });
    const response = await api("/v1/signup", { method: "POST", body });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { code: "bad_request", message: PROTOCOL_1_KDF } });
    expect(PROTOCOL_1_KDF).toMatch(/protocol 1 client.*update the client/);
  });

  it("refuses keys no client could use", async () => {
    const name = uniqueName("keys");
    const rsa2048 = (await crypto.subtle.generateKey(
      { name: "RSA-OAEP", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      true,
      ["encrypt", "decrypt"],
    )) as CryptoKeyPair;
    const spki = new Uint8Array((await crypto.subtle.exportKey("spki", rsa2048.publicKey)) as ArrayBuffer);
    const body = JSON.parse(await signupBody(name));
    body.publicKeys.encryption = btoa(String.fromCharCode(...spki));
    const weak = await api("/v1/signup", { method: "POST", body: JSON.stringify(body) });
    expect(weak.status).toBe(400);
    expect(await weak.text()).toContain("3072");
    body.publicKeys.encryption = JSON.parse(await signupBody(name)).publicKeys.encryption;
    body.publicKeys.signing = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(44))));
    const notEd = await api("/v1/signup", { method: "POST", body: JSON.stringify(body) });
    expect(notEd.status).toBe(400);
    expect(await notEd.text()).toContain("Ed25519");
  });

  it("rejects bodies that are not JSON, have unknown fields, or are too large", async () => {
    expect((await api("/v1/signup", { method: "POST", body: "{nope" })).status).toBe(400);
    const extra = JSON.parse(await signupBody(uniqueName("extra")));
    extra.password = "hunter2";
    expect((await api("/v1/signup", { method: "POST", body: JSON.stringify(extra) })).status).toBe(400);
    const huge = await api("/v1/signup", {
      method: "POST",
      body: JSON.stringify({ username: "x".repeat(100_000) }),
    });
    expect(huge.status).toBe(413);
  });

  it("stores no KDF parameters, and only a hash of the auth key, never the key itself", async () => {
    const name = uniqueName("store");
    await signup(name);
    const stub = env.HOMES.get(env.HOMES.idFromName(`user:${name}`));
    const row = await runInDurableObject(stub, (_, state) =>
      state.storage.sql.exec("SELECT * FROM account").one(),
    );
    const stored = JSON.stringify(row);
    const rawKeyHex = [...atob(authKeyFor(name))]
      .map((ch) => ch.charCodeAt(0).toString(16).padStart(2, "0"))
      .join("");
    expect(stored).not.toContain(authKeyFor(name));
    expect(stored).not.toContain(rawKeyHex);
    expect(row.auth_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(row).sort()).toEqual([
      "auth_hash",
      "created_at",
      "id",
      "public_keys",
      "sealed_private_keys",
      "username",
    ]);
  });
});

describe("login", () => {
  it("gives a session for the right key, with nothing asked first", async () => {
    const name = uniqueName("carl");
    await signup(name);
    const session = await login(name);
    expect(session.sealedPrivateKeys).toBeTruthy();
    expect((await api("/v1/whoami", { token: session.token })).status).toBe(200);
  });

  it("answers a wrong key and an unknown user the same way", async () => {
    const name = uniqueName("dora");
    await signup(name);
    const wrong = await api("/v1/login", {
      method: "POST",
      body: JSON.stringify({ username: name, authKey: authKeyFor("other") }),
    });
    const unknown = await api("/v1/login", {
      method: "POST",
      body: JSON.stringify({ username: uniqueName("nobody"), authKey: authKeyFor("x") }),
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(await wrong.json()).toEqual(await unknown.json());
  });

  it("answers protocol 1's KDF lookup 410 gone, alike for an existing and an unknown user", async () => {
    const name = uniqueName("gina");
    await signup(name);
    const answers = [];
    for (const path of [`/v1/kdf/${name}`, `/v1/kdf/${uniqueName("nobody")}`, "/v1/kdf/NOT a name"]) {
      const response = await api(path);
      answers.push({ status: response.status, body: await response.json() });
    }
    for (const answer of answers) {
      expect(answer).toEqual({ status: 410, body: { error: { code: "gone", message: PROTOCOL_1_KDF } } });
    }
  });
});

describe("sessions", () => {
  it("logout revokes only that session", async () => {
    const name = uniqueName("gail");
    const first = await signup(name);
    const second = await login(name);
    expect((await api("/v1/logout", { method: "POST", token: first.token })).status).toBe(204);
    const revoked = await api("/v1/whoami", { token: first.token });
    expect(revoked.status).toBe(401);
    expect(await revoked.json()).toMatchObject({ error: { code: "unauthorized" } });
    expect((await api("/v1/whoami", { token: second.token })).status).toBe(200);
  });

  it("refuses an expired session", async () => {
    const name = uniqueName("old");
    const session = await signup(name);
    const stub = env.HOMES.get(env.HOMES.idFromName(`user:${name}`));
    await runInDurableObject(stub, (_, state) => {
      state.storage.sql.exec("UPDATE sessions SET expires_at = ?", Date.now() - 1);
    });
    const response = await api("/v1/whoami", { token: session.token });
    expect(response.status).toBe(401);
    expect(await response.text()).toContain("expired");
  });

  it("refuses missing, malformed and forged tokens", async () => {
    const name = uniqueName("hank");
    const session = await signup(name);
    const [user, id, secret] = session.token.split(".") as [string, string, string];
    const forgedSecret = `${secret.slice(0, -1)}${secret.endsWith("a") ? "b" : "a"}`;
    const other = uniqueName("ivan");
    await signup(other);
    for (const token of [undefined, "garbage", `${user}.${id}.${forgedSecret}`, `${other}.${id}.${secret}`]) {
      const response = await api("/v1/whoami", { token });
      expect(response.status, String(token)).toBe(401);
    }
  });
});

describe("user lookup", () => {
  it("needs a session, finds users case-insensitively, 404s the rest", async () => {
    const name = uniqueName("jane");
    const session = await signup(name);
    expect((await api(`/v1/users/${name}`)).status).toBe(401);
    const found = await api(`/v1/users/${name.toUpperCase()}`, { token: session.token });
    expect(found.status).toBe(200);
    expect(await found.json()).toMatchObject({ username: name, publicKeys: session.publicKeys });
    expect((await api(`/v1/users/${uniqueName("ghost")}`, { token: session.token })).status).toBe(404);
  });
});
