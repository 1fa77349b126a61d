-- What the ops console reads (issue 20), as in SQLite's schema 6: events
-- by record, each settle's answer, transition tallies, reloads. Every page
-- the console serves is an index range, never a scan.
ALTER TABLE events ADD COLUMN record TEXT COLLATE "C";
CREATE INDEX events_record ON events(record, id) WHERE record IS NOT NULL;
CREATE INDEX outbox_record ON outbox(record, id);
ALTER TABLE outbox ADD COLUMN parked_kind TEXT;
CREATE INDEX outbox_dead_kind ON outbox(parked_kind, id) WHERE state = 'dead';

-- Every settle of a send, and every requeue of a dead letter, with the
-- API's answer: written by a trigger in the settling transaction.
CREATE TABLE attempts (
  id        BIGSERIAL PRIMARY KEY,
  action_id BIGINT NOT NULL,
  attempt   INTEGER NOT NULL,
  at_ms     BIGINT NOT NULL,
  outcome   TEXT NOT NULL,
  answer    TEXT
);
CREATE INDEX attempts_action ON attempts(action_id, id);
CREATE INDEX attempts_at ON attempts(at_ms, id);

CREATE FUNCTION l3map_attempt_log() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.state = 'sending' AND NEW.state <> 'sending' THEN
    INSERT INTO attempts (action_id, attempt, at_ms, outcome, answer)
    VALUES (NEW.id, NEW.attempts, NEW.updated_ms,
            CASE WHEN NEW.state = 'done' AND NEW.last_error IS DISTINCT FROM OLD.last_error
                      AND (NEW.last_error LIKE 'superseded%' OR NEW.last_error LIKE 'coalesced%')
                   THEN 'superseded'
                 WHEN NEW.state = 'done' THEN 'applied'
                 WHEN NEW.state = 'pending' THEN 'retry' ELSE 'parked' END,
            CASE WHEN NEW.state = 'done' AND NEW.last_error IS NOT DISTINCT FROM OLD.last_error
                 THEN NULL ELSE NEW.last_error END);
  ELSIF OLD.state = 'dead' AND NEW.state = 'pending' THEN
    INSERT INTO attempts (action_id, attempt, at_ms, outcome, answer)
    VALUES (NEW.id, OLD.attempts, NEW.updated_ms, 'requeued', NULL);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER attempts_log AFTER UPDATE OF state ON outbox
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
  EXECUTE FUNCTION l3map_attempt_log();

-- An action deleted (retention, `l3map outbox drop`) takes its lines.
CREATE FUNCTION l3map_attempts_gone() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM attempts WHERE action_id = OLD.id;
  RETURN NULL;
END $$;
CREATE TRIGGER attempts_gone AFTER DELETE ON outbox
  FOR EACH ROW EXECUTE FUNCTION l3map_attempts_gone();

-- Spread over 16 shards by transaction id, as `counts` is: one row per
-- minute would serialise every replica's event commits on its lock.
CREATE TABLE tallies (
  span_ms    BIGINT NOT NULL,
  bucket_ms  BIGINT NOT NULL,
  connection TEXT NOT NULL,
  subject    TEXT NOT NULL,
  outcome    TEXT NOT NULL,
  reason     TEXT NOT NULL,
  source_loc TEXT NOT NULL,
  shard      INTEGER NOT NULL,
  n          BIGINT NOT NULL,
  PRIMARY KEY (span_ms, bucket_ms, connection, subject, outcome, reason, source_loc, shard)
);

CREATE TABLE reloads (
  id          BIGSERIAL PRIMARY KEY,
  at_ms       BIGINT NOT NULL,
  replica     TEXT NOT NULL,
  revision    TEXT NOT NULL,
  outcome     TEXT NOT NULL CHECK (outcome IN ('live', 'refused')),
  cause       TEXT NOT NULL,
  diagnostics TEXT
);
CREATE TABLE reload_sources (
  revision  TEXT PRIMARY KEY,
  bundle    TEXT NOT NULL,
  stored_ms BIGINT NOT NULL
);
