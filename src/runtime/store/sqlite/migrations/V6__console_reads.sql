-- what the ops console reads: events by record, each attempt's answer, transition tallies, reloads
--
-- Schema 6 (issue 20). The console answers on a store of millions of
-- rows, so every page it serves is an index range, never a scan:
-- - `events.record`: the record an event is about (a ticket id, or
--   `Object/Id`), so a ticket's audit trail is one range of
--   `events_record`; events recorded before this schema have none and are
--   found through their actions (`outbox_record`).
-- - `outbox.parked_kind`: why an action was parked, as a class (`auth`,
--   `validation`, `outage`, ...), so dead letters group and retry by
--   reason without reading their texts.
-- - `attempts`: every time a send was settled (applied, to be retried,
--   parked) or a person requeued a dead letter, with the API's answer,
--   written by a trigger in the transaction that settles the row, so no
--   code path can settle without leaving its line.
-- - `tallies`: decided status moves and refusals counted per minute and
--   per hour, in the event's transaction: the status graph of any window
--   sums at most a day of minutes, or hours beyond.
-- - `reloads` and `reload_sources`: each revision put forward (by a save,
--   SIGHUP or the start), whether it went live or why it was refused, and
--   the files of each that went live, for a diff between two.
ALTER TABLE events ADD COLUMN record TEXT;
CREATE INDEX events_record ON events(record, id) WHERE record IS NOT NULL;
CREATE INDEX outbox_record ON outbox(record, id);
ALTER TABLE outbox ADD COLUMN parked_kind TEXT;
CREATE INDEX outbox_dead ON outbox(id) WHERE state = 'dead';
CREATE INDEX outbox_dead_kind ON outbox(parked_kind, id) WHERE state = 'dead';
CREATE TABLE attempts (
  id        INTEGER PRIMARY KEY,
  action_id INTEGER NOT NULL,
  attempt   INTEGER NOT NULL,
  at_ms     INTEGER NOT NULL,
  outcome   TEXT NOT NULL,
  answer    TEXT
);
CREATE INDEX attempts_action ON attempts(action_id, id);
CREATE INDEX attempts_at ON attempts(at_ms, id);
CREATE TRIGGER attempts_settled AFTER UPDATE OF state ON outbox
  WHEN OLD.state = 'sending' AND NEW.state <> 'sending' BEGIN
  INSERT INTO attempts (action_id, attempt, at_ms, outcome, answer)
  VALUES (NEW.id, NEW.attempts, NEW.updated_ms,
          CASE WHEN NEW.state = 'done' AND NEW.last_error IS NOT OLD.last_error
                    AND (NEW.last_error LIKE 'superseded%' OR NEW.last_error LIKE 'coalesced%')
                 THEN 'superseded'
               WHEN NEW.state = 'done' THEN 'applied'
               WHEN NEW.state = 'pending' THEN 'retry' ELSE 'parked' END,
          CASE WHEN NEW.state = 'done' AND NEW.last_error IS OLD.last_error THEN NULL
               ELSE NEW.last_error END);
END;
CREATE TRIGGER attempts_requeued AFTER UPDATE OF state ON outbox
  WHEN OLD.state = 'dead' AND NEW.state = 'pending' BEGIN
  INSERT INTO attempts (action_id, attempt, at_ms, outcome, answer)
  VALUES (NEW.id, OLD.attempts, NEW.updated_ms, 'requeued', NULL);
END;
-- An action deleted (retention, `l3map outbox drop`) takes its lines.
CREATE TRIGGER attempts_gone AFTER DELETE ON outbox BEGIN
  DELETE FROM attempts WHERE action_id = OLD.id;
END;
CREATE TABLE tallies (
  span_ms    INTEGER NOT NULL,
  bucket_ms  INTEGER NOT NULL,
  connection TEXT NOT NULL,
  subject    TEXT NOT NULL,
  outcome    TEXT NOT NULL,
  reason     TEXT NOT NULL,
  source_loc TEXT NOT NULL,
  n          INTEGER NOT NULL,
  PRIMARY KEY (span_ms, bucket_ms, connection, subject, outcome, reason, source_loc)
) WITHOUT ROWID;
CREATE TABLE reloads (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms       INTEGER NOT NULL,
  replica     TEXT NOT NULL,
  revision    TEXT NOT NULL,
  outcome     TEXT NOT NULL CHECK (outcome IN ('live', 'refused')),
  cause       TEXT NOT NULL,
  diagnostics TEXT
);
CREATE TABLE reload_sources (
  revision  TEXT PRIMARY KEY,
  bundle    TEXT NOT NULL,
  stored_ms INTEGER NOT NULL
);
