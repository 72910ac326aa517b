// telepound devices revoke ID: ends another session of this account (a lost laptop, an old server): its
// sockets are closed, its queue is dropped, and its next command is told it was revoked.

import { UsageError } from "../../client/errors.js";
import { describeDevice } from "../output.js";
import type { CommandSpec } from "./command.js";
import { SHOWN_ID_DIGITS } from "./devices.js";

/** Fewer hex digits than this are too easy to mistype into the wrong session. */
const MIN_ID_PREFIX_DIGITS = 4;

export const devicesRevoke: CommandSpec = {
  name: "devices revoke",
  summary: "end one of this account's sessions (its sockets close, its queue is dropped)",
  args: [
    { syntax: "<id>", description: "the session's id from `telepound devices`, or a unique prefix of it" },
  ],
  examples: ["telepound devices revoke 3f9a1c0e7b2d", "telepound devices revoke 3f9a --json"],
  async run(ctx, { args: [raw = ""] }) {
    const prefix = raw.trim().toLowerCase();
    if (!/^[0-9a-f]+$/.test(prefix) || prefix.length < MIN_ID_PREFIX_DIGITS || prefix.length > 32) {
      throw new UsageError(
        `"${raw}" is not a session id: give ${MIN_ID_PREFIX_DIGITS}–32 hex digits as "telepound devices" shows them`,
      );
    }
    const target = await ctx.client.revokeDevice(prefix);
    ctx.printer.result(
      `ended the session ${target.id.slice(0, SHOWN_ID_DIGITS)} (${describeDevice(target.deviceName)}): its sockets are closed and its queue dropped`,
      { revoked: target.id, deviceName: target.deviceName },
    );
  },
};
