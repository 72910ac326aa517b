// The network in a browser (client/platform.ts Network): fetch for requests, uploads and downloads,
// the browser's WebSocket for the connection. A browser's socket cannot send an Authorization header,
// so the session token goes as the subprotocol "telepound.bearer.<token>" beside "telepound", which the
// server selects (docs/PROTOCOL.md §4.1). Nor does a browser show the HTTP answer to a refused
// handshake: when a socket fails before it opens, the same URL is asked once more with a plain fetch
// and the token as a header, whose status says why (401, 429), or that the refusal was the network's
// (400: a good token).

import type {
  HeaderLookup,
  HttpAnswer,
  Network,
  PlatformSocket,
  RequestFailure,
  SocketHandlers,
  SocketOptions,
  StreamedAnswer,
} from "../../client/platform.js";

/** The most of an answer's body that is accepted (the largest JSON answer is a lookup of 1,024 users' keys). */
const ANSWER_BODY_BYTES = 16 * 1024 * 1024;
/** The most of a refused handshake's body that is kept (it is only read for its error message). */
const REFUSAL_BODY_CHARS = 64 * 1024;
/** send() waits while more than this is queued in the socket, so a fast sender does not fill memory. */
const SEND_BUFFER_BYTES = 4 * 1024 * 1024;
const SEND_DRAIN_POLL_MS = 10;
const SUBPROTOCOL = "telepound";
const BEARER_SUBPROTOCOL_PREFIX = "telepound.bearer.";

export const browserNetwork: Network = {
  async request(options): Promise<HttpAnswer> {
    let response: Response;
    try {
      response = await fetch(options.url, {
        method: options.method,
        headers: options.headers,
        ...(options.body === undefined ? {} : { body: options.body }),
        signal: AbortSignal.timeout(options.timeoutMs),
        credentials: "omit",
      });
      const text = await response.text();
      if (text.length > ANSWER_BODY_BYTES) throw failure("answer too large", "EANSWERTOOLARGE");
      return { status: response.status, headers: response.headers, text };
    } catch (error) {
      throw asRequestFailure(error);
    }
  },

  openSocket(url, options, handlers): PlatformSocket {
    return openBrowserSocket(url, options, handlers);
  },

  /**
   * The part is gathered in memory and PUT whole: streaming a fetch body needs HTTP/2, which a local
   * `wrangler dev` does not speak, and the core's parts are at most 8 MiB. It goes as a Blob: a typed
   * array body is copied into the renderer's own memory, which the page's collector does not see and
   * frees late (sending 100 MiB grew the renderer by 120 MiB that way, by 48 MiB as a Blob).
   */
  async putStreamed(upload): Promise<HttpAnswer> {
    const body = new Uint8Array(upload.length);
    let filled = 0;
    for await (const piece of upload.body) {
      if (filled + piece.length > upload.length)
        throw new Error("the upload's body is longer than announced");
      // Copied at once: the source may reuse its buffer for the next piece.
      body.set(piece, filled);
      filled += piece.length;
    }
    if (filled !== upload.length) throw new Error("the upload's body is shorter than announced");
    try {
      const response = await fetch(upload.url, {
        method: "PUT",
        headers: upload.headers,
        body: new Blob([body]),
        // The whole part goes in one request, so its idle time is the request's time.
        signal: AbortSignal.timeout(upload.idleTimeoutMs),
        credentials: "omit",
      });
      upload.onBodySent?.();
      return { status: response.status, headers: response.headers, text: await response.text() };
    } catch (error) {
      throw asRequestFailure(error);
    }
  },

  /** fetch's body is a stream the browser fills only as fast as it is read. */
  async getStreamed(download): Promise<StreamedAnswer> {
    let response: Response;
    try {
      response = await fetch(download.url, {
        method: "GET",
        headers: download.headers,
        signal: download.signal,
        credentials: "omit",
      });
    } catch (error) {
      throw asRequestFailure(error);
    }
    const reader = response.body?.getReader();
    async function* body(): AsyncGenerator<Uint8Array> {
      if (!reader) return;
      for (;;) {
        let next: ReadableStreamReadResult<Uint8Array>;
        try {
          next = await reader.read();
        } catch (error) {
          throw asRequestFailure(error);
        }
        if (next.done) return;
        yield next.value;
      }
    }
    return {
      status: response.status,
      headers: response.headers,
      body: body(),
      cancel: async () => {
        await reader?.cancel().catch(() => undefined);
      },
    };
  },
};

