// The HTTP client for the server's /v1 routes (protocol/http.ts): answers are validated at this edge and
// every failure becomes a typed CliError, so commands never look at status codes.

import { z } from "zod";
import {
  type CreateBlobRequest,
  CreateBlobResponse,
  type CreateGroupRequest,
  ErrorResponse,
  GroupEpochResponse,
  GroupInfo,
  GroupListResponse,
  LookupUsersResponse,
  type LoginRequest,
  NextEpochResponse,
  SessionListResponse,
  SessionResponse,
  type SignedStatementRequest,
  type SignupRequest,
  UserResponse,
  WhoamiResponse,
} from "../../protocol/http.js";
import { PROTOCOL_VERSION } from "../../protocol/version.js";
import {
  AuthError,
  type CliError,
  ConsentRequiredError,
  NetworkError,
  NotFoundError,
  RateLimitedError,
  RefusedError,
} from "../errors.js";
import type { HttpAnswer, Platform, StreamedAnswer } from "../platform.js";

const REQUEST_TIMEOUT_MS = 20_000;
/** One file part (8 MiB) must arrive within this: 30 KB/s at worst. */
const TRANSFER_TIMEOUT_MS = 5 * 60_000;

/** What a 401 means depends on the request: a wrong password at login, a dead session everywhere else. */
export const SESSION_INVALID = "your session has expired or was revoked: log in again";

interface RequestOptions extends ErrorMessages {
  method: "GET" | "POST" | "DELETE";
  path: string;
  body?: unknown;
}

/** Messages that replace the generic one for an answer with that status, where the caller knows better. */
export interface ErrorMessages {
  /** Message for a 401 answer. */
  unauthorized?: string;
  /** Message for a 403 answer. */
  forbidden?: string;
  /** Message for a 404 answer. */
  notFound?: string;
  /** Message for a 409 answer. */
  conflict?: string;
}

/** What the network side of the core needs from its platform: sockets, streamed uploads, timers. */
export type NetPlatform = Pick<Platform, "network" | "clock">;

export class Api {
  constructor(
    /** Where sockets and streamed uploads come from (the connection of this server uses the same). */
    readonly net: NetPlatform,
    /** The server's base URL, e.g. http://127.0.0.1:8787 */
    readonly server: string,
    private readonly token?: string,
  ) {}

  withToken(token: string): Api {
    return new Api(this.net, this.server, token);
  }

  /**
   * Refuses a server that does not speak this client's protocol, before anything derived from a password
   * is sent to it (signup and login ask first). Another version is named, with who should update; an
   * answer that says no version at all is not from a Telepound server.
   */
  async checkProtocol(): Promise<void> {
    let answer: HttpAnswer;
    try {
      answer = await this.net.network.request({
        url: endpoint(this.server, "/v1/health"),
        method: "GET",
        headers: { accept: "application/json" },
        timeoutMs: REQUEST_TIMEOUT_MS,
      });
    } catch (error) {
      throw unreachable(this.server, error);
    }
    const text = answer.text;
    const notTelepound = (why: string) =>
      new NetworkError(`${this.server} is not a Telepound server: GET /v1/health ${why}`);
    if (answer.status < 200 || answer.status >= 300) throw notTelepound(`answered HTTP ${answer.status}`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw notTelepound("answered with something that is not JSON");
    }
    const protocol = announcedProtocol(body);
    if (protocol === null) throw notTelepound("answered without a protocol version");
    if (protocol !== PROTOCOL_VERSION) {
      const advice = protocol < PROTOCOL_VERSION ? "the server must be updated" : "update this client";
      throw new NetworkError(
        `the server at ${this.server} speaks Telepound protocol ${protocol} and this client protocol ${PROTOCOL_VERSION}: ${advice}`,
      );
    }
  }

  async signup(request: SignupRequest): Promise<SessionResponse> {
    const body = await this.request({
      method: "POST",
      path: "/v1/signup",
      body: request,
      conflict: `the username ${request.username} is already taken`,
    });
    return parse(SessionResponse, body, "signup");
  }

