// Lets sockets closed at the end of a test file finish their close handshakes (and the shard's
// bookkeeping RPCs) before the test runtime is torn down.
import { afterAll } from "vitest";

afterAll(() => new Promise((resolve) => setTimeout(resolve, 300)));
