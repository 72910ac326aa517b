// Request and response bodies of the HTTP API (worker/), each defined once as a zod schema with its type
// inferred from it: the server validates requests with them and every client validates the answers with
// them (client/net/api.ts). Response schemas are not strict, so a newer server may add fields. Binary
// values travel as standard base64.

import { z } from "zod";
import { MAX_STATEMENT_BYTES } from "./group-statement.js";
import {
  GROUP_NAME_PATTERN,
  MAX_FILE_BYTES,
  MAX_RECIPIENTS,
  USERNAME_PATTERN,
  sealedFileSize,
} from "./limits.js";

const base64 = z.base64();
const base64Max = (maxBytes: number) => base64.max(Math.ceil(maxBytes / 3) * 4, `at most ${maxBytes} bytes`);

export const username = z
  .string()
  .transform((raw) => raw.toLowerCase())
  .pipe(z.string().regex(USERNAME_PATTERN, "usernames are 3–32 of a-z 0-9 _ -"));

/** Public halves: RSA-OAEP-3072 (SPKI DER) for wrapping keys, Ed25519 (SPKI DER) for signatures. */
export const PublicKeys = z.strictObject({
  encryption: base64Max(1024),
  signing: base64Max(128),
});
export type PublicKeys = z.infer<typeof PublicKeys>;

/** The 32-byte key derived from the password that proves it; the server stores only its SHA-256. */
const authKey = base64.length(44);

/** The largest device name, in UTF-16 code units: enough for "alice's work laptop (Ubuntu 24.04)". */
export const MAX_DEVICE_NAME_LENGTH = 64;

/**
 * What the user calls the device a session is on (`telepound login --device-name`, by default the host
 * name), shown in `GET /v1/sessions`. No control, format or line-separator characters: it is printed.
 */
export const deviceName = z
  .string()
  .min(1, "a device name is 1–64 characters")
  .max(MAX_DEVICE_NAME_LENGTH, "a device name is 1–64 characters")
  .regex(/^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+$/u, "a device name has no control or formatting characters");

/** A session's id: the middle part of its token, and what `DELETE /v1/sessions/:id` names. */
export const SESSION_ID_PATTERN = /^[0-9a-f]{32}$/;

/** What a server says to a protocol 1 client that still sends or asks for KDF parameters. */
export const PROTOCOL_1_KDF =
  "protocol 1 client: this server speaks protocol 3, where the client derives its KDF salt itself: update the client";

/**
 * No KDF parameters: the client derives the salt from the server's origin and the username and uses the
 * protocol's fixed cost (PROTOCOL §3.2). A body that still carries protocol 1's `kdf` gets PROTOCOL_1_KDF.
 */
export const SignupRequest = z.strictObject(
  {
    username,
    authKey,
    publicKeys: PublicKeys,
    /** nonce ‖ secretbox(private keys), sealed under the password-derived key; opaque to the server. */
    sealedPrivateKeys: base64Max(8 * 1024),
    deviceName: deviceName.optional(),
  },
  {
    error: (issue) =>
      issue.code === "unrecognized_keys" && issue.keys.includes("kdf") ? PROTOCOL_1_KDF : undefined,
  },
);
export type SignupRequest = z.input<typeof SignupRequest>;

export const LoginRequest = z.strictObject({ username, authKey, deviceName: deviceName.optional() });
export type LoginRequest = z.input<typeof LoginRequest>;

const sessionId = z.string().regex(SESSION_ID_PATTERN);

/** One live session of the caller's account, as `GET /v1/sessions` lists it. Times are ms since 1970. */
export const SessionInfo = z.object({
  id: sessionId,
  /** The name given at login or signup, or null when none was given. */
  deviceName: z.string().nullable(),
  createdAt: z.number(),
  /** Last request, connect or socket close, to within a minute. */
  lastSeenAt: z.number(),
  expiresAt: z.number(),
  /** A socket of this session receives right now. */
  connected: z.boolean(),
  /** This is the session of the token that asked. */
  current: z.boolean(),
});
export type SessionInfo = z.infer<typeof SessionInfo>;

