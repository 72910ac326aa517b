// Encrypted file blobs: multipart upload by the owner, fetch by exactly the recipients (a user, or a
// group's members at upload time), exact part sizes, deletion once everyone has confirmed.

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { CreateBlobResponse } from "../../protocol/http.js";
import { BLOB_PART_BYTES, MAX_FILE_BYTES, sealedFileSize } from "../../protocol/limits.js";
import { api, signup, uniqueName } from "./helpers.js";
import { addMember, createGroup, writeTo } from "./group-changes.js";
import type { SessionResponse as Session } from "../../protocol/http.js";

async function createBlob(
  owner: Session,
  target: { to?: string; group?: string },
  size: number,
): Promise<Response> {
  return api("/v1/blobs", { method: "POST", token: owner.token, body: JSON.stringify({ ...target, size }) });
}

async function putPart(owner: Session, id: string, part: number, bytes: Uint8Array): Promise<Response> {
  return api(`/v1/blobs/${id}/parts/${part}`, {
    method: "PUT",
    token: owner.token,
    headers: { "Content-Type": "application/octet-stream", "Content-Length": String(bytes.length) },
    body: bytes,
  });
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

function pattern(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes;
}

async function upload(
  owner: Session,
  target: { to?: string; group?: string },
  content: Uint8Array,
): Promise<string> {
  const created = await createBlob(owner, target, content.length);
  expect(created.status).toBe(201);
  const blob: CreateBlobResponse = await created.json();
  for (let part = 1; part <= blob.parts; part++) {
    const slice = content.subarray((part - 1) * blob.partBytes, part * blob.partBytes);
    expect((await putPart(owner, blob.id, part, slice)).status).toBe(204);
  }
  expect((await api(`/v1/blobs/${blob.id}/complete`, { method: "POST", token: owner.token })).status).toBe(
    204,
  );
  return blob.id;
}

describe("file blobs", () => {
  it("round-trip a multi-part upload to its recipient, byte for byte", async () => {
    const [alice, bob] = await Promise.all([signup(uniqueName("alice")), signup(uniqueName("bob"))]);
    const content = pattern(BLOB_PART_BYTES + 1234, 7);
    const id = await upload(alice, { to: bob.username }, content);
    expect(id.startsWith(`${alice.username}.`)).toBe(true);
    const fetched = await api(`/v1/blobs/${id}`, { token: bob.token });
    expect(fetched.status).toBe(200);
    expect(fetched.headers.get("Content-Length")).toBe(String(content.length));
    // Compared by digest: element-wise equality of 8 MiB is needlessly slow.
    expect(await sha256Hex(new Uint8Array(await fetched.arrayBuffer()))).toBe(await sha256Hex(content));
  });

  it("refuse everyone but the recipients and the owner", async () => {
    const [alice, bob, eve] = await Promise.all(["alice", "bob", "eve"].map((n) => signup(uniqueName(n))));
    const id = await upload(alice!, { to: bob!.username }, pattern(100, 1));
    expect((await api(`/v1/blobs/${id}`, { token: eve!.token })).status).toBe(403);
    expect((await api(`/v1/blobs/${id}`)).status).toBe(401);
    expect((await api(`/v1/blobs/${id}`, { token: alice!.token })).status).toBe(200);
    expect((await api(`/v1/blobs/${alice!.username}.${"0".repeat(32)}`, { token: bob!.token })).status).toBe(
      404,
    );
    expect((await api(`/v1/blobs/../../etc`, { token: bob!.token })).status).toBeGreaterThanOrEqual(400);
    // Only the owner adds parts or completes; nobody confirms a file on someone else's behalf.
    expect((await putPart(eve!, id, 1, pattern(100, 1))).status).toBe(403);
    expect((await api(`/v1/blobs/${id}`, { method: "DELETE", token: eve!.token })).status).toBe(404);
  });

  it("go to a group's members at upload time", async () => {
    const [alice, bob, carol, dave] = await Promise.all(
      ["alice", "bob", "carol", "dave"].map((n) => signup(uniqueName(n))),
    );
    const group = uniqueName("g");
    await writeTo(alice!, [bob!, carol!, dave!]);
    await createGroup(alice!, group, [bob!, carol!]);
    const id = await upload(alice!, { group }, pattern(5000, 3));
    await addMember(alice!, group, dave!.username);
    expect((await api(`/v1/blobs/${id}`, { token: bob!.token })).status).toBe(200);
    expect((await api(`/v1/blobs/${id}`, { token: carol!.token })).status).toBe(200);
    expect((await api(`/v1/blobs/${id}`, { token: dave!.token })).status).toBe(403);
    const outsider = await signup(uniqueName("eve"));
    expect((await createBlob(outsider, { group }, 100)).status).toBe(403);
  });

  it("are deleted once every recipient has confirmed", async () => {
    const [alice, bob, carol] = await Promise.all(
      ["alice", "bob", "carol"].map((n) => signup(uniqueName(n))),
    );
    const group = uniqueName("g");
    await writeTo(alice!, [bob!, carol!]);
    await createGroup(alice!, group, [bob!, carol!]);
    const id = await upload(alice!, { group }, pattern(300, 9));
    expect((await api(`/v1/blobs/${id}`, { method: "DELETE", token: bob!.token })).status).toBe(204);
    expect(await env.BLOBS.head(`blobs/${id}`)).not.toBeNull();
    expect((await api(`/v1/blobs/${id}`, { token: carol!.token })).status).toBe(200);
    expect((await api(`/v1/blobs/${id}`, { method: "DELETE", token: carol!.token })).status).toBe(204);
    expect(await env.BLOBS.head(`blobs/${id}`)).toBeNull();
    expect((await api(`/v1/blobs/${id}`, { token: carol!.token })).status).toBe(404);
  });

  it("check sizes before reading: the limit, each part's exact length, completeness", async () => {
    const [alice, bob] = await Promise.all([signup(uniqueName("alice")), signup(uniqueName("bob"))]);
    const tooBig = await createBlob(alice, { to: bob.username }, sealedFileSize(MAX_FILE_BYTES) + 1);
    expect(tooBig.status).toBe(400);
    expect(await tooBig.text()).toContain("size");
    expect((await createBlob(alice, { to: uniqueName("ghost") }, 100)).status).toBe(404);
    expect((await createBlob(alice, { to: bob.username, group: "grp" }, 100)).status).toBe(400);

    const created: CreateBlobResponse = await (await createBlob(alice, { to: bob.username }, 1000)).json();
    expect((await putPart(alice, created.id, 1, pattern(999, 1))).status).toBe(400);
    expect((await putPart(alice, created.id, 2, pattern(1000, 1))).status).toBe(404);
    expect(
      (await api(`/v1/blobs/${created.id}/complete`, { method: "POST", token: alice.token })).status,
    ).toBe(400);
    expect((await api(`/v1/blobs/${created.id}`, { token: bob.token })).status).toBe(409);
    expect((await putPart(alice, created.id, 1, pattern(1000, 1))).status).toBe(204);
    expect(
      (await api(`/v1/blobs/${created.id}/complete`, { method: "POST", token: alice.token })).status,
    ).toBe(204);
    expect((await api(`/v1/blobs/${created.id}`, { token: bob.token })).status).toBe(200);
  });

  it("can be withdrawn by the owner", async () => {
    const [alice, bob] = await Promise.all([signup(uniqueName("alice")), signup(uniqueName("bob"))]);
    const id = await upload(alice, { to: bob.username }, pattern(64, 2));
    expect((await api(`/v1/blobs/${id}`, { method: "DELETE", token: alice.token })).status).toBe(204);
    expect((await api(`/v1/blobs/${id}`, { token: bob.token })).status).toBe(404);
  });
});
