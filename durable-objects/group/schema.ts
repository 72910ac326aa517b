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
  `
-- Posts are keyed by (sender, id), as a home's items are: ids are the senders' choice. Posts stored before
-- this have no recorded sender ('').
CREATE TABLE posts_by_sender (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  sender TEXT NOT NULL,
  id TEXT NOT NULL,
  signed BLOB NOT NULL,
  posted_at INTEGER NOT NULL,
  UNIQUE (sender, id)
);
INSERT INTO posts_by_sender (seq, sender, id, signed, posted_at)
  SELECT seq, '', id, signed, posted_at FROM posts;
DROP TABLE posts;
ALTER TABLE posts_by_sender RENAME TO posts;
-- Acknowledgements name ids only.
CREATE INDEX posts_by_id ON posts (id);
-- Quotas (group/queue.ts): what each member is owed here (the signed part and their slot, per message),
-- and what each sender has here that someone is still owed, kept by triggers so every way a row leaves
-- counts.
ALTER TABLE owed ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE owed SET bytes = length(slot) + coalesce((SELECT length(signed) FROM posts p WHERE p.seq = owed.seq), 0);
CREATE TABLE owed_by_member (
  member TEXT PRIMARY KEY,
  items INTEGER NOT NULL,
  bytes INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO owed_by_member (member, items, bytes) SELECT member, count(*), sum(bytes) FROM owed GROUP BY member;
CREATE TABLE posts_by_sender_usage (
  sender TEXT PRIMARY KEY,
  items INTEGER NOT NULL,
  bytes INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO posts_by_sender_usage (sender, items, bytes)
  SELECT sender, count(*), sum(length(signed)) FROM posts GROUP BY sender;
CREATE TRIGGER owed_counted AFTER INSERT ON owed BEGIN
  INSERT INTO owed_by_member (member, items, bytes) VALUES (NEW.member, 1, NEW.bytes)
    ON CONFLICT (member) DO UPDATE SET items = items + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER owed_uncounted AFTER DELETE ON owed BEGIN
  UPDATE owed_by_member SET items = items - 1, bytes = bytes - OLD.bytes WHERE member = OLD.member;
  DELETE FROM owed_by_member WHERE member = OLD.member AND items <= 0;
END;
CREATE TRIGGER posts_counted AFTER INSERT ON posts BEGIN
  INSERT INTO posts_by_sender_usage (sender, items, bytes) VALUES (NEW.sender, 1, length(NEW.signed))
    ON CONFLICT (sender) DO UPDATE SET items = items + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER posts_uncounted AFTER DELETE ON posts BEGIN
  UPDATE posts_by_sender_usage SET items = items - 1, bytes = bytes - length(OLD.signed)
    WHERE sender = OLD.sender;
  DELETE FROM posts_by_sender_usage WHERE sender = OLD.sender AND items <= 0;
END;
`,
  `
-- Consent (protocol 3): users invited and not yet answered (group/membership.ts), never members, and the
-- invitations of every epoch beside its members, so invitees can verify the chain they are asked to join.
-- Epochs recorded before this had none.
CREATE TABLE invitations (
  username TEXT PRIMARY KEY,
  by TEXT NOT NULL,
  invited_at INTEGER NOT NULL
) WITHOUT ROWID;
ALTER TABLE epochs ADD COLUMN invited TEXT NOT NULL DEFAULT '[]';
`,
  `
-- Members who uploaded files for this group, until when: a member's session that ends is told to them, so
-- it no longer keeps their file waiting (blob-owners.ts).
CREATE TABLE blob_owners (owner TEXT PRIMARY KEY, until INTEGER NOT NULL) WITHOUT ROWID;
`,
  `
-- The room's audience (group/audience.ts): the shards that may hold a receiving socket of a member, the
-- only ones a message is pushed to. A row is written when a shard joins, never per message.
CREATE TABLE audience (shard TEXT PRIMARY KEY) WITHOUT ROWID;
-- Rooms that had members before this learn their members' shards once, from their homes, before their
-- next message (group-room.ts): until then their connected members would be pushed nothing.
CREATE TABLE audience_state (filled INTEGER NOT NULL);
INSERT INTO audience_state (filled) SELECT NOT EXISTS (SELECT 1 FROM members);
`,
  `
-- A message's slots are kept together (group/queue.ts): keyed (seq, member), a message's thousand owed rows
-- are written to a few adjacent pages and deleted from them, where keyed (member, seq) each went to a page
-- of its own and a room with a backlog rewrote one page per member per message. Who is owed what stays
-- reachable through the narrow (member, seq) index.
CREATE TABLE owed_by_message (
  seq INTEGER NOT NULL,
  member TEXT NOT NULL,
  slot BLOB NOT NULL,
  bytes INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (seq, member)
) WITHOUT ROWID;
INSERT INTO owed_by_message (seq, member, slot, bytes) SELECT seq, member, slot, bytes FROM owed;
DROP TABLE owed;
ALTER TABLE owed_by_message RENAME TO owed;
CREATE INDEX owed_of_member ON owed (member, seq);
CREATE TRIGGER owed_counted AFTER INSERT ON owed BEGIN
  INSERT INTO owed_by_member (member, items, bytes) VALUES (NEW.member, 1, NEW.bytes)
    ON CONFLICT (member) DO UPDATE SET items = items + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER owed_uncounted AFTER DELETE ON owed BEGIN
  UPDATE owed_by_member SET items = items - 1, bytes = bytes - OLD.bytes WHERE member = OLD.member;
  DELETE FROM owed_by_member WHERE member = OLD.member AND items <= 0;
END;
`,
  `
-- The queue by cursor (group/queue.ts). A message's slots stay, one row per member, until the message
-- leaves; each session keeps how far it has acknowledged. Before, storing a message wrote an owed row and a
-- pending row per member (and a count per member through a trigger), and every acknowledgement deleted
-- them again: in a 1000-member group that was most of the room's work.
CREATE TABLE slots (
  seq INTEGER NOT NULL,
  member TEXT NOT NULL,
  slot BLOB NOT NULL,
  PRIMARY KEY (seq, member)
) WITHOUT ROWID;
INSERT INTO slots (seq, member, slot) SELECT seq, member, slot FROM owed;
-- Each message's largest slot: a member's share of the room counts the signed part and that.
ALTER TABLE posts ADD COLUMN slot_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE posts SET slot_bytes = coalesce((SELECT max(length(o.slot)) FROM owed o WHERE o.seq = posts.seq), 0);
-- A session has acknowledged every message up to acked_through that it waited for: the one before the
-- first it still waits for, or the newest if it waits for none.
ALTER TABLE member_sessions ADD COLUMN acked_through INTEGER NOT NULL DEFAULT 0;
UPDATE member_sessions SET acked_through = coalesce(
  (SELECT min(d.seq) - 1 FROM pending d WHERE d.session_id = member_sessions.session_id),
  (SELECT max(seq) FROM posts),
  0);
-- What a session acknowledged past acked_through, out of order.
CREATE TABLE acked_ahead (
  session_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
INSERT INTO acked_ahead (session_id, seq)
  SELECT s.session_id, o.seq FROM member_sessions s JOIN owed o ON o.member = s.member AND o.seq > s.acked_through
  WHERE NOT EXISTS (SELECT 1 FROM pending d WHERE d.session_id = s.session_id AND d.seq = o.seq);
-- A member with no session here is owed what they have a slot in after owed_after.
CREATE TABLE member_marks (member TEXT PRIMARY KEY, owed_after INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO member_marks (member, owed_after)
  SELECT member, min(seq) - 1 FROM owed WHERE member NOT IN (SELECT member FROM member_sessions)
  GROUP BY member;
DROP TRIGGER IF EXISTS owed_counted;
DROP TRIGGER IF EXISTS owed_uncounted;
DROP TABLE IF EXISTS owed_by_member;
DROP TABLE pending;
DROP TABLE owed;
-- What each session still waits for, and what each member is still owed, read from the cursors: the
-- rare paths (a departing member's hand-over) and anyone inspecting a room read these.
CREATE VIEW pending AS
  SELECT s.session_id AS session_id, sl.seq AS seq, sl.member AS member
  FROM member_sessions s JOIN slots sl ON sl.member = s.member AND sl.seq > s.acked_through
  WHERE NOT EXISTS (SELECT 1 FROM acked_ahead a WHERE a.session_id = s.session_id AND a.seq = sl.seq);
CREATE VIEW owed AS
  SELECT sl.member AS member, sl.seq AS seq, sl.slot AS slot FROM slots sl
  WHERE EXISTS (SELECT 1 FROM pending d WHERE d.member = sl.member AND d.seq = sl.seq)
    OR (NOT EXISTS (SELECT 1 FROM member_sessions s WHERE s.member = sl.member)
        AND sl.seq > (SELECT m.owed_after FROM member_marks m WHERE m.member = sl.member));
`,
];