export const SessionListResponse = z.object({ sessions: z.array(SessionInfo) });
export type SessionListResponse = z.infer<typeof SessionListResponse>;

/** A session the session cap ended to make room for a login, as that login's answer names it. */
export const EndedSessionInfo = z.object({
  id: sessionId,
  deviceName: z.string().nullable(),
  createdAt: z.number(),
  lastSeenAt: z.number(),
});
export type EndedSessionInfo = z.infer<typeof EndedSessionInfo>;

export const SessionResponse = z.object({
  username: z.string(),
  token: z.string().min(1),
  sessionId: z.string(),
  expiresAt: z.number(),
  publicKeys: PublicKeys,
  sealedPrivateKeys: z.string(),
  /**
   * Login only: the sessions this login ended because the account was at its session cap (the longest
   * idle ones), usually none. Older servers leave it out.
   */
  endedSessions: z.array(EndedSessionInfo).optional(),
});
export type SessionResponse = z.infer<typeof SessionResponse>;

export const UserResponse = z.object({ username: z.string(), publicKeys: PublicKeys });
export type UserResponse = z.infer<typeof UserResponse>;

export const WhoamiResponse = z.object({
  username: z.string(),
  sessionId: z.string(),
  expiresAt: z.number(),
});
export type WhoamiResponse = z.infer<typeof WhoamiResponse>;

/**
 * `GET /v1/health`: alive, the protocol version it speaks (protocol/version.ts) and the most shards one
 * balancer may open (SHARDS_MAX). A client checks `protocol` before signup and login; an answer without it
 * is not a Telepound server.
 */
export interface HealthResponse {
  ok: true;
  protocol: number;
  shards: number;
}

/** One shard as its balancer sees it: open (takes new connections) or draining (empties as users reconnect). */
export interface ShardStats {
  shard: string;
  state: "open" | "draining";
  connections: number;
  framesPerSecond: number;
}

/**
 * `GET /v1/stats` (operator only): every shard's live sockets, by shard and by balancer, and the bounds and
 * targets shards open and drain by.
 */
export interface StatsResponse {
  shards: number;
  connections: Record<string, number>;
  balancers: Array<{ balancer: string; shards: ShardStats[] }>;
  policy: { min: number; max: number; connections: number; framesPerSecond: number };
}

/** Every error answer. `message` is always sent; a client tolerates its absence. */
export const ErrorResponse = z.object({
  error: z.object({
    code: z.string(),
    message: z.string().optional(),
    /** Only with consent_required: the users who must be invited rather than added. */
    users: z.array(z.string()).optional(),
  }),
});
export type ErrorResponse = z.infer<typeof ErrorResponse>;

