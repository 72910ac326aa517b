// The Hono environment, typed once: bindings from wrangler.toml, and what the auth middleware sets.

export interface AppEnv {
  Bindings: Env;
  Variables: {
    /** The authenticated user (lower-case), set by requireSession. */
    user: string;
    sessionId: string;
    expiresAt: number;
  };
}
