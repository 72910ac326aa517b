// The Worker entry: the Hono app handles every request; the Durable Object classes are exported here
// because the runtime looks them up on the main module.

import { app } from "./app.js";

export { Directory } from "../durable-objects/directory.js";
export { GroupRelay } from "../durable-objects/group-relay.js";
export { GroupRoom } from "../durable-objects/group-room.js";
export { LoadBalancer } from "../durable-objects/load-balancer.js";
export { ServerShard } from "../durable-objects/server-shard.js";
export { Throttle } from "../durable-objects/throttle.js";
export { UserHome } from "../durable-objects/user-home.js";

export default app;
