// Session tokens: "<username>.<sessionId>.<secret>". The username routes the check to the user's home;
// the home stores only SHA-256 of the secret, so its persisted state cannot be replayed as a token.

import { SESSION_LIFETIME_MS, USERNAME_PATTERN } from "../protocol/limits.js";
import { toHex } from "../protocol/bytes.js";

export interface IssuedSession {
  token: string;
  id: string;
  secretHash: string;
  expiresAt: number;
}

export interface ParsedToken {
  username: string;
  sessionId: string;
  secret: string;
}

export async function issueSession(username: string, now = Date.now()): Promise<IssuedSession> {
  const id = toHex(crypto.getRandomValues(new Uint8Array(16)));
  const secret = toHex(crypto.getRandomValues(new Uint8Array(32)));
  return {
    token: `${username}.${id}.${secret}`,
    id,
    secretHash: await sha256Hex(secret),
    expiresAt: now + SESSION_LIFETIME_MS,
  };
}

export function parseToken(token: string): ParsedToken | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  const [username, sessionId, secret] = parts as [string, string, string];
  if (
    !USERNAME_PATTERN.test(username) ||
    !/^[0-9a-f]{32}$/.test(sessionId) ||
    !/^[0-9a-f]{64}$/.test(secret)
  ) {
    return null;
  }
  return { username, sessionId, secret };
}

export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}
