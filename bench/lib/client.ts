// The benchmark's programmatic WebSocket client for /v1/connect, spoken identically to Telepound and to
// the bare relay: binary uploads (0x01) out, deliveries (0x02) in, JSON frames both ways, batched acks.
//
// It does no crypto itself (scenarios seal and open); it timestamps every delivery on arrival, acks in
// frames of at most MAX_ACK_IDS ids, and turns any "error" frame or unexpected close into a loud failure
// of the running scenario through a FailureWatch, never a silent drop.

import WebSocket from "ws";
import { deliveryAckRoute } from "../../protocol/envelope.js";
import { MAX_ACK_IDS, MAX_FRAME_BYTES } from "../../protocol/limits.js";

/** Collects the first failure of a scenario; every wait in the scenario races against it. */
export class FailureWatch {
  readonly failed: Promise<never>;
  private rejectFailed!: (error: Error) => void;
  error: Error | null = null;

  constructor(readonly label: string) {
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => undefined);
  }

  fail(error: Error): void {
    if (this.error) return;
    this.error = new Error(`${this.label}: ${error.message}`);
    this.rejectFailed(this.error);
  }

  /** Resolves with `work`, or rejects with the first failure, or after `timeoutMs` with `what` named. */
  race<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.label}: timed out after ${timeoutMs} ms: ${what}`)),
        timeoutMs,
      );
    });
    return Promise.race([work, this.failed, timeout]).finally(() => clearTimeout(timer));
  }
}

export type DeliveryHandler = (frame: Buffer, id: string, arrivedAt: number) => void;
export type SentStatus = "delivered" | "stored";

export interface ClientOptions {
  /** The server's HTTP origin, e.g. http://127.0.0.1:8787; the socket goes to /v1/connect on it. */
  origin: string;
  token: string;
  /** false: a send-only socket (`?receive=0`). */
  receive?: boolean;
  watch: FailureWatch;
  /** Called for every delivery frame; settable later through the `onDelivery` property. */
  onDelivery?: DeliveryHandler;
  /** Ack every delivery on arrival (default true). */
  autoAck?: boolean;
}

interface JsonFrame {
  type: string;
  id?: string;
  status?: SentStatus;
  code?: string;
  message?: string;
  shard?: string;
  group?: string;
}

export class BenchClient {
  onDelivery: DeliveryHandler | undefined;
  /** Group names of membership events received (events are acked automatically). */
  readonly events: string[] = [];
  shard = "";
  deliveries = 0;
  ackFrames = 0;
  readonly synced: Promise<void>;
  private resolveSynced!: () => void;
  private readonly pending = new Map<string, (status: SentStatus) => void>();
  /** Ids to acknowledge, by the group whose room queued them ("" for the user's home). */
  private readonly acks = new Map<string, string[]>();
  private ackCount = 0;
  private ackScheduled = false;
  private closing = false;

  private constructor(
    readonly ws: WebSocket,
    private readonly options: ClientOptions,
  ) {
    this.onDelivery = options.onDelivery;
    this.synced = new Promise((resolve) => (this.resolveSynced = resolve));
  }

  /** Opens the socket; resolves at "welcome" (wait on `synced` for the backlog to have drained). */
  static open(options: ClientOptions): Promise<BenchClient> {
    const url = `${options.origin.replace(/^http/, "ws")}/v1/connect${options.receive === false ? "?receive=0" : ""}`;
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${options.token}` },
      perMessageDeflate: false,
      maxPayload: MAX_FRAME_BYTES,
      handshakeTimeout: 60_000,
    });
    ws.binaryType = "nodebuffer";
    const client = new BenchClient(ws, options);
    if (options.receive === false) client.resolveSynced();
    return new Promise((resolve, reject) => {
      let welcomed = false;
      ws.on("message", (data: Buffer, isBinary: boolean) => {
        if (isBinary) return client.onBinary(data);
        const frame = JSON.parse(data.toString("utf8")) as JsonFrame;
        if (frame.type === "welcome" && !welcomed) {
          welcomed = true;
          client.shard = frame.shard ?? "";
          resolve(client);
        }
        client.onJson(frame);
      });
      ws.on("unexpected-response", (_request, response) => {
        const error = new Error(`connect refused: HTTP ${response.statusCode}`);
        options.watch.fail(error);
        reject(error);
      });
      ws.on("error", (error) => {
        options.watch.fail(error);
        if (!welcomed) reject(error);
      });
      ws.on("close", (code, reason) => {
        if (client.closing) return;
        const error = new Error(`socket closed by the server: ${code} ${reason.toString()}`);
        options.watch.fail(error);
        if (!welcomed) reject(error);
      });
    });
  }

  /** Sends an upload frame; resolves with the server's "sent" status for its message id. */
  upload(frame: Uint8Array, id: string): Promise<SentStatus> {
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(frame);
    });
  }

  /** Sends a frame without waiting for its answer (a "sent" for an unknown id is ignored). */
  send(frame: Uint8Array): void {
    this.ws.send(frame);
  }

  get inFlight(): number {
    return this.pending.size;
  }

  ack(id: string, group = ""): void {
    const ids = this.acks.get(group) ?? [];
    ids.push(id);
    this.acks.set(group, ids);
    if (++this.ackCount >= MAX_ACK_IDS) this.flushAcks();
    else if (!this.ackScheduled) {
      // Deliveries arrive in bursts (one TCP read, many frames): ack the burst once it has been read.
      this.ackScheduled = true;
      setImmediate(() => this.flushAcks());
    }
  }

  close(): Promise<void> {
    this.closing = true;
    this.flushAcks();
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, 5000);
      this.ws.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      this.ws.close(1000, "bench done");
    });
  }

  private flushAcks(): void {
    this.ackScheduled = false;
    if (this.ackCount === 0 || this.ws.readyState !== WebSocket.OPEN) return;
    for (const [group, ids] of this.acks) {
      for (let i = 0; i < ids.length; i += MAX_ACK_IDS) {
        const frame = { type: "ack", ids: ids.slice(i, i + MAX_ACK_IDS), ...(group ? { group } : {}) };
        this.ws.send(JSON.stringify(frame));
        this.ackFrames++;
      }
    }
    this.acks.clear();
    this.ackCount = 0;
  }

  private onBinary(frame: Buffer): void {
    const arrivedAt = performance.now();
    if (frame[0] !== 0x02) {
      this.options.watch.fail(new Error(`unexpected binary frame 0x${frame[0]?.toString(16)}`));
      return;
    }
    this.deliveries++;
    // Delivery layout: tag, version, kind, then the 16-byte message id (protocol/envelope.ts).
    const id = frame.toString("hex", 3, 19);
    // Group messages are acknowledged to their group's room, named in the delivery's header.
    if (this.options.autoAck !== false) this.ack(id, deliveryAckRoute(frame)?.group ?? "");
    this.onDelivery?.(frame, id, arrivedAt);
  }

  private onJson(frame: JsonFrame): void {
    switch (frame.type) {
      case "sent": {
        const resolve = frame.id ? this.pending.get(frame.id) : undefined;
        if (resolve) {
          this.pending.delete(frame.id!);
          resolve(frame.status!);
        }
        return;
      }
      case "synced":
        return this.resolveSynced();
      case "event":
        this.events.push(frame.group ?? "");
        if (frame.id) this.ack(frame.id);
        return;
      case "error":
        this.options.watch.fail(
          new Error(
            `server error frame: ${frame.code}: ${frame.message}${frame.id ? ` (message ${frame.id})` : ""}`,
          ),
        );
        return;
      default:
        return;
    }
  }
}