  async login(request: LoginRequest): Promise<SessionResponse> {
    const body = await this.request({
      method: "POST",
      path: "/v1/login",
      body: request,
      // The server's one answer for both, and nothing is asked before it: the client cannot tell either.
      // The address matters: keys are derived for the server's origin, so another one never matches.
      unauthorized: `wrong username or password at ${this.server}`,
      notFound: `no such user: ${request.username}`,
    });
    return parse(SessionResponse, body, "login");
  }

  async logout(): Promise<void> {
    await this.request({ method: "POST", path: "/v1/logout" });
  }

  /** This account's live sessions (its devices), the caller's marked `current`. */
  async sessions(): Promise<SessionListResponse> {
    return parse(
      SessionListResponse,
      await this.request({ method: "GET", path: "/v1/sessions" }),
      "sessions",
    );
  }

  /** Ends one of this account's sessions, as its own logout would. */
  async revokeSession(id: string): Promise<void> {
    await this.request({
      method: "DELETE",
      path: `/v1/sessions/${encodeURIComponent(id)}`,
      notFound: `no session ${id} on this account (see "telepound devices")`,
    });
  }

  async whoami(): Promise<WhoamiResponse> {
    return parse(WhoamiResponse, await this.request({ method: "GET", path: "/v1/whoami" }), "whoami");
  }

  async user(username: string): Promise<UserResponse> {
    const body = await this.request({
      method: "GET",
      path: `/v1/users/${encodeURIComponent(username)}`,
      notFound: `no such user: ${username}`,
    });
    return parse(UserResponse, body, "users");
  }

  /** Many users' public keys in one request (at most MAX_RECIPIENTS names). */
  async lookupUsers(usernames: string[]): Promise<LookupUsersResponse> {
    const body = await this.request({ method: "POST", path: "/v1/users/lookup", body: { usernames } });
    return parse(LookupUsersResponse, body, "users/lookup");
  }

  // ---- groups: the server enforces every rule and groups.ts verifies it; these only carry the requests ---

  /** The groups I am in, and the invitations waiting for my join or decline. */
  async groups(): Promise<GroupListResponse> {
    return parse(GroupListResponse, await this.request({ method: "GET", path: "/v1/groups" }), "groups");
  }

  /**
   * 409: the name is taken, or the statement is for an epoch that is not the next (the server says which).
   * ConsentRequiredError: some members must be invited instead.
   */
  async createGroup(request: CreateGroupRequest): Promise<GroupInfo> {
    const body = await this.request({ method: "POST", path: "/v1/groups", body: request });
    return parse(GroupInfo, body, "group");
  }

  /** The epoch a create statement for `name` must be signed for. */
  async nextEpoch(name: string): Promise<NextEpochResponse> {
    const body = await this.request({
      method: "GET",
      path: `/v1/groups/${encodeURIComponent(name)}/next-epoch`,
    });
    return parse(NextEpochResponse, body, "next epoch");
  }

  async groupInfo(name: string): Promise<GroupInfo> {
    const body = await this.request({
      method: "GET",
      path: `/v1/groups/${encodeURIComponent(name)}`,
      notFound: `no such group: ${name}`,
      forbidden: `you are not a member of the group ${name}`,
    });
    return parse(GroupInfo, body, "group");
  }

  /** Members and invitees at a past (or the current) epoch; 403 unless we were in it then or just before. */
  async groupEpoch(name: string, epoch: number): Promise<GroupEpochResponse> {
    const body = await this.request({
      method: "GET",
      path: `/v1/groups/${encodeURIComponent(name)}/epochs/${epoch}`,
      notFound: `the group ${name} has no epoch ${epoch} (or no longer exists)`,
      forbidden: `you were not a member of the group ${name} at epoch ${epoch}`,
    });
    return parse(GroupEpochResponse, body, "group epoch");
  }

  /** ConsentRequiredError: the user has never written to us, and must be invited instead. */
  async addMember(name: string, signed: SignedStatementRequest): Promise<GroupInfo> {
    const body = await this.request({
      method: "POST",
      path: `/v1/groups/${encodeURIComponent(name)}/members`,
      // 409 is "already a member", "the group is full" or a stale statement: the server's own words say which.
      body: signed,
    });
    return parse(GroupInfo, body, "group");
  }