/**
 * The routes, all under the Worker's origin. "Bearer" routes need `Authorization: Bearer <token>`.
 *   GET  /v1/health                                    → 200 HealthResponse {"ok":true,"protocol":2,"shards":N}
 *   GET  /v1/stats             Bearer (operator)        → 200 StatsResponse
 *   POST /v1/signup            SignupRequest            → 201 SessionResponse | 409 conflict
 *   GET  /v1/kdf/:username                              → 410 gone (protocol 1's KDF lookup; PROTOCOL_1_KDF)
 *   POST /v1/login             LoginRequest             → 200 SessionResponse | 401 unauthorized | 429 rate_limited
 *   POST /v1/logout            Bearer                   → 204
 *   GET  /v1/whoami            Bearer                   → 200 WhoamiResponse
 *   GET  /v1/sessions          Bearer                   → 200 SessionListResponse (this account's sessions)
 *   DELETE /v1/sessions/:id    Bearer                   → 204 | 400 malformed id | 404 no such session of mine
 *   GET  /v1/users/:username   Bearer                   → 200 UserResponse | 404 not_found
 *   POST /v1/users/lookup      Bearer, LookupUsersRequest → 200 LookupUsersResponse
 *   GET  /v1/connect           Bearer, WebSocket upgrade; `?receive=0` for a send-only socket
 *   GET  /v1/groups                         Bearer → 200 GroupListResponse (groups I am in, invitations)
 *   POST /v1/groups                         Bearer, CreateGroupRequest → 201 GroupInfo | 400 | 409 | 404 (a member) | 403 consent_required
 *   GET  /v1/groups/:name                   Bearer → 200 GroupInfo | 403 neither member nor invited | 404
 *   GET  /v1/groups/:name/next-epoch        Bearer → 200 NextEpochResponse
 *   GET  /v1/groups/:name/epochs/:epoch     Bearer → 200 GroupEpochResponse | 403 | 404
 *   POST /v1/groups/:name/members           Bearer, SignedStatementRequest (add) → 200 GroupInfo (admin only) | 403 consent_required
 *   POST /v1/groups/:name/invitations       Bearer, SignedStatementRequest (invite) → 200 GroupInfo (admin only)
 *   POST /v1/groups/:name/join              Bearer, SignedStatementRequest (join) → 200 GroupInfo (invitees)
 *   POST /v1/groups/:name/decline           Bearer, SignedStatementRequest (decline) → 204 (invitees)
 *   DELETE /v1/groups/:name/members/:user   Bearer, SignedStatementRequest (remove: a member, or an invitation withdrawn) → 200 GroupInfo (admin only)
 *   POST /v1/groups/:name/leave             Bearer, SignedStatementRequest (leave) → 204
 *   POST /v1/blobs                          Bearer, CreateBlobRequest → 201 CreateBlobResponse | 400 (size) | 403 (not a member) | 404 | 429
 *   PUT  /v1/blobs/:id/parts/:n             Bearer (owner), raw bytes with Content-Length → 204
 *   POST /v1/blobs/:id/complete             Bearer (owner) → 204 (every part uploaded, sizes add up)
 *   GET  /v1/blobs/:id                      Bearer (a recipient or the owner) → 200 the ciphertext | 403 | 404
 *   DELETE /v1/blobs/:id                    Bearer: a recipient's session says "fetched"; the owner withdraws it → 204
 *   POST /v1/blobs/:id/fetched              Bearer (a recipient or the owner): this session has the file → 204 | 404
 * Every error answers with an ErrorResponse body and a matching HTTP status. A session ended by the
 * session cap or revoked from another device answers 401 `session_ended`, its message saying which.
 */
export const HttpErrorCode = [
  "bad_request",
  "unauthorized",
  "session_ended",
  "forbidden",
  /**
   * 403: the group change would make users members who have never written to its signer; the body's
   * `users` names them, and they can be invited instead (§7.1).
   */
  "consent_required",
  "not_found",
  "conflict",
  "gone",
  "too_large",
  /** The user's blob quota is full (413): it frees up as recipients fetch files or they expire. */
  "quota_exceeded",
  "rate_limited",
  "internal",
] as const;
export type HttpErrorCode = (typeof HttpErrorCode)[number];

// ---- groups ---------------------------------------------------------------------------------------

export const groupName = z
  .string()
  .transform((raw) => raw.toLowerCase())
  .pipe(z.string().regex(GROUP_NAME_PATTERN, "group names are 3–32 of a-z 0-9 _ -"));

/**
 * A membership change: a statement (protocol/group-statement.ts) and its Ed25519 signature by the user
 * who sends it. The add, remove and leave routes take exactly this.
 */
export const SignedStatementRequest = z.strictObject({
  statement: base64Max(MAX_STATEMENT_BYTES).min(4, "a statement is required"),
  signature: base64.length(88, "a signature is 64 bytes"),
});
export type SignedStatementRequest = z.input<typeof SignedStatementRequest>;

const sortedNames = (min: number) =>
  z
    .array(username)
    .min(min)
    .max(MAX_RECIPIENTS)
    .refine(
      (names) => names.every((name, i) => i === 0 || names[i - 1]! < name),
      "names must be sorted, each once",
    );

/**
 * A create: the statement, the full member list it commits to (the creator included, sorted) and the
 * users it invites (sorted; absent means none).
 */
