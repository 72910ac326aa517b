// The network on Node (client/platform.ts Network): WebSockets from `ws`, which can send the session
// token as a header and report an HTTP answer to the handshake; requests, streamed uploads and streamed
// downloads through node:http. Not fetch: Node's fetch is undici, which costs a one-shot command such
// as `send` about a third of its start-up to load, peaked some 15 MiB higher receiving a 100 MiB file,
// and cannot say when a piece of a streamed body has been written.

import { type IncomingMessage, request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import WebSocket from "ws";
import type {
  HeaderLookup,
  HttpAnswer,
  Network,
  PlatformSocket,
  StreamedAnswer,
} from "../../client/platform.js";

/** The most of a refused handshake's body that is kept (it is only read for its error message). */
const REFUSAL_BODY_BYTES = 64 * 1024;

/** The most of an answer's body that is read (the largest JSON answer is a lookup of 1,024 users' keys). */
const ANSWER_BODY_BYTES = 16 * 1024 * 1024;

export const nodeNetwork: Network = {
  request(options): Promise<HttpAnswer> {
    const { url } = options;
    return new Promise<HttpAnswer>((resolve, reject) => {
      const headers: Record<string, string> = { ...options.headers };
      const body = options.body === undefined ? undefined : Buffer.from(options.body, "utf8");
      if (body) headers["content-length"] = String(body.length);
      const request = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, {
        method: options.method,
        headers,
      });
      const timer = setTimeout(
        () => request.destroy(Object.assign(new Error("timed out"), { name: "TimeoutError" })),
        options.timeoutMs,
      );
      const fail = (error: Error): void => {
        clearTimeout(timer);
        reject(error);
      };
      request.on("error", fail);
      request.on("response", (response) => {
        const pieces: Buffer[] = [];
        let size = 0;
        response.on("data", (piece: Buffer) => {
          size += piece.length;
          if (size > ANSWER_BODY_BYTES) {
            request.destroy(Object.assign(new Error("answer too large"), { code: "EANSWERTOOLARGE" }));
            return;
          }
          pieces.push(piece);
        });
        response.on("error", fail);
        response.on("end", () => {
          clearTimeout(timer);
          resolve({
            status: response.statusCode ?? 0,
            headers: headersOf(response),
            text: Buffer.concat(pieces).toString("utf8"),
          });
        });
      });
      request.end(body);
    });
  },

  openSocket(url, options, handlers): PlatformSocket {
    const ws = new WebSocket(url, {
      headers: options.headers,
      maxPayload: options.maxPayloadBytes,
      handshakeTimeout: options.handshakeTimeoutMs,
      // Every frame is ciphertext, which does not compress: negotiating permessage-deflate would only
      // load zlib and spend CPU on both ends (a browser's socket offers it, and gains nothing either).
      perMessageDeflate: false,
    });
    ws.binaryType = "nodebuffer";
    ws.on("unexpected-response", (request, response) => {
      readBody(response).then(
        (text) => {
          request.destroy();
          handlers.onRefused(response.statusCode ?? 0, headersOf(response), text);
        },
        (error: unknown) => handlers.onError(error),
      );
    });
    ws.on("error", (error) => handlers.onError(error));
    ws.on("message", (data, isBinary) => {
      const buffer = data as Buffer;
      // A copy: the frame is read asynchronously after this handler returns.
      handlers.onMessage(isBinary ? new Uint8Array(buffer) : buffer.toString("utf8"));
    });
    ws.on("close", (code, reason) => handlers.onClose(code, reason.toString()));
    return {
      get isOpen() {
        return ws.readyState === WebSocket.OPEN;
      },
      get isClosed() {
        return ws.readyState === WebSocket.CLOSED;
      },
      send(data) {
        return new Promise((resolve, reject) =>
          ws.send(data, { binary: typeof data !== "string" }, (error) => (error ? reject(error) : resolve())),
        );
      },
      close: (code, reason) => ws.close(code, reason),
      terminate: () => ws.terminate(),
    };
  },

  async putStreamed(upload): Promise<HttpAnswer> {
    const { url } = upload;
    const request = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, {
      method: "PUT",
      headers: { ...upload.headers, "content-length": String(upload.length) },
    });
    // Idle, not total: a slow link may take long over a large body, but not long without progress.
    request.setTimeout(upload.idleTimeoutMs, () => request.destroy(new Error("timed out")));
    const answered = new Promise<HttpAnswer>((resolve, reject) => {
      request.on("error", reject);
      request.on("response", (response) => {
        const pieces: Buffer[] = [];
        response.on("data", (piece: Buffer) => pieces.push(piece));
        response.on("error", reject);
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: headersOf(response),
            text: Buffer.concat(pieces).toString("utf8"),
          }),
        );
      });
    });
    // The server may answer (a refusal) before the body is complete; its answer is what counts then.
    answered.catch(() => undefined);
    const iterator = upload.body[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await iterator.next();
      } catch (error) {
        request.destroy();
        throw error;
      }
      if (next.done) break;
      const piece = next.value;
      const written = await new Promise<boolean>((resolve) =>
        request.write(piece, (error) => resolve(!error)),
      );
      if (!written) {
        await iterator.return?.();
        // The socket failed: either the server refused (its answer says why) or it is gone.
        return answered;
      }
    }
    request.end();
    upload.onBodySent?.();
    return answered;
  },

  getStreamed(download): Promise<StreamedAnswer> {
    const { url } = download;
    return new Promise<StreamedAnswer>((resolve, reject) => {
      const request = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, {
        method: "GET",
        headers: download.headers,
        signal: download.signal,
      });
      request.on("error", reject);
      request.on("response", (response) => {
        // A readable stream's iterator reads only as fast as it is consumed: the socket is paused while
        // the caller decrypts and writes, so no more than the stream's buffer is ever held.
        const body = (async function* (): AsyncGenerator<Uint8Array> {
          for await (const piece of response) yield piece as Buffer;
        })();
        resolve({
          status: response.statusCode ?? 0,
          headers: headersOf(response),
          body,
          cancel: async () => {
            response.destroy();
            request.destroy();
          },
        });
      });
      request.end();
    });
  },
};

function readBody(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= REFUSAL_BODY_BYTES) chunks.push(chunk);
    });
    response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    response.on("error", reject);
  });
}

function headersOf(response: IncomingMessage): HeaderLookup {
  return {
    get(name) {
      const value = response.headers[name.toLowerCase()];
      return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
    },
  };
}