  /** The admin invites a user, who becomes a member only by joining. */
  async inviteMember(name: string, signed: SignedStatementRequest): Promise<GroupInfo> {
    const body = await this.request({
      method: "POST",
      path: `/v1/groups/${encodeURIComponent(name)}/invitations`,
      // 409 is "already a member", "already invited", "the group is full", too many pending invitations
      // or a stale statement: the server's own words say which.
      body: signed,
    });
    return parse(GroupInfo, body, "group");
  }

  /** An invitee accepts: the answer is the group with them as a member. */
  async joinGroup(name: string, signed: SignedStatementRequest): Promise<GroupInfo> {
    const body = await this.request({
      method: "POST",
      path: `/v1/groups/${encodeURIComponent(name)}/join`,
      body: signed,
      notFound: `no such group: ${name}`,
    });
    return parse(GroupInfo, body, "group");
  }

  /** An invitee says no: the invitation is gone (204). */
  async declineGroup(name: string, signed: SignedStatementRequest): Promise<void> {
    await this.request({
      method: "POST",
      path: `/v1/groups/${encodeURIComponent(name)}/decline`,
      body: signed,
      notFound: `no such group: ${name}`,
    });
  }

  /** A member removed, or (for an invitee) the invitation withdrawn. */
  async removeMember(name: string, username: string, signed: SignedStatementRequest): Promise<GroupInfo> {
    const body = await this.request({
      method: "DELETE",
      path: `/v1/groups/${encodeURIComponent(name)}/members/${encodeURIComponent(username)}`,
      body: signed,
    });
    return parse(GroupInfo, body, "group");
  }

  async leaveGroup(name: string, signed: SignedStatementRequest): Promise<void> {
    await this.request({
      method: "POST",
      path: `/v1/groups/${encodeURIComponent(name)}/leave`,
      body: signed,
      notFound: `no such group: ${name}`,
      forbidden: `you are not a member of the group ${name}`,
    });
  }

  // ---- encrypted file blobs: ciphertext only (the key travels in the end-to-end message) -------------

  /** Announces an upload; 413/400 over the size limit, 404 no such user or group, 429 too many uploads. */
  async createBlob(request: CreateBlobRequest): Promise<CreateBlobResponse> {
    const body = await this.request({
      method: "POST",
      path: "/v1/blobs",
      body: request,
      notFound: request.to !== undefined ? `no such user: ${request.to}` : `no such group: ${request.group}`,
      forbidden:
        request.group !== undefined ? `you are not a member of the group ${request.group}` : undefined,
    });
    return parse(CreateBlobResponse, body, "blobs");
  }

  /**
   * One part, exactly `length` bytes as the server said (the last may be shorter), streamed from `source`
   * as it produces them: nothing holds the whole part. Each piece is written and flushed to the socket
   * before the next is asked for, so `source` may reuse one buffer for all of them (the platform's
   * streamed PUT, as fetch cannot say when a piece of a streamed body has been written).
   * An error thrown by `source` is what this throws.
   */
  async putBlobPart(
    id: string,
    part: number,
    length: number,
    source: AsyncIterable<Uint8Array>,
    onBodySent?: () => void,
  ): Promise<void> {
    const url = endpoint(this.server, `/v1/blobs/${encodeURIComponent(id)}/parts/${part}`);
    const headers: Record<string, string> = {
      accept: "application/json",
      "content-type": "application/octet-stream",
    };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    // What the source did: its own failure is rethrown as it is, and a body it did not finish giving
    // cannot have been accepted.
    let sourceError: { error: unknown } | null = null;
    let complete = false;
    async function* body(): AsyncGenerator<Uint8Array> {
      try {
        yield* source;
      } catch (error) {
        sourceError = { error };
        throw error;
      }
      complete = true;
    }
    let answer: HttpAnswer;
    try {
      answer = await this.net.network.putStreamed({
        url,
        headers,
        length,
        body: body(),
        ...(onBodySent ? { onBodySent } : {}),
        idleTimeoutMs: TRANSFER_TIMEOUT_MS,
      });
    } catch (error) {
      if (sourceError) throw (sourceError as { error: unknown }).error;
      throw unreachable(this.server, error);
    }
    if (answer.status < 200 || answer.status >= 300) throw httpError(answer, answer.text);
    if (!complete) throw new NetworkError("protocol failure: the server accepted a part it did not read");
  }