function openBrowserSocket(url: URL, options: SocketOptions, handlers: SocketHandlers): PlatformSocket {
  const token = bearerToken(options.headers);
  const ws = new WebSocket(
    url,
    token === null ? [SUBPROTOCOL] : [SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX + token],
  );
  ws.binaryType = "arraybuffer";
  let opened = false;
  let closeReported = false;
  /** Set while a failed handshake is being explained: the close is reported after the explanation. */
  let explaining: Promise<void> | null = null;

  const reportClose = (code: number, reason: string) => {
    if (closeReported) return;
    closeReported = true;
    clearTimeout(handshakeTimer);
    handlers.onClose(code, reason);
  };

  const handshakeTimer = setTimeout(() => {
    if (opened || closeReported) return;
    handlers.onError(Object.assign(new Error("the WebSocket handshake timed out"), { name: "TimeoutError" }));
    ws.close();
    reportClose(1006, "");
  }, options.handshakeTimeoutMs);

  ws.onopen = () => {
    opened = true;
    clearTimeout(handshakeTimer);
  };
  ws.onerror = () => {
    if (opened || closeReported || explaining) return;
    explaining = explainRefusal(url, options.headers, handlers);
  };
  ws.onclose = (event) => {
    if (explaining) void explaining.then(() => reportClose(event.code, event.reason));
    else reportClose(event.code, event.reason);
  };
  ws.onmessage = (event: MessageEvent<ArrayBuffer | string>) => {
    if (closeReported) return;
    const { data } = event;
    const size = typeof data === "string" ? data.length : data.byteLength;
    // The browser takes any size; the limit is ours, as `ws`'s maxPayload is on Node: a frame over it ends
    // the connection (1009, "message too big") without being read. (A text frame's length in UTF-16 units
    // is at most its size in UTF-8 bytes, so it is checked at most as strictly.)
    if (size > options.maxPayloadBytes) {
      ws.close(1000, "message too big");
      reportClose(1009, "message too big");
      return;
    }
    handlers.onMessage(typeof data === "string" ? data : new Uint8Array(data));
  };

  return {
    get isOpen() {
      return ws.readyState === WebSocket.OPEN && !closeReported;
    },
    get isClosed() {
      return ws.readyState === WebSocket.CLOSED || closeReported;
    },
    async send(data) {
      if (ws.readyState !== WebSocket.OPEN || closeReported) throw new Error("the socket is not open");
      ws.send(data as Uint8Array<ArrayBuffer> | string);
      while (ws.bufferedAmount > SEND_BUFFER_BYTES && ws.readyState === WebSocket.OPEN) {
        await new Promise((resolve) => setTimeout(resolve, SEND_DRAIN_POLL_MS));
      }
      if (ws.readyState !== WebSocket.OPEN) throw new Error("the socket closed while sending");
    },
    // A page may only close with 1000 or 3000–4999; other codes the core might give become 1000.
    close: (code, reason) => ws.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason),
    terminate() {
      ws.close();
      reportClose(1006, "");
    },
  };
}

/**
 * Why the handshake failed: the same URL fetched with the token as a header. 400 means the server took
 * the token and only refused a request that is no upgrade, so the socket's failure was the network's.
 */
async function explainRefusal(
  url: URL,
  headers: Record<string, string>,
  handlers: SocketHandlers,
): Promise<void> {
  const plain = new URL(url);
  plain.protocol = url.protocol === "wss:" ? "https:" : "http:";
  try {
    const response = await fetch(plain, { headers, credentials: "omit", cache: "no-store" });
    const body = (await response.text()).slice(0, REFUSAL_BODY_CHARS);
    if (response.status === 400 || response.ok) {
      handlers.onError(failure("the WebSocket connection failed", "ECONNRESET"));
    } else {
      handlers.onRefused(response.status, response.headers as HeaderLookup, body);
    }
  } catch (error) {
    handlers.onError(asRequestFailure(error));
  }
}

function bearerToken(headers: Record<string, string>): string | null {
  const value = Object.entries(headers).find(([name]) => name.toLowerCase() === "authorization")?.[1];
  const match = value?.match(/^Bearer (.+)$/);
  return match?.[1] ?? null;
}

/** fetch says only "TypeError: Failed to fetch" for every network failure; a timeout keeps its name. */
function asRequestFailure(error: unknown): RequestFailure {
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return Object.assign(new Error("timed out"), { name: "TimeoutError" });
  }
  if ((error as RequestFailure | null)?.code) return error as RequestFailure;
  if (error instanceof TypeError) return failure(error.message, "network error");
  return error instanceof Error ? error : failure(String(error), "network error");
}

function failure(message: string, code: string): RequestFailure {
  return Object.assign(new Error(message), { code });
}
