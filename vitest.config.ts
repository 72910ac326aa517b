// Four kinds of tests: "workers" runs inside workerd (miniflare) against the real Worker and Durable
// Objects; "node" runs the client's crypto and CLI; "e2e" starts `wrangler dev` and drives the CLI
// against it; "browser" drives the web client in Chromium (playwright-core) against `wrangler dev`.
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { LOCAL_OPERATOR_TOKEN } from "./test/support/operator-token.js";

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              cf: false,
              // Every request here comes without a client address, so all count in the one shared
              // bucket (worker/client-address.ts): the per-address limits are raised for the suite, and
              // test/worker/limits.test.ts sets its own.
              bindings: {
                SIGNUPS_PER_IP_PER_HOUR: "1000000",
                LOGINS_PER_IP_PER_MINUTE: "1000000",
                // Groups on three shards or more go through relays here (test/worker/group-relay.test.ts).
                GROUP_RELAY_ABOVE_SHARDS: "2",
                // A fresh clone has no .dev.vars: the secret GET /v1/stats wants comes from here.
                OPERATOR_TOKEN: LOCAL_OPERATOR_TOKEN,
              },
            },
          }),
        ],
        test: {
          name: "workers",
          include: ["test/worker/**/*.test.ts"],
          setupFiles: ["test/worker/setup.ts"],
          // A deadline, not a measurement: these run beside the end-to-end tests on a 2-core machine.
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "node",
          environment: "node",
          include: ["test/node/**/*.test.ts"],
          setupFiles: ["test/support/crypto-backend.ts"],
        },
      },
      {
        test: {
          name: "e2e",
          environment: "node",
          include: ["test/e2e/**/*.test.ts"],
          setupFiles: ["test/support/crypto-backend.ts"],
          // After the last file: the persisted state of every server of the run is scanned for secrets.
          globalSetup: ["test/e2e/global-setup.ts"],
          // Each file starts its own `wrangler dev`; one at a time keeps a 2-core machine responsive.
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "browser",
          environment: "node",
          include: ["test/browser/**/*.test.ts"],
          setupFiles: ["test/support/crypto-backend.ts"],
          globalSetup: ["test/e2e/global-setup.ts"],
          // Chromium and `wrangler dev` per file: one file at a time, with room for a slow start.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
