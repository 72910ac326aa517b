// Errors as values with a status: handlers throw ApiError, one onError turns it into the JSON body
// every client sees ({ "error": { "code", "message" } }, and for some codes more fields beside them).

import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ErrorResponse, HttpErrorCode } from "../protocol/http.js";

const STATUS: Record<HttpErrorCode, ContentfulStatusCode> = {
  bad_request: 400,
  unauthorized: 401,
  session_ended: 401,
  forbidden: 403,
  consent_required: 403,
  not_found: 404,
  conflict: 409,
  gone: 410,
  too_large: 413,
  quota_exceeded: 413,
  rate_limited: 429,
  internal: 500,
};

/** What an error body may carry beside its code and message (consent_required names its users). */
export type ErrorFields = Omit<ErrorResponse["error"], "code" | "message">;

export class ApiError extends HTTPException {
  constructor(
    readonly code: HttpErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly fields: ErrorFields = {},
  ) {
    super(STATUS[code], { message });
  }
}

export function errorBody(code: HttpErrorCode, message: string, fields: ErrorFields = {}): ErrorResponse {
  return { error: { code, message, ...fields } };
}

export function handleError(error: Error, c: Context): Response {
  if (error instanceof ApiError) {
    return c.json(errorBody(error.code, error.message, error.fields), error.status, error.headers);
  }
  if (error instanceof HTTPException) {
    const code: HttpErrorCode =
      error.status === 413 ? "too_large" : error.status === 401 ? "unauthorized" : "bad_request";
    return c.json(errorBody(code, error.message || "bad request"), error.status);
  }
  console.error("unhandled error", error);
  return c.json(errorBody("internal", "internal server error"), 500);
}

export function handleNotFound(c: Context): Response {
  return c.json(errorBody("not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`), 404);
}
