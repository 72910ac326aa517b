// The WebSocket client for /v1/connect: opens with the session token, waits for "welcome", hands binary
// deliveries to its owner, correlates uploads with their "sent"/"error" answers, batches acks, keeps alive.
//
// Messages stay queued on the server until acknowledged, and it sends the next page of a backlog only
// after the previous one is acknowledged, so acks go out promptly (a short batching delay, not at close).
// A group message is queued in its group's room, not in our home: its ack names the group (read from
// the delivery's header as it arrives), so callers acknowledge by message id alone.

import { BinaryFrame, deliveryAckRoute } from "../../protocol/envelope.js";
import {
  CloseCode,
  type ErrorFrame,
  type EventFrame,
  PING_TEXT,
  ServerFrame,
  type WelcomeFrame,
} from "../../protocol/frames.js";
import { MAX_ACK_IDS, MAX_FRAME_BYTES } from "../../protocol/limits.js";
import type { z } from "zod";
import { type NetPlatform, connectUrl, httpError, unreachable } from "./api.js";
import type { PlatformSocket } from "../platform.js";
import {
  AuthError,
  type CliError,
  NetworkError,
  NotFoundError,
  RateLimitedError,
  RefusedError,
  StaleEpochError,
} from "../errors.js";

export type UploadStatus = "delivered" | "stored";

export interface ConnectionOptions {
  /** Where the socket comes from (Api.net). */
  net: NetPlatform;
  server: string;
  token: string;
  /** false: a send-only socket (`?receive=0`) that gets no deliveries. */
  receive: boolean;
  /** Every binary delivery frame (first byte 0x02), in arrival order. Set here so none is missed. */
  onDelivery?: (frame: Uint8Array) => void;
  /**
   * A group membership event, queued on the server and acknowledged like a message. Without a handler
   * the event is acknowledged at once, so it can never hold up the rest of the queue.
   */
  onEvent?: (event: EventFrame) => void;
  /** An error frame that answers no upload of ours. */
  onServerError?: (error: CliError) => void;
  /** The connection ended without close() being called: dropped, timed out, or closed by the server. */
  onClose?: (error: CliError) => void;
  /** How long acks wait to be batched into one frame. */
  ackDelayMs?: number;
  /** Keep-alive ping interval; the connection is declared dead after two silent intervals. */
  pingIntervalMs?: number;
  /** How long an upload waits for its "sent" or "error" answer. */
  answerTimeoutMs?: number;
  /** How long the handshake plus "welcome" may take. */
  connectTimeoutMs?: number;
}

interface PendingUpload {
  resolve(status: UploadStatus): void;
  reject(error: CliError): void;
  timer: ReturnType<typeof setTimeout>;
}

type Welcome = z.infer<typeof WelcomeFrame>;

export class Connection {
  /** Resolves at the server's "synced": every message queued before we connected has been pushed. */
  readonly synced: Promise<void>;
  private resolveSynced!: () => void;
  private rejectSynced!: (error: CliError) => void;

  private readonly pending = new Map<string, PendingUpload>();
  /** Ids waiting to be acknowledged, with the group each belongs to ("" for our home's queue). */
  private readonly acks = new Map<string, string>();
  /** The group of each group delivery not yet acknowledged, by message id. */
  private readonly groupOf = new Map<string, string>();
  private ackTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private lastHeard = Date.now();
  private closedByUs = false;
  private ended = false;
  private welcomeFrame: Welcome | null = null;
  /** The account's live sessions, this one's included: from the welcome, then each `sessions` frame. */
  private sessionCount: number | undefined;
  private ws!: PlatformSocket;
  /** Resolves once the socket has ended, for whatever reason. */
  private readonly socketEnded: Promise<void>;
  private resolveSocketEnded!: () => void;

  private constructor(private readonly options: ConnectionOptions) {
    this.socketEnded = new Promise((resolve) => (this.resolveSocketEnded = resolve));
    this.synced = new Promise((resolve, reject) => {
      this.resolveSynced = resolve;
      this.rejectSynced = reject;
    });
    // Nobody has to wait for "synced" (send never does); an unawaited rejection must not crash the process.
    this.synced.catch(() => undefined);
  }

