// A receiving connection that stays up: when the socket drops (network, server restart, deploy) it
// reconnects by itself with doubling back-off, for as long as its owner wants. Used by `chat` and
// `listen`. Nothing is lost across a drop: the server keeps every unacknowledged message queued and
// delivers it again on the next connection, and the receiver's seen set drops what it already showed.

import type { EventFrame } from "../../protocol/frames.js";
import { Connection } from "./connection.js";
import { type CliError, NetworkError } from "../errors.js";
import type { LoggedIn } from "../session.js";

/** Reconnection back-off after the connection drops: doubling, capped. */
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30_000;
/** A connection that lasted this long was healthy: the next drop starts the back-off afresh. */
const STABLE_CONNECTION_MS = 10_000;

export interface LiveConnectionOptions {
  me: LoggedIn;
  onDelivery: (frame: Uint8Array) => void;
  onEvent: (event: EventFrame) => void;
  onServerError: (error: CliError) => void;
  /** The connection dropped; `retryInMs` until the first attempt to reconnect. */
  onLost: (cause: CliError, retryInMs: number) => void;
  /** Connected again after a drop. */
  onReconnected: () => void;
  /** Reconnecting cannot help (the session ended: 4401, revoked, expired): the owner should stop. */
  onFatal: (error: unknown) => void;
}

export class LiveConnection {
  private connection: Connection | null = null;
  /** Resolves with the connection once it is back after a drop. */
  private reconnected: Promise<Connection> | null = null;
  private resolveReconnected: (connection: Connection) => void = () => undefined;
  private rejectReconnected: (error: NetworkError) => void = () => undefined;
  private backoffMs = RECONNECT_MIN_MS;
  private stopped = false;

  private constructor(private readonly options: LiveConnectionOptions) {}

  /** Connects for the first time; a failure here is the caller's to report (nothing to resume yet). */
  static async open(options: LiveConnectionOptions): Promise<LiveConnection> {
    const live = new LiveConnection(options);
    live.connection = await live.connect();
    return live;
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
        // A connection that keeps dying right after opening must not be retried every second forever.
        this.backoffMs =
          Date.now() - openedAt < STABLE_CONNECTION_MS
            ? Math.min(this.backoffMs * 2, RECONNECT_MAX_MS)
            : RECONNECT_MIN_MS;
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
    let wait = this.backoffMs;
    this.options.onLost(cause, wait);
    while (!this.stopped) {
      await new Promise((done) => setTimeout(done, wait));
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
        wait = Math.min(wait * 2, RECONNECT_MAX_MS);
      }
    }
  }
}
