// The protocol version client and server must share: what `GET /v1/health` announces, and the first byte
// of every envelope. docs/PROTOCOL.md §1 says what changed from one version to the next.

/**
 * Version 3: group membership needs consent (invite, join and decline statements, statement version 2
 * committing to pending invitations, `consent_required`). Version 2: envelopes carry version byte 2,
 * refused uploads name their id whenever it can be read, and `GET /v1/health` announces this number so a
 * client can refuse a server it cannot talk to before it sends a password-derived key to it.
 */
export const PROTOCOL_VERSION = 3;
