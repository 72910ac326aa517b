// A receiving connection that stays up: when the socket drops (network, server restart, deploy) it
// reconnects by itself, for as long as its owner wants, trying again often enough that a server back
// from a restart is found within about a second (a capped back-off with jitter, so many clients dropped
// together do not knock all at once); its owner may ask to try at once (a key pressed). Used by `chat` and
// `listen`. Nothing is lost across a drop: the server keeps every unacknowledged message queued and
// delivers it again on the next connection, and the receiver's seen set drops what it already showed.

import type { EventFrame } from "../../protocol/frames.js";
import { Connection } from "./connection.js";
import { type CliError, NetworkError } from "../errors.js";
import type { LoggedIn } from "../session.js";

/**
 * Reconnection back-off: the first retry comes soon, each next one waits half as long again, up to a cap
 * low enough that a server back from a restart is found within about a second. A refused connection on
 * loopback or a LAN costs almost nothing, so a short cap is cheap; the jitter spreads many clients.
 */
export const RECONNECT_MIN_MS = 250;
export const RECONNECT_MAX_MS = 1000;
/** Each wait is drawn from [JITTER_LOW × back-off, back-off]. */
const JITTER_LOW = 0.5;
/** A connection that died sooner than this after opening was not healthy: the back-off keeps growing. */
const STABLE_CONNECTION_MS = 10_000;

/** The wait before retry number `attempt` (0 first), jittered with `random` in [0, 1). */
export function reconnectDelay(attempt: number, random: number = Math.random()): number {
  const backoff = Math.min(RECONNECT_MIN_MS * 1.5 ** attempt, RECONNECT_MAX_MS);
  return Math.round(backoff * (JITTER_LOW + (1 - JITTER_LOW) * random));
}

export interface LiveConnectionOptions {
  me: LoggedIn;
  onDelivery: (frame: Uint8Array) => void;
  onEvent: (event: EventFrame) => void;
  onServerError: (error: CliError) => void;
  /**
   * Not connected (dropped, or never connected for an owner that started offline); told again before
   * each further attempt: `retryInMs` until the next one.
   */
  onLost: (cause: CliError, retryInMs: number) => void;
  /** Connected again after a drop. */
  onReconnected: () => void;
  /** Reconnecting cannot help (the session ended: 4401, revoked, expired): the owner should stop. */
  onFatal: (error: unknown) => void;
  /**
   * A first connection that fails on the network is retried like a dropped one rather than thrown: the
   * owner works offline meanwhile (chat shows the history and queues what is typed).
   */
  startOffline?: boolean;
}

export class LiveConnection {
  private connection: Connection | null = null;
  /** Resolves with the connection once it is back after a drop. */
  private reconnected: Promise<Connection> | null = null;
  private resolveReconnected: (connection: Connection) => void = () => undefined;
  private rejectReconnected: (error: NetworkError) => void = () => undefined;
  /** Retries so far in this outage, plus those of connections that died young. */
  private attempt = 0;
  private stopped = false;
  /** Ends the current wait early: the next attempt starts at once. */
  private wake: (() => void) | null = null;

  private constructor(private readonly options: LiveConnectionOptions) {}

  /** Connects for the first time; a failure here is the caller's to report (nothing to resume yet). */
  static async open(options: LiveConnectionOptions): Promise<LiveConnection> {
    const live = new LiveConnection(options);
    try {
      live.connection = await live.connect();
    } catch (error) {
      if (!options.startOffline || !(error instanceof NetworkError)) throw error;
      void live.reconnect(error);
    }
    return live;
  }

  /** Skips the rest of the current wait and tries to connect now; nothing while connected. */
  retryNow(): void {
    this.wake?.();
  }

  /** The open connection, or null while reconnecting. */
  get current(): Connection | null {
    return this.connection;
  }

  /** Acknowledges on the current connection; while disconnected the id is redelivered and acked then. */
  ack(messageId: string): void {
    this.connection?.ack(messageId);
  }

  /** The open connection, waiting for a reconnection in progress; rejects once close() is called. */
  async whenConnected(): Promise<Connection> {
    if (this.connection) return this.connection;
    if (this.stopped || !this.reconnected) throw new NetworkError("not connected to the server");
    return this.reconnected;
  }

  /** Stops reconnecting and closes the connection (flushing its acks); pending waiters are rejected. */
  async close(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.rejectReconnected(new NetworkError("the connection was closed"));
    await this.connection?.close();
    this.connection = null;
  }

  private async connect(): Promise<Connection> {
    const openedAt = Date.now();
    const { me } = this.options;
    return Connection.open({
      net: me.api.net,
      server: me.server,
      token: me.session.token,
      receive: true,
      onDelivery: this.options.onDelivery,
      onEvent: this.options.onEvent,
      onServerError: this.options.onServerError,
      onClose: (error) => {
        // A connection that keeps dying right after opening starts its next outage further up the back-off.
        if (Date.now() - openedAt >= STABLE_CONNECTION_MS) this.attempt = 0;
        void this.reconnect(error);
      },
    });
  }

  /** Retries with back-off until connected, the session is dead, or close() was called. */
  private async reconnect(cause: CliError): Promise<void> {
    this.connection = null;
    if (this.stopped) return;
    // The session ended (4401): no reconnection will be accepted.
    if (!(cause instanceof NetworkError)) return this.options.onFatal(cause);
    this.reconnected = new Promise((resolve, reject) => {
      this.resolveReconnected = resolve;
      this.rejectReconnected = reject;
    });
    // Nobody may be waiting; a rejection at close must not go unhandled.
    this.reconnected.catch(() => undefined);
    let lastCause = cause;
    while (!this.stopped) {
      const wait = reconnectDelay(this.attempt++);
      this.options.onLost(lastCause, wait);
      await new Promise<void>((done) => {
        const timer = setTimeout(done, wait);
        this.wake = () => {
          clearTimeout(timer);
          done();
        };
      });
      this.wake = null;
      if (this.stopped) return;
      try {
        const connection = await this.connect();
        if (this.stopped) {
          await connection.close();
          return;
        }
        this.connection = connection;
        this.options.onReconnected();
        this.resolveReconnected(connection);
        return;
      } catch (error) {
        // Only a network failure is worth retrying: a dead session or a refusal will not heal by itself.
        if (!(error instanceof NetworkError)) return this.options.onFatal(error);
        lastCause = error;
      }
    }
  }
}
