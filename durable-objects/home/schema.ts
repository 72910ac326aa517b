// The SQLite schema of a user's home, as migrations applied in order (durable-objects/migrations.ts).
// Add a new entry to change it; never edit one that has shipped.

export const HOME_MIGRATIONS: readonly string[] = [
  `
CREATE TABLE account (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  username TEXT NOT NULL,
  kdf TEXT NOT NULL,
  auth_hash TEXT NOT NULL,
  public_keys TEXT NOT NULL,
  sealed_private_keys TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE login_failures (at INTEGER NOT NULL);
CREATE TABLE messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  body BLOB NOT NULL,
  received_at INTEGER NOT NULL
);
CREATE TABLE deliveries (
  session_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
CREATE INDEX deliveries_by_seq ON deliveries (seq);
CREATE TABLE groups (name TEXT PRIMARY KEY, joined_at INTEGER NOT NULL);
CREATE TABLE blobs (
  id TEXT PRIMARY KEY,
  upload_id TEXT NOT NULL,
  size INTEGER NOT NULL,
  state TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE blob_parts (
  blob_id TEXT NOT NULL,
  part INTEGER NOT NULL,
  etag TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (blob_id, part)
) WITHOUT ROWID;
CREATE TABLE blob_recipients (
  blob_id TEXT NOT NULL,
  username TEXT NOT NULL,
  fetched INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (blob_id, username)
) WITHOUT ROWID;
CREATE TABLE presence (
  shard TEXT NOT NULL,
  session_id TEXT NOT NULL,
  sockets INTEGER NOT NULL,
  PRIMARY KEY (shard, session_id)
) WITHOUT ROWID;
`,
  // Protocol 2: the client derives the KDF salt and the cost is fixed (PROTOCOL §3.2), so nothing is kept.
  // An account made under protocol 1 keeps its auth hash, which a protocol 2 client no longer matches.
  `ALTER TABLE account DROP COLUMN kdf;`,
  // Sessions as devices the user sees and ends (GET/DELETE /v1/sessions): a name, when last used, and
  // for a while after a session was ended by the session cap or revoked, why, so that device is told.
  `
ALTER TABLE sessions ADD COLUMN device_name TEXT;
ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET last_seen_at = created_at;
CREATE TABLE ended_sessions (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  reason TEXT NOT NULL,
  ended_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
`,
  // Failed logins per (username, client address), and the addresses that have logged in (home/account.ts).
  // Addresses are kept as salted SHA-256 digests, never as they came. IF NOT EXISTS: a home brought
  // forward from version 1 (test/worker/migrations.test.ts) may already have them.
  `
CREATE TABLE IF NOT EXISTS login_address_failures (
  address TEXT PRIMARY KEY,
  failures INTEGER NOT NULL,
  last_failure_at INTEGER NOT NULL,
  blocked_until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS login_addresses (address TEXT PRIMARY KEY, last_success_at INTEGER NOT NULL) WITHOUT ROWID;
`,
  `
-- Queued items are keyed by (sender, id): an id is the sender's choice, so anyone who has seen another
-- user's message id could otherwise make a later copy of that message (a group hand-over) look like a
-- retry and be dropped. Items stored before this have no recorded sender ('').
CREATE TABLE messages_by_sender (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  sender TEXT NOT NULL,
  id TEXT NOT NULL,
  kind TEXT NOT NULL,
  body BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  UNIQUE (sender, id)
);
INSERT INTO messages_by_sender (seq, sender, id, kind, body, received_at)
  SELECT seq, '', id, kind, body, received_at FROM messages;
DROP TABLE messages;
ALTER TABLE messages_by_sender RENAME TO messages;
-- Acknowledgements name ids only.
CREATE INDEX messages_by_id ON messages (id);
-- What the queue holds, in total and per sender, kept by triggers so every way an item leaves counts
-- (home/queue.ts checks the quotas against these before storing).
CREATE TABLE queue_totals (id INTEGER PRIMARY KEY CHECK (id = 1), items INTEGER NOT NULL, bytes INTEGER NOT NULL);
INSERT INTO queue_totals (id, items, bytes) SELECT 1, count(*), coalesce(sum(length(body)), 0) FROM messages;
CREATE TABLE queue_by_sender (
  sender TEXT PRIMARY KEY,
  items INTEGER NOT NULL,
  bytes INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO queue_by_sender (sender, items, bytes)
  SELECT sender, count(*), sum(length(body)) FROM messages GROUP BY sender;
CREATE TRIGGER messages_counted AFTER INSERT ON messages BEGIN
  UPDATE queue_totals SET items = items + 1, bytes = bytes + length(NEW.body);
  INSERT INTO queue_by_sender (sender, items, bytes) VALUES (NEW.sender, 1, length(NEW.body))
    ON CONFLICT (sender) DO UPDATE SET items = items + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER messages_uncounted AFTER DELETE ON messages BEGIN
  UPDATE queue_totals SET items = items - 1, bytes = bytes - length(OLD.body);
  UPDATE queue_by_sender SET items = items - 1, bytes = bytes - length(OLD.body) WHERE sender = OLD.sender;
  DELETE FROM queue_by_sender WHERE sender = OLD.sender AND items <= 0;
END;
`,
  `
-- Consent (protocol 3): who has written to this user (home/correspondents.ts), so only they can be added to
-- this user's groups at once, and the group invitations waiting for this user's answer (home/invitations.ts).
CREATE TABLE correspondents (username TEXT PRIMARY KEY, since INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE invitations (
  group_name TEXT PRIMARY KEY,
  by TEXT NOT NULL,
  invited_at INTEGER NOT NULL
) WITHOUT ROWID;
`,
  `
-- Files for every session: a blob stays until each session that was sent it has fetched it. One row per
-- (blob, user, session) still to fetch; '*' stands for a user with no live session then, whose next
-- session fetches for them. Blobs uploaded before this wait for each recipient user not yet done.
CREATE TABLE blob_holders (
  blob_id TEXT NOT NULL,
  username TEXT NOT NULL,
  session_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (blob_id, username, session_id)
) WITHOUT ROWID;
CREATE INDEX blob_holders_by_session ON blob_holders (username, session_id);
INSERT INTO blob_holders (blob_id, username, session_id, expires_at)
  SELECT r.blob_id, r.username, '*', b.expires_at FROM blob_recipients r JOIN blobs b ON b.id = r.blob_id
  WHERE r.fetched = 0;
-- In a recipient's home: the users whose files this user's sessions hold, until when, so that a session
-- ending here is told to them (blob-owners.ts).
CREATE TABLE blob_owners (owner TEXT PRIMARY KEY, until INTEGER NOT NULL) WITHOUT ROWID;
`,
  `
-- Fewer rows written per message (home/queue.ts). The quota counts move in memory (home/queue-usage.ts),
-- not by triggers; the (sender, id) key is kept as (id, sender), so the one index also serves
-- acknowledgements by id; and who still waits for a message is found by the deliveries' own key.
-- The sequence carries over, so no seq a shard may still hold as a cursor is handed out again.
DROP TRIGGER messages_counted;
DROP TRIGGER messages_uncounted;
DROP TABLE queue_totals;
DROP TABLE queue_by_sender;
DROP INDEX deliveries_by_seq;
CREATE TABLE messages_keyed_by_id (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL,
  sender TEXT NOT NULL,
  kind TEXT NOT NULL,
  body BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  UNIQUE (id, sender)
);
INSERT INTO messages_keyed_by_id (seq, id, sender, kind, body, received_at)
  SELECT seq, id, sender, kind, body, received_at FROM messages;
DELETE FROM sqlite_sequence WHERE name = 'messages_keyed_by_id';
INSERT INTO sqlite_sequence (name, seq) SELECT 'messages_keyed_by_id', seq FROM sqlite_sequence WHERE name = 'messages';
DROP TABLE messages;
ALTER TABLE messages_keyed_by_id RENAME TO messages;
`,
  `
-- Send-only sockets (?receive=0) are counted beside the receiving ones (home/presence.ts), so that ending a
-- session closes its sockets only on the shards that hold them; pushes still go only where sockets > 0.
ALTER TABLE presence ADD COLUMN senders INTEGER NOT NULL DEFAULT 0;
`,
];