export const CreateGroupRequest = SignedStatementRequest.extend({
  members: sortedNames(1),
  invited: sortedNames(0).optional(),
});
export type CreateGroupRequest = z.input<typeof CreateGroupRequest>;

/** GET /v1/groups/:name/next-epoch: the epoch a create statement for this name must be signed for. */
export const NextEpochResponse = z.object({ name: z.string(), epoch: z.int().min(1) });
export type NextEpochResponse = z.infer<typeof NextEpochResponse>;

export const LookupUsersRequest = z.strictObject({ usernames: z.array(username).min(1).max(MAX_RECIPIENTS) });
export type LookupUsersRequest = z.input<typeof LookupUsersRequest>;

export const LookupUsersResponse = z.object({
  users: z.array(UserResponse),
  /** Names asked for that have no account. */
  missing: z.array(z.string()),
});
export type LookupUsersResponse = z.infer<typeof LookupUsersResponse>;

export const GroupMember = z.object({ username: z.string(), joinedAt: z.number() });
export type GroupMember = z.infer<typeof GroupMember>;

export const GroupInfo = z.object({
  name: z.string(),
  admin: z.string(),
  /** Bumped on every membership change; group messages are sealed for one epoch. */
  epoch: z.int().min(0),
  /** Oldest member first: the order in which admin rights are handed over. */
  members: z.array(GroupMember),
  /** Invited and not yet answered, sorted: not members, they get no messages and have no key slot. */
  invited: z.array(z.string()),
  createdAt: z.number(),
  /** The signed statement that started the current epoch (base64), and its signature (base64). */
  statement: z.string(),
  signature: z.string(),
});
export type GroupInfo = z.infer<typeof GroupInfo>;

/** One epoch: its members and invitees (sorted), the statement that started it and its signature (base64). */
export const GroupEpochResponse = z.object({
  name: z.string(),
  epoch: z.int().min(0),
  members: z.array(z.string()),
  invited: z.array(z.string()),
  statement: z.string(),
  signature: z.string(),
});
export type GroupEpochResponse = z.infer<typeof GroupEpochResponse>;

/** An invitation waiting for this user's join or decline. */
export const GroupInvitation = z.object({
  group: z.string(),
  /** The admin who signed the invite. */
  by: z.string(),
  /** Server time of the invite, ms. */
  at: z.number(),
});
export type GroupInvitation = z.infer<typeof GroupInvitation>;

export const GroupListResponse = z.object({
  groups: z.array(z.string()),
  /** Pending invitations, oldest first. */
  invitations: z.array(GroupInvitation),
});
export type GroupListResponse = z.infer<typeof GroupListResponse>;

// ---- files (blobs) --------------------------------------------------------------------------------

/**
 * Announces an encrypted file upload for one user (`to`) or for the members of a group (`group`, who
 * then are the members at this moment). `size` is the ciphertext size: sealedFileSize(plaintext size).
 */
export const CreateBlobRequest = z
  .strictObject({
    to: username.optional(),
    group: groupName.optional(),
    size: z.int().min(16).max(sealedFileSize(MAX_FILE_BYTES)),
  })
  .refine(
    (body) => (body.to === undefined) !== (body.group === undefined),
    "give exactly one of `to` and `group`",
  );
export type CreateBlobRequest = z.input<typeof CreateBlobRequest>;

export const BLOB_ID_PATTERN = /^[a-z0-9_-]{3,32}\.[0-9a-f]{32}$/;

export const CreateBlobResponse = z.object({
  /** "<owner>.<32 hex digits>": names the blob in every later call and in the encrypted descriptor. */
  id: z.string().regex(BLOB_ID_PATTERN),
  /** Upload PUT /v1/blobs/:id/parts/1..parts, each exactly partBytes long but the last. */
  partBytes: z.int().min(1),
  parts: z.int().min(1),
  expiresAt: z.number(),
});
export type CreateBlobResponse = z.infer<typeof CreateBlobResponse>;
