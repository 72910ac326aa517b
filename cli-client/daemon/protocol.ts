// JSON-RPC 2.0 as the daemon speaks it: one JSON object per line, in both directions. This module reads a
// line into a request (or the error that answers it) and writes responses and notifications; it knows
// nothing of sockets or of Telepound's methods (daemon/methods.ts). Lines are written as `--json` writes
// them (output.ts jsonLine): a script that prints a field cannot be made to print a terminal escape.

import { jsonLine } from "../output.js";

/** The standard codes (https://www.jsonrpc.org/specification#error_object), and ours for a failed call. */
export const RpcErrorCode = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  /** The call was valid but the command failed: `data` carries the CLI's exit code and message. */
  application: -32000,
} as const;

/** A line longer than this (without its newline) is refused unread; the connection carries on. */
export const MAX_LINE_BYTES = 1024 * 1024;

export type RpcId = string | number | null;

export interface RpcRequest {
  /** Absent for a notification: nothing is answered, not even an error. */
  id?: RpcId;
  method: string;
  /** By name only: an object (absent is `{}`). */
  params: Record<string, unknown>;
}

export interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}

/** The failure of a call, as the daemon throws it internally and answers it on the wire. */
export class RpcFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }

  toError(): RpcError {
    return {
      code: this.code,
      message: this.message,
      ...(this.data === undefined ? {} : { data: this.data }),
    };
  }
}

/** A line as received: a request, or the error to answer (with the id, when the line had a usable one). */
export type ParsedLine = { request: RpcRequest } | { error: RpcError; id: RpcId };

const REQUEST_KEYS = new Set(["jsonrpc", "id", "method", "params"]);

export function parseLine(line: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return {
      error: { code: RpcErrorCode.parseError, message: "parse error: the line is not JSON" },
      id: null,
    };
  }
  const invalid = (message: string, id: RpcId = null): ParsedLine => ({
    error: { code: RpcErrorCode.invalidRequest, message: `invalid request: ${message}` },
    id,
  });
  if (Array.isArray(value)) return invalid("batches are not supported: send one request per line");
  if (typeof value !== "object" || value === null) return invalid("a request is a JSON object");
  const object = value as Record<string, unknown>;
  const rawId = object.id;
  const idOk = rawId === undefined || rawId === null || typeof rawId === "string" || Number.isFinite(rawId);
  if (!idOk) return invalid('"id" must be a string, a number or null');
  const id = (rawId ?? null) as RpcId;
  if (object.jsonrpc !== "2.0") return invalid('"jsonrpc" must be "2.0"', id);
  if (typeof object.method !== "string" || object.method === "") {
    return invalid('"method" must be a non-empty string', id);
  }
  const extra = Object.keys(object).find((key) => !REQUEST_KEYS.has(key));
  if (extra !== undefined) return invalid(`unknown member "${extra}"`, id);
  const params = object.params ?? {};
  if (typeof params !== "object" || params === null || Array.isArray(params)) {
    return {
      error: { code: RpcErrorCode.invalidParams, message: "invalid params: params are an object, by name" },
      id,
    };
  }
  return {
    request: {
      ...(rawId === undefined ? {} : { id }),
      method: object.method,
      params: params as Record<string, unknown>,
    },
  };
}

export function resultLine(id: RpcId, result: unknown): string {
  return jsonLine({ jsonrpc: "2.0", id, result: result ?? null });
}

export function errorLine(id: RpcId, error: RpcError): string {
  return jsonLine({ jsonrpc: "2.0", id, error });
}

export function notificationLine(method: string, params: unknown): string {
  return jsonLine({ jsonrpc: "2.0", method, params });
}

/**
 * Splits a byte stream into lines of at most `limit` bytes. A longer line is reported once (`onTooLong`)
 * and skipped up to its newline, so the lines after it are read as usual; memory stays within `limit`.
 */
export class LineReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private skipping = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onTooLong: () => void,
    private readonly limit: number = MAX_LINE_BYTES,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(0x0a, start);
      const end = newline === -1 ? chunk.length : newline;
      if (!this.skipping) {
        if (this.pendingBytes + (end - start) > this.limit) {
          this.pending = [];
          this.pendingBytes = 0;
          this.skipping = true;
          this.onTooLong();
        } else {
          this.pending.push(chunk.subarray(start, end));
          this.pendingBytes += end - start;
        }
      }
      if (newline === -1) return;
      if (!this.skipping) this.emit();
      this.skipping = false;
      start = newline + 1;
    }
  }

  /** The end of the stream: a last line without its newline still counts. */
  end(): void {
    if (!this.skipping && this.pendingBytes > 0) this.emit();
  }

  private emit(): void {
    const line = Buffer.concat(this.pending).toString("utf8").replace(/\r$/, "");
    this.pending = [];
    this.pendingBytes = 0;
    if (line.trim() !== "") this.onLine(line);
  }
}
