// The SQLite schema of a group's room, as migrations applied in order (durable-objects/migrations.ts).
// Add a new entry to change it; never edit one that has shipped.

export const GROUP_MIGRATIONS: readonly string[] = [
  `
CREATE TABLE group_info (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  name TEXT NOT NULL,
  admin TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE members (
  username TEXT PRIMARY KEY,
  joined_at INTEGER NOT NULL,
  joined_order INTEGER NOT NULL
);
CREATE TABLE epochs (
  epoch INTEGER PRIMARY KEY,
  members TEXT NOT NULL
);
`,
  `
-- The group's message queue (group/queue.ts): each message stored once, each member's key slot beside it.
CREATE TABLE posts (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  signed BLOB NOT NULL,
  posted_at INTEGER NOT NULL
);
-- What each member is still owed: a message leaves when every live session of theirs has it.
CREATE TABLE owed (
  member TEXT NOT NULL,
  seq INTEGER NOT NULL,
  slot BLOB NOT NULL,
  PRIMARY KEY (member, seq)
) WITHOUT ROWID;
CREATE INDEX owed_by_seq ON owed (seq);
-- Which session of a member still waits for which message.
CREATE TABLE pending (
  session_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  member TEXT NOT NULL,
  PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
CREATE INDEX pending_by_member ON pending (member, seq);
-- The members' live sessions, as their homes report them (join, login, logout) and connects confirm.
CREATE TABLE member_sessions (
  member TEXT NOT NULL,
  session_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (member, session_id)
) WITHOUT ROWID;
CREATE INDEX member_sessions_by_expiry ON member_sessions (expires_at);
`,
  `
-- Rooms that had members before their queue existed learn those members' sessions once, from their homes,
-- before their first message (group-room.ts): without it, one session's acknowledgement could retire a
-- message another session of the same member never got.
CREATE TABLE queue_state (sessions_loaded INTEGER NOT NULL);
INSERT INTO queue_state (sessions_loaded) SELECT NOT EXISTS (SELECT 1 FROM members);
`,
  `
-- Signed membership (protocol/group-statement.ts): each epoch keeps the statement that started it and its
-- signature, so members can verify the chain. Epochs recorded before this have none.
ALTER TABLE epochs ADD COLUMN statement BLOB;
ALTER TABLE epochs ADD COLUMN signature BLOB;
`,
];