  async completeBlob(id: string): Promise<void> {
    await this.request({ method: "POST", path: `/v1/blobs/${encodeURIComponent(id)}/complete` });
  }

  /**
   * The ciphertext as a stream, with the length the server announced. `signal` aborts the transfer
   * (the caller's idle timer); nothing here limits how long a large download may take in total.
   */
  async downloadBlob(
    id: string,
    signal: AbortSignal,
  ): Promise<{ body: AsyncIterable<Uint8Array>; size: number; cancel(): Promise<void> }> {
    const headers: Record<string, string> = { accept: "application/octet-stream" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const server = this.server;
    let answer: StreamedAnswer;
    try {
      answer = await this.net.network.getStreamed({
        url: endpoint(server, `/v1/blobs/${encodeURIComponent(id)}`),
        headers,
        signal,
      });
    } catch (error) {
      throw unreachable(server, error);
    }
    if (answer.status < 200 || answer.status >= 300) {
      const text = await readSmallText(answer).catch(() => "");
      throw httpError(answer, text, {
        notFound: "the file is no longer on the server (it expired, or was withdrawn or already fetched)",
        forbidden: "the server refuses the file to you (it was not sent to you)",
        conflict: "the file is still being uploaded",
      });
    }
    const size = Number(answer.headers.get("content-length") ?? Number.NaN);
    if (!Number.isSafeInteger(size)) {
      await answer.cancel();
      throw new NetworkError("protocol failure: the file download has no Content-Length");
    }
    async function* chunks(): AsyncGenerator<Uint8Array> {
      let done = false;
      const iterator = answer.body[Symbol.asyncIterator]();
      try {
        for (;;) {
          const next = await iterator.next().catch((error: unknown) => {
            throw unreachable(server, error);
          });
          if (next.done) {
            done = true;
            return;
          }
          yield next.value;
        }
      } finally {
        // The reader stopped early (a bad chunk, a failed write): release the connection at once.
        if (!done) await answer.cancel().catch(() => undefined);
      }
    }
    return { size, body: chunks(), cancel: () => answer.cancel().catch(() => undefined) };
  }

  /** A recipient confirms it has the file; the owner withdraws it. */
  async deleteBlob(id: string): Promise<void> {
    await this.request({
      method: "DELETE",
      path: `/v1/blobs/${encodeURIComponent(id)}`,
      notFound: "the file is no longer on the server",
    });
  }

  /**
   * This session has the file: how another session of its owner confirms it (the owner's DELETE would
   * withdraw it from everyone). A recipient may say the same; DELETE means this from them.
   */
  async confirmBlobFetched(id: string): Promise<void> {
    await this.request({
      method: "POST",
      path: `/v1/blobs/${encodeURIComponent(id)}/fetched`,
      notFound: "the file is no longer on the server",
    });
  }

  private async request(options: RequestOptions): Promise<unknown> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    let answer: HttpAnswer;
    try {
      answer = await this.net.network.request({
        url: endpoint(this.server, options.path),
        method: options.method,
        headers,
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        timeoutMs: REQUEST_TIMEOUT_MS,
      });
    } catch (error) {
      throw unreachable(this.server, error);
    }
    if (answer.status >= 200 && answer.status < 300) {
      if (answer.text === "") return null;
      try {
        return JSON.parse(answer.text);
      } catch {
        throw new NetworkError(`protocol failure: ${options.path} answered with something that is not JSON`);
      }
    }
    throw httpError(answer, answer.text, options);
  }
}

