// Cloudflare's documented per-object limits and list prices, each with the page it was taken from, so
// that the model's verdicts and dollars can be checked against the source (docs/SCALING.md cites them).

/** Per-object limits. Requests/s is a soft limit; the others are hard. */
export const LIMITS = {
  // "Durable Object is overloaded" (platform/troubleshooting): about 1,000 requests/s per object.
  requestsPerSecond: 1_000,
  // Hibernatable WebSockets one object may hold (Durable Objects limits page).
  webSockets: 32_768,
  // Memory of one isolate (Workers limits, which Durable Objects inherit).
  memoryBytes: 128 * 1024 * 1024,
  // Storage per Durable Object (SQLite backend), platform/limits.
  storageBytes: 10 * 1000 ** 3,
  // Simultaneous outgoing connections per request, platform/limits ("same as Workers").
  outgoingConnections: 6,
  // The largest message one call or WebSocket frame may carry, platform/limits ("32 MiB").
  rpcBytes: 32 * 1024 * 1024,
  // One object runs on one thread: a second of CPU per second is the whole of it.
  cpuMicrosPerSecond: 1_000_000,
} as const;

export type LimitName = keyof typeof LIMITS;

/** Marginal list prices in dollars (included monthly allowances left out: they vanish at scale). */
export const PRICES = {
  // Workers Standard (paid): $0.30 per million requests, $0.02 per million CPU ms.
  workerRequest: 0.3 / 1e6,
  workerCpuMs: 0.02 / 1e6,
  // Durable Objects: $0.15 per million requests; every RPC method call is one; incoming WebSocket
  // messages bill 20:1.
  objectRequest: 0.15 / 1e6,
  webSocketMessagesPerBilledRequest: 20,
  // $12.50 per million GB-s of duration, at 128 MB per active object; hibernated sockets bill none.
  gbSecond: 12.5 / 1e6,
  billedObjectGb: 0.128,
  // SQLite storage: $0.001 per million rows read, $1.00 per million rows written, $0.20 per GB-month.
  rowRead: 0.001 / 1e6,
  rowWritten: 1.0 / 1e6,
  storageGbMonth: 0.2,
} as const;

/**
 * A managed realtime service's published price, for comparison: Ably's overage rate, $2.50 per million
 * messages, where one publish to N subscribers counts 1 + N messages, and $20 per 1,000 peak connections.
 */
export const ABLY = {
  perMessage: 2.5 / 1e6,
  perPeakConnectionMonth: 20 / 1000,
} as const;
