// Request bodies are parsed with the zod schemas from protocol/http.ts; the first problem found is
// reported with its field path, so a client author sees exactly what to fix.

import type { Context } from "hono";
import type { z } from "zod";
import { ApiError } from "./errors.js";

export async function parseJson<Schema extends z.ZodType>(
  c: Context,
  schema: Schema,
): Promise<z.output<Schema>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new ApiError("bad_request", "the body must be JSON");
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
    throw new ApiError("bad_request", `${where}${issue?.message ?? "invalid body"}`);
  }
  return parsed.data;
}
