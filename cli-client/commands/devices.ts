// telepound devices: this account's sessions (one per logged-in home), with the name each was given at
// login, when it was created and last seen; this home's own is marked. `devices revoke` ends one.

import type { SessionInfo } from "../../protocol/http.js";
import { describeDevice, isoTime, localTime, shownLines } from "../output.js";
import type { CommandSpec } from "./command.js";

/** How much of a session id the human listing shows: unique among an account's few sessions. */
export const SHOWN_ID_DIGITS = 12;

export const devices: CommandSpec = {
  name: "devices",
  summary: "list this account's sessions (devices); `devices revoke ID` ends one",
  examples: ["telepound devices", "telepound devices --json  # full ids, ISO times, connected or not"],
  async run(ctx) {
    const sessions = await ctx.client.devices();
    const lines = sessions.map(describeSession);
    ctx.printer.result(
      shownLines([`${sessions.length} session${sessions.length === 1 ? "" : "s"}:`, ...lines]),
      {
        sessions: sessions.map((session) => ({
          id: session.id,
          deviceName: session.deviceName,
          createdAt: isoTime(session.createdAt),
          lastSeenAt: isoTime(session.lastSeenAt),
          expiresAt: isoTime(session.expiresAt),
          connected: session.connected,
          current: session.current,
        })),
      },
    );
  },
};

function describeSession(session: SessionInfo): string {
  const mark = session.current ? "*" : " ";
  const seen = session.current
    ? "now (this device)"
    : session.connected
      ? "now (connected)"
      : localTime(session.lastSeenAt);
  return `${mark} ${session.id.slice(0, SHOWN_ID_DIGITS)}  ${describeDevice(session.deviceName)}  created ${localTime(session.createdAt)}  last seen ${seen}`;
}
