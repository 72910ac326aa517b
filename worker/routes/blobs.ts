// Encrypted file attachments: the client uploads ciphertext in parts (R2 multipart, so a 100 MiB file
// never sits in one request or in memory), recipients fetch it as one stream, and it is deleted once
// every session it was sent to has confirmed (each recipient's, and the owner's other ones), or when it
// expires. Who may fetch is decided at upload: the named user, or the group's members at that moment.

import { Hono } from "hono";
import { type BlobHolder, blobKey } from "../../durable-objects/home/blobs.js";
import { nameExists } from "../../durable-objects/known-names.js";
import { groupStub, homeStub } from "../../durable-objects/names.js";
import { toHex } from "../../protocol/bytes.js";
import { BLOB_ID_PATTERN, CreateBlobRequest, type CreateBlobResponse } from "../../protocol/http.js";
import { BLOB_LIFETIME_MS, BLOB_PART_BYTES } from "../../protocol/limits.js";
import { requireSession } from "../auth.js";
import type { AppEnv } from "../env.js";
import { ApiError } from "../errors.js";
import { UNKNOWN_NAMES, byUser, charge, rateLimit } from "../rate-limit.js";
import { parseJson } from "../validate.js";

export const blobs = new Hono<AppEnv>();
blobs.use("/blobs", requireSession);
blobs.use("/blobs/*", requireSession);

blobs.post(
  "/blobs",
  rateLimit({ name: "UPLOADS_PER_USER_PER_MINUTE", windowMs: 60_000, key: byUser }),
  async (c) => {
    const body = await parseJson(c, CreateBlobRequest);
    const owner = c.var.user;
    // Who must fetch it, each with their live sessions: one call, to the recipient's home or the room
    // (which also remember the owner, to tell them of a session that ends before it fetched).
    const until = Date.now() + BLOB_LIFETIME_MS;
    let recipients: BlobHolder[];
    if (body.to !== undefined) {
      const sessions = (await nameExists(c.env, "user", body.to))
        ? await homeStub(c.env, body.to).blobRecipient(owner, until)
        : null;
      if (!sessions) {
        await charge(c, UNKNOWN_NAMES);
        throw new ApiError("not_found", `no such user: ${body.to}`);
      }
      recipients = [{ username: body.to, sessions }];
    } else {
      if (!(await nameExists(c.env, "group", body.group!))) {
        await charge(c, UNKNOWN_NAMES);
        throw new ApiError("not_found", "no such group");
      }
      // An invitee may read the group, but sends nothing to it before they join: the room refuses them.
      const group = await groupStub(c.env, body.group!).blobHolders(owner, until);
      if (!group.ok) throw new ApiError(group.code, group.message);
      recipients = group.holders;
    }
    const id = `${owner}.${toHex(crypto.getRandomValues(new Uint8Array(16)))}`;
    const upload = await c.env.BLOBS.createMultipartUpload(blobKey(id));
    const opened = await homeStub(c.env, owner).openBlob(
      id,
      upload.uploadId,
      body.size,
      recipients,
      c.var.sessionId,
    );
    if (!opened.ok) {
      await upload.abort().catch(() => undefined);
      throw new ApiError("quota_exceeded", opened.message);
    }
    const { record } = opened;
    const response: CreateBlobResponse = {
      id,
      partBytes: BLOB_PART_BYTES,
      parts: Math.max(1, Math.ceil(body.size / BLOB_PART_BYTES)),
      expiresAt: record.expiresAt,
    };
    return c.json(response, 201);
  },
);

blobs.put("/blobs/:id/parts/:part", async (c) => {
  const { id, owner } = parseBlobId(c.req.param("id"));
  if (owner !== c.var.user) throw new ApiError("forbidden", "only the uploader may add parts");
  const part = Number(c.req.param("part"));
  const home = homeStub(c.env, owner);
  const expected = await home.blobPartBytes(id, part);
  if (expected === null)
    throw new ApiError("not_found", `no part ${c.req.param("part")} to upload for this blob`);
  // Checked before a byte is read: a wrong size is refused at once, not after streaming it.
  const declared = Number(c.req.header("Content-Length"));
  if (declared !== expected)
    throw new ApiError("bad_request", `part ${part} must be exactly ${expected} bytes (Content-Length)`);
  const record = await home.blob(id);
  const body = c.req.raw.body;
  if (!record || !body) throw new ApiError("bad_request", "missing body");
  const uploaded = await c.env.BLOBS.resumeMultipartUpload(blobKey(id), record.uploadId).uploadPart(
    part,
    body,
  );
  await home.recordBlobPart(id, part, uploaded.etag, expected);
  return c.body(null, 204);
});

blobs.post("/blobs/:id/complete", async (c) => {
  const { id, owner } = parseBlobId(c.req.param("id"));
  if (owner !== c.var.user) throw new ApiError("forbidden", "only the uploader may complete an upload");
  const home = homeStub(c.env, owner);
  const record = await home.blob(id);
  if (!record) throw new ApiError("not_found", "no such blob");
  if (record.state === "ready") return c.body(null, 204);
  const parts = await home.blobParts(id);
  if (!parts?.complete)
    throw new ApiError("bad_request", `parts still missing: ${parts ? parts.missing.join(", ") : "all"}`);
  const object = await c.env.BLOBS.resumeMultipartUpload(blobKey(id), record.uploadId).complete(parts.parts);
  if (object.size !== record.size) {
    await home.withdrawBlob(id);
    throw new ApiError("bad_request", `uploaded ${object.size} bytes, announced ${record.size}`);
  }
  await home.markBlobReady(id);
  return c.body(null, 204);
});

blobs.get("/blobs/:id", async (c) => {
  const { id, owner } = parseBlobId(c.req.param("id"));
  const access = await homeStub(c.env, owner).blobAccess(id, c.var.user);
  if (!access.ok) {
    if (access.reason === "forbidden") throw new ApiError("forbidden", "this file was not sent to you");
    if (access.reason === "not_ready") throw new ApiError("conflict", "this file is still being uploaded");
    throw new ApiError("not_found", "no such file (it may have expired)");
  }
  const object = await c.env.BLOBS.get(blobKey(id));
  if (!object) throw new ApiError("not_found", "no such file (it may have expired)");
  return new Response(object.body, {
    headers: { "Content-Type": "application/octet-stream", "Content-Length": String(object.size) },
  });
});

// One call to the owner's home each (and the R2 delete after the last session's confirmation).
blobs.delete("/blobs/:id", async (c) => {
  const { id, owner } = parseBlobId(c.req.param("id"));
  const home = homeStub(c.env, owner);
  const done =
    owner === c.var.user
      ? await home.withdrawBlob(id)
      : await home.blobFetched(id, c.var.user, c.var.sessionId);
  if (!done) throw new ApiError("not_found", "no such file for you");
  return c.body(null, 204);
});

// "This session has the file", from a recipient's session or another session of the owner (for whom
// DELETE would withdraw it).
blobs.post("/blobs/:id/fetched", async (c) => {
  const { id, owner } = parseBlobId(c.req.param("id"));
  if (!(await homeStub(c.env, owner).blobFetched(id, c.var.user, c.var.sessionId)))
    throw new ApiError("not_found", "no such file for you");
  return c.body(null, 204);
});

function parseBlobId(raw: string): { id: string; owner: string } {
  if (!BLOB_ID_PATTERN.test(raw))
    throw new ApiError("bad_request", "blob ids look like <owner>.<32 hex digits>");
  return { id: raw, owner: raw.slice(0, raw.indexOf(".")) };
}
