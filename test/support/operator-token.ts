// The operator token (OPERATOR_TOKEN, worker/operator.ts) every local test server and the bench run with:
// a fresh clone has no `.dev.vars`, so the tests pass it themselves. Local only, never a deployment's.
export const LOCAL_OPERATOR_TOKEN = "local-test-operator-token";

/** The header GET /v1/stats wants from a server started with LOCAL_OPERATOR_TOKEN. */
export const OPERATOR_HEADERS = { Authorization: `Bearer ${LOCAL_OPERATOR_TOKEN}` } as const;
