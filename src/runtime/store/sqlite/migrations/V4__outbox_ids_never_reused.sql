-- outbox ids are never reused (AUTOINCREMENT), so an id `l3map outbox` printed always names the same action
--
-- Schema 4. SQLite gives a new row the largest id + 1, so after `l3map
-- outbox drop` removed the newest dead letter, the next action got its id
-- and a later `outbox retry ID`, typed from the old listing, hit another
-- action. AUTOINCREMENT never hands an id out twice; SQLite cannot add it
-- to a table, so the table is rebuilt with its rows, ids, indexes,
-- triggers and view, in the migration's transaction.
CREATE TABLE outbox_v4 (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  key           TEXT NOT NULL UNIQUE,
  event_id      INTEGER NOT NULL REFERENCES events(id),
  connection    TEXT NOT NULL,
  record        TEXT NOT NULL,
  kind          TEXT NOT NULL,
  op            TEXT NOT NULL,
  rule          TEXT NOT NULL,
  source_loc    TEXT NOT NULL,
  revision      TEXT NOT NULL,
  state         TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'done', 'dead')),
  unconfirmed   INTEGER NOT NULL DEFAULT 0,
  attempts      INTEGER NOT NULL DEFAULT 0,
  not_before    INTEGER NOT NULL DEFAULT 0,
  last_error    TEXT,
  created_ms    INTEGER NOT NULL,
  updated_ms    INTEGER NOT NULL,
  failing_since INTEGER,
  outage_tries  INTEGER NOT NULL DEFAULT 0,
  parked_for    TEXT
);
INSERT INTO outbox_v4 (id, key, event_id, connection, record, kind, op, rule, source_loc,
    revision, state, unconfirmed, attempts, not_before, last_error, created_ms, updated_ms,
    failing_since, outage_tries, parked_for)
  SELECT id, key, event_id, connection, record, kind, op, rule, source_loc,
    revision, state, unconfirmed, attempts, not_before, last_error, created_ms, updated_ms,
    failing_since, outage_tries, parked_for
  FROM outbox;
DROP VIEW dead_letters;
DROP TABLE outbox;
ALTER TABLE outbox_v4 RENAME TO outbox;
CREATE INDEX outbox_queue ON outbox(connection, state, record, id);
CREATE INDEX outbox_outage ON outbox(connection, record, id) WHERE parked_for = 'outage';
CREATE INDEX outbox_waiting ON outbox(created_ms) WHERE state IN ('pending', 'sending');
CREATE INDEX outbox_done ON outbox(updated_ms, id) WHERE state = 'done';
CREATE INDEX outbox_event ON outbox(event_id);
CREATE TRIGGER counts_action_in AFTER INSERT ON outbox BEGIN
  INSERT INTO counts (name, n) VALUES (NEW.state, 1)
    ON CONFLICT(name) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER counts_action_out AFTER DELETE ON outbox BEGIN
  UPDATE counts SET n = n - 1 WHERE name = OLD.state;
END;
CREATE TRIGGER counts_action_moved AFTER UPDATE OF state ON outbox
  WHEN OLD.state IS NOT NEW.state BEGIN
  UPDATE counts SET n = n - 1 WHERE name = OLD.state;
  INSERT INTO counts (name, n) VALUES (NEW.state, 1)
    ON CONFLICT(name) DO UPDATE SET n = n + 1;
END;
CREATE VIEW dead_letters AS
  SELECT id, key, connection, record, kind, rule, source_loc, revision, attempts, last_error, updated_ms
  FROM outbox WHERE state = 'dead';