/** `path` ("/v1/...") under the server's URL, keeping any path prefix it has (a server behind a proxy). */
export function endpoint(server: string, path: string): URL {
  const base = new URL(server);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  return new URL(path.replace(/^\//, ""), base);
}

/** The WebSocket URL for /v1/connect: ws:// for http://, wss:// for https://. */
export function connectUrl(server: string, receive: boolean): URL {
  const url = endpoint(server, "/v1/connect");
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (!receive) url.searchParams.set("receive", "0");
  return url;
}

/** The connection failed before any answer (refused, DNS, timeout, TLS): say where we tried, and why. */
/** The most of a refused download's body that is read: it is only an error's JSON. */
const REFUSED_DOWNLOAD_TEXT_BYTES = 64 * 1024;

/** A refused download's body (an error's JSON), read up to a bound and decoded; the rest is dropped. */
async function readSmallText(answer: StreamedAnswer): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  let read = 0;
  try {
    for await (const piece of answer.body) {
      read += piece.length;
      text += decoder.decode(piece, { stream: true });
      if (read >= REFUSED_DOWNLOAD_TEXT_BYTES) break;
    }
  } finally {
    await answer.cancel();
  }
  return text + decoder.decode();
}

export function unreachable(server: string, error: unknown): NetworkError {
  const code = errorCode(error) ?? errorCode((error as { cause?: unknown } | null)?.cause);
  return new NetworkError(`cannot reach the Telepound server at ${server}${code ? ` (${code})` : ""}`);
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { code, name } = error as { code?: unknown; name?: unknown };
  if (name === "TimeoutError") return "timed out";
  return typeof code === "string" ? code : undefined;
}

/** Maps an error answer to the typed error for its status, keeping the server's own message when it sent one. */
export function httpError(
  response: { status: number; headers: { get(name: string): string | null } },
  text: string,
  options: ErrorMessages = {},
): CliError {
  let code = "";
  let serverMessage = "";
  let users: string[] | undefined;
  try {
    const parsed = ErrorResponse.safeParse(JSON.parse(text));
    if (parsed.success) {
      code = parsed.data.error.code;
      serverMessage = parsed.data.error.message ?? "";
      users = parsed.data.error.users;
    }
  } catch {
    // a non-JSON error body (a proxy's HTML page): fall back to the status alone
  }
  const detail = serverMessage || code || `HTTP ${response.status}`;
  switch (response.status) {
    case 401:
      // A session ended by the session cap or from another device: the server says which.
      if (code === "session_ended" && serverMessage) return new AuthError(serverMessage);
      return new AuthError(options.unauthorized ?? SESSION_INVALID);
    case 404:
      return new NotFoundError(options.notFound ?? `not found: ${detail}`);
    case 429: {
      const retryAfter = Number.parseInt(response.headers.get("retry-after") ?? "", 10);
      const wait = Number.isFinite(retryAfter) ? retryAfter : undefined;
      const when = wait === undefined ? "later" : `in ${wait} second${wait === 1 ? "" : "s"}`;
      return new RateLimitedError(`rate limited by the server: try again ${when}`, wait);
    }
    case 409:
      return new RefusedError(options.conflict ?? `refused by the server: ${detail}`);
    case 403:
      // Only a group change gets this; its command invites `users` instead of adding them.
      if (code === "consent_required" && users && users.length > 0)
        return new ConsentRequiredError(`refused by the server: ${detail}`, users);
      return new RefusedError(options.forbidden ?? `refused by the server: ${detail}`);
    case 400:
    case 413:
      return new RefusedError(`refused by the server: ${detail}`);
    default:
      if (response.status >= 500)
        return new NetworkError(`server error (HTTP ${response.status}): ${detail}`);
      return new NetworkError(`protocol failure: unexpected HTTP ${response.status}: ${detail}`);
  }
}

/**
 * The protocol version a health answer announces. Only `protocol` is read, as a later version may change
 * the rest; protocol 1's answer was exactly `{"ok":true,"shards":n}`, without one. Null: not Telepound's.
 */
function announcedProtocol(body: unknown): number | null {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return null;
  const { protocol, ok, shards } = body as { protocol?: unknown; ok?: unknown; shards?: unknown };
  if (protocol === undefined) return ok === true && Number.isSafeInteger(shards) ? 1 : null;
  return Number.isSafeInteger(protocol) && (protocol as number) >= 1 ? (protocol as number) : null;
}

function parse<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const result = schema.safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new NetworkError(
      `protocol failure: the server's ${what} answer is malformed (${issue?.path.join(".") || "body"}: ${issue?.message})`,
    );
  }
  return result.data;
}
