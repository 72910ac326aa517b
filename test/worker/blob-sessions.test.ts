// Files for every session: a blob stays until every live session it was sent to has fetched it: each
// session of the named recipient, of every member of the group at upload, and the owner's own other
// sessions (who get the sent copy or the group message). Sessions that end no longer keep it; a user
// left with no session keeps it for their next one, as their queue does.

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { CreateBlobResponse, SessionResponse as Session } from "../../protocol/http.js";
import { createGroup, writeTo } from "./group-changes.js";
import { api, login, signup, uniqueName } from "./helpers.js";

/** Creates, fills (one part) and completes a blob; returns its id. */
async function upload(owner: Session, target: { to?: string; group?: string }): Promise<string> {
  const content = crypto.getRandomValues(new Uint8Array(500));
  const created = await api("/v1/blobs", {
    method: "POST",
    token: owner.token,
    body: JSON.stringify({ ...target, size: content.length }),
  });
  expect(created.status).toBe(201);
  const { id }: CreateBlobResponse = await created.json();
  const part = await api(`/v1/blobs/${id}/parts/1`, {
    method: "PUT",
    token: owner.token,
    headers: { "Content-Type": "application/octet-stream", "Content-Length": String(content.length) },
    body: content,
  });
  expect(part.status).toBe(204);
  expect((await api(`/v1/blobs/${id}/complete`, { method: "POST", token: owner.token })).status).toBe(204);
  return id;
}

/** A session fetches the file and confirms it (DELETE, as a recipient has always done). */
async function fetchAndConfirm(session: Session, id: string): Promise<void> {
  expect((await api(`/v1/blobs/${id}`, { token: session.token })).status).toBe(200);
  expect((await api(`/v1/blobs/${id}`, { method: "DELETE", token: session.token })).status).toBe(204);
}

async function stored(id: string): Promise<boolean> {
  return (await env.BLOBS.head(`blobs/${id}`)) !== null;
}

async function logout(session: Session): Promise<void> {
  expect((await api("/v1/logout", { method: "POST", token: session.token })).status).toBe(204);
}

describe("a file sent to a user", () => {
  it("stays for the recipient's second session after the first fetched it, and goes after the last", async () => {
    const alice = await signup(uniqueName("alice"));
    const bob = await signup(uniqueName("bob"));
    const bobLaptop = await login(bob.username);
    const id = await upload(alice, { to: bob.username });

    await fetchAndConfirm(bob, id);
    expect(await stored(id)).toBe(true);
    // The same session again changes nothing.
    expect((await api(`/v1/blobs/${id}`, { method: "DELETE", token: bob.token })).status).toBe(204);
    expect(await stored(id)).toBe(true);

    await fetchAndConfirm(bobLaptop, id);
    expect(await stored(id)).toBe(false);
    expect((await api(`/v1/blobs/${id}`, { token: bobLaptop.token })).status).toBe(404);
  });

  it("stays for the owner's other session, which confirms with POST …/fetched, not by withdrawing", async () => {
    const alice = await signup(uniqueName("alice"));
    const aliceLaptop = await login(alice.username);
    const bob = await signup(uniqueName("bob"));
    const id = await upload(alice, { to: bob.username });

    await fetchAndConfirm(bob, id);
    expect(await stored(id)).toBe(true);
    // The uploading session holds nothing: its confirmation is accepted and keeps the file.
    expect((await api(`/v1/blobs/${id}/fetched`, { method: "POST", token: alice.token })).status).toBe(204);
    expect(await stored(id)).toBe(true);

    expect((await api(`/v1/blobs/${id}`, { token: aliceLaptop.token })).status).toBe(200);
    expect((await api(`/v1/blobs/${id}/fetched`, { method: "POST", token: aliceLaptop.token })).status).toBe(
      204,
    );
    expect(await stored(id)).toBe(false);
  });

  it("is confirmed only by who may fetch it", async () => {
    const alice = await signup(uniqueName("alice"));
    const bob = await signup(uniqueName("bob"));
    const eve = await signup(uniqueName("eve"));
    const id = await upload(alice, { to: bob.username });
    expect((await api(`/v1/blobs/${id}/fetched`, { method: "POST", token: eve.token })).status).toBe(404);
    expect((await api(`/v1/blobs/${id}`, { method: "DELETE", token: eve.token })).status).toBe(404);
    expect(await stored(id)).toBe(true);
    expect((await api(`/v1/blobs/${id}`, { token: bob.token })).status).toBe(200);
  });
});

describe("a file sent to a group", () => {
  it("stays until every session of every member at upload has fetched it", async () => {
    const [alice, bob, carol] = await Promise.all(
      ["alice", "bob", "carol"].map((n) => signup(uniqueName(n))),
    );
    const group = uniqueName("g");
    await writeTo(alice!, [bob!, carol!]);
    await createGroup(alice!, group, [bob!, carol!]);
    const bobLaptop = await login(bob!.username);
    const id = await upload(alice!, { group });

    await fetchAndConfirm(bob!, id);
    await fetchAndConfirm(carol!, id);
    expect(await stored(id)).toBe(true);
    await fetchAndConfirm(bobLaptop, id);
    expect(await stored(id)).toBe(false);
  });
});

describe("ended sessions", () => {
  it("no longer keep a user's file: a logout of the last session not done lets it go", async () => {
    const alice = await signup(uniqueName("alice"));
    const bob = await signup(uniqueName("bob"));
    const bobLaptop = await login(bob.username);
    const id = await upload(alice, { to: bob.username });
    await fetchAndConfirm(bob, id);
    expect(await stored(id)).toBe(true);
    await logout(bobLaptop);
    expect(await stored(id)).toBe(false);
  });

  it("no longer keep a group's file: a revoked member session is told to the owner through the room", async () => {
    const [alice, bob, carol] = await Promise.all(
      ["alice", "bob", "carol"].map((n) => signup(uniqueName(n))),
    );
    const group = uniqueName("g");
    await writeTo(alice!, [bob!, carol!]);
    await createGroup(alice!, group, [bob!, carol!]);
    const bobLaptop = await login(bob!.username);
    const id = await upload(alice!, { group });
    await fetchAndConfirm(bob!, id);
    await fetchAndConfirm(carol!, id);
    expect(await stored(id)).toBe(true);
    const revoked = await api(`/v1/sessions/${bobLaptop.sessionId}`, { method: "DELETE", token: bob!.token });
    expect(revoked.status).toBe(204);
    expect(await stored(id)).toBe(false);
  });

  it("no longer keep the owner's file for the owner's own other session", async () => {
    const alice = await signup(uniqueName("alice"));
    const aliceLaptop = await login(alice.username);
    const bob = await signup(uniqueName("bob"));
    const id = await upload(alice, { to: bob.username });
    await fetchAndConfirm(bob, id);
    expect(await stored(id)).toBe(true);
    await logout(aliceLaptop);
    expect(await stored(id)).toBe(false);
  });

  it("leave a user with none keeping the file for their next session, as their queue keeps messages", async () => {
    const alice = await signup(uniqueName("alice"));
    const bob = await signup(uniqueName("bob"));
    const id = await upload(alice, { to: bob.username });
    await logout(bob);
    expect(await stored(id)).toBe(true);
    const bobAgain = await login(bob.username);
    await fetchAndConfirm(bobAgain, id);
    expect(await stored(id)).toBe(false);
  });
});