  /** Connects and resolves once the server's "welcome" arrived; rejects with a typed CliError. */
  static open(options: ConnectionOptions): Promise<Connection> {
    const url = connectUrl(options.server, options.receive);
    const connectTimeoutMs = options.connectTimeoutMs ?? 15_000;
    const connection = new Connection(options);
    return new Promise<Connection>((resolve, reject) => {
      let settled = false;
      const fail = (error: CliError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        connection.end(error);
        connection.ws.terminate();
        reject(error);
      };
      const timer = setTimeout(
        () => fail(new NetworkError(`no welcome from the Telepound server at ${options.server} (timed out)`)),
        connectTimeoutMs,
      );
      connection.onWelcome = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        connection.startKeepalive();
        resolve(connection);
      };
      connection.onEarlyFailure = fail;
      connection.ws = options.net.network.openSocket(
        url,
        {
          headers: { authorization: `Bearer ${options.token}` },
          maxPayloadBytes: MAX_FRAME_BYTES,
          handshakeTimeoutMs: connectTimeoutMs,
        },
        {
          onRefused: (status, headers, text) => fail(httpError({ status, headers }, text)),
          onError: (error) => {
            if (!settled) fail(unreachable(options.server, error));
            // After opening, onClose follows every error and reports it.
          },
          onMessage: (data) => connection.onMessage(data),
          onClose: (code, reason) => {
            connection.resolveSocketEnded();
            const detail = `${code}${reason.length ? `: ${reason}` : ""}`;
            // 4401: the session was logged out or expired (docs/PROTOCOL.md): log in again, not a network fault.
            const error =
              code === CloseCode.sessionEnded
                ? new AuthError(`the session ended (${detail}): log in again`)
                : new NetworkError(`the server closed the connection (${detail})`);
            if (!settled) return fail(error);
            connection.onSocketClosed(error);
          },
        },
      );
    });
  }

  get welcome(): Welcome {
    if (!this.welcomeFrame) throw new Error("Connection.welcome read before the connection opened");
    return this.welcomeFrame;
  }

  /**
   * Whether the account may have a live session besides this one, which a sent copy would reach: the
   * server's count says so, or (a server that does not count) it may.
   */
  get otherSessionsMayExist(): boolean {
    return this.sessionCount === undefined || this.sessionCount > 1;
  }

  /**
   * Sends an upload frame (first byte 0x01) and resolves with the server's answer for `messageId`:
   * "delivered" (a live socket got it) or "stored" (queued). An error frame for the id rejects.
   */
  sendUpload(frame: Uint8Array, messageId: string): Promise<UploadStatus> {
    if (this.ended || !this.ws.isOpen) {
      return Promise.reject(new NetworkError("not connected to the server"));
    }
    if (this.pending.has(messageId))
      return Promise.reject(new Error(`message ${messageId} is already in flight`));
    return new Promise<UploadStatus>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(messageId);
        reject(new NetworkError("the server did not answer the upload in time"));
      }, this.options.answerTimeoutMs ?? 30_000);
      this.pending.set(messageId, { resolve, reject, timer });
      this.ws.send(frame).catch((error: unknown) => {
        const reason = error instanceof Error ? error.message : String(error);
        this.settleUpload(messageId, new NetworkError(`sending failed: ${reason}`));
      });
    });
  }

  /** Queues an acknowledgement; acks go out in batches of at most MAX_ACK_IDS after a short delay. */
  ack(messageId: string): void {
    const group = this.groupOf.get(messageId);
    this.groupOf.delete(messageId);
    this.acks.set(messageId, group ?? "");
    if (this.acks.size >= MAX_ACK_IDS) this.flushAcks();
    else this.ackTimer ??= setTimeout(() => this.flushAcks(), this.options.ackDelayMs ?? 50);
  }

  /** Sends every queued ack now (in frames of at most MAX_ACK_IDS ids). */
  flushAcks(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    if (this.acks.size === 0 || !this.ws.isOpen) return;
    const bySource = new Map<string, string[]>();
    for (const [id, group] of this.acks) {
      const ids = bySource.get(group) ?? [];
      ids.push(id);
      bySource.set(group, ids);
    }
    this.acks.clear();
    for (const [group, ids] of bySource) {
      for (let i = 0; i < ids.length; i += MAX_ACK_IDS) {
        const frame = { type: "ack", ids: ids.slice(i, i + MAX_ACK_IDS), ...(group ? { group } : {}) };
        // A frame that cannot be written is lost with the socket: the server redelivers what was not acked.
        this.ws.send(JSON.stringify(frame)).catch(() => undefined);
      }
    }
  }

  /** Flushes acks, then closes cleanly (1000); waits for the server's close frame, briefly. */
  async close(): Promise<void> {
    if (this.ended) return;
    this.flushAcks();
    this.closedByUs = true;
    this.end(new NetworkError("the connection was closed"));
    if (this.ws.isClosed) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, 3000);
    });
    this.ws.close(1000, "bye");
    await Promise.race([this.socketEnded, timedOut]);
    clearTimeout(timer);
  }

  // ---- internals --------------------------------------------------------------------------------

  private onWelcome: () => void = () => undefined;
  private onEarlyFailure: (error: CliError) => void = () => undefined;

  private onMessage(data: Uint8Array | string): void {
    this.lastHeard = Date.now();
    if (typeof data !== "string") {
      const frame = data;
      if (frame[0] !== BinaryFrame.delivery)
        return this.protocolFailure(`unexpected binary frame 0x${frame[0]?.toString(16)}`);
      if (!this.welcomeFrame) return this.protocolFailure("a delivery arrived before the welcome");
      const route = deliveryAckRoute(frame);
      if (route?.group) this.groupOf.set(route.id, route.group);
      this.options.onDelivery?.(frame);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      return this.protocolFailure("a text frame is not JSON");
    }
    const parsed = ServerFrame.safeParse(json);
    if (!parsed.success)
      return this.protocolFailure(`unknown server frame: ${parsed.error.issues[0]?.message}`);
    const frame = parsed.data;
    switch (frame.type) {
      case "welcome":
        if (!this.welcomeFrame) this.sessionCount = frame.sessions;
        this.welcomeFrame ??= frame;
        this.onWelcome();
        return;
      case "sessions":
        this.sessionCount = frame.count;
        return;
      case "synced":
        this.resolveSynced();
        return;
      case "sent": {
        const upload = this.pending.get(frame.id);
        if (!upload) return; // answer to an upload that already timed out
        this.pending.delete(frame.id);
        clearTimeout(upload.timer);
        upload.resolve(frame.status);
        return;
      }
      case "error": {
        const error = frameError(frame);
        if (!this.welcomeFrame) return this.onEarlyFailure(error);
        if (frame.id && this.pending.has(frame.id)) return this.settleUpload(frame.id, error);
        this.options.onServerError?.(error);
        return;
      }
      case "event":
        if (this.options.onEvent) this.options.onEvent(frame);
        else this.ack(frame.id);
        return;
      case "pong":
        return;
    }
  }

  private settleUpload(messageId: string, error: CliError): void {
    const upload = this.pending.get(messageId);
    if (!upload) return;
    this.pending.delete(messageId);
    clearTimeout(upload.timer);
    upload.reject(error);
  }

  private protocolFailure(why: string): void {
    const error = new NetworkError(`protocol failure: ${why}`);
    if (!this.welcomeFrame) return this.onEarlyFailure(error);
    this.ws.close(1002, "protocol error");
    this.onSocketClosed(error);
  }

  private startKeepalive(): void {
    const interval = this.options.pingIntervalMs ?? 25_000;
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastHeard > 2 * interval) {
        this.ws.terminate();
        this.onSocketClosed(new NetworkError("the connection to the server timed out"));
        return;
      }
      if (this.ws.isOpen) this.ws.send(PING_TEXT).catch(() => undefined);
    }, interval);
    // Keep-alive alone must never keep the process running.
    this.options.net.clock.detach(this.pingTimer);
  }

  private onSocketClosed(error: CliError): void {
    if (this.ended) return;
    this.end(error);
    if (!this.closedByUs) this.options.onClose?.(error);
  }

  /** Stops timers and fails whatever still waits on this connection. */
  private end(error: CliError): void {
    if (this.ended) return;
    this.ended = true;
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    for (const id of [...this.pending.keys()]) {
      this.settleUpload(
        id,
        new NetworkError(`the connection ended before the server answered: ${error.message}`),
      );
    }
    this.rejectSynced(error);
  }
}

/** The typed error for a server error frame (protocol/frames.ts ErrorCode). */
export function frameError(frame: ErrorFrame): CliError {
  switch (frame.code) {
    case "unknown_user":
      return new NotFoundError(frame.message || "no such user");
    case "unknown_group":
      return new NotFoundError(frame.message || "no such group");
    case "rate_limited":
      return new RateLimitedError(`rate limited by the server: ${frame.message}`);
    case "stale_epoch":
      return new StaleEpochError(`refused by the server: ${frame.message}`);
    case "too_large":
    case "forbidden":
      return new RefusedError(`refused by the server: ${frame.message}`);
    case "quota_exceeded":
      // Nothing was stored: the recipient's queue (or this sender's share of it) is full for now.
      return new RefusedError(`not sent: ${frame.message}`);
    case "bad_frame":
      return new NetworkError(`protocol failure: the server rejected a frame: ${frame.message}`);
    case "internal":
      return new NetworkError(`server error: ${frame.message}`);
  }
}
