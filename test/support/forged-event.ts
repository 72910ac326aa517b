// A membership event frame as a malicious server would invent it: carrying a given signed statement
// (genuine, replayed or forged), its summary fields read from that statement, and whatever the test
// overrides. The attack tests inject these after the welcome to see the client refuse them.

import { toHex } from "../../protocol/bytes.js";
import { decodeStatement } from "../../protocol/group-statement.js";

export function forgedEventFrame(
  signed: { statement: string; signature: string },
  fields: Record<string, unknown> & { event: string },
): string {
  const statement = decodeStatement(new Uint8Array(Buffer.from(signed.statement, "base64")));
  return JSON.stringify({
    type: "event",
    id: toHex(crypto.getRandomValues(new Uint8Array(16))),
    group: statement.group,
    by: statement.by,
    user: statement.user,
    epoch: statement.epoch,
    members: [],
    invited: [],
    admin: statement.admin,
    at: Date.now(),
    ...signed,
    ...fields,
  });
}
