-- row counts kept by triggers (O(1) /healthz and /metrics); indexes for the oldest waiting action and for retention
--
-- Schema 2. `/healthz` and `/metrics` used to count rows (`COUNT(*)` over
-- every event) under the lock the writers share; the counts are now kept
-- by triggers in the same transaction as the rows they count, so they stay
-- right whoever writes (the runtime, `l3map outbox retry` from another
-- process, retention) and reading them is O(1). The upsert in the triggers
-- keeps a state added by a later schema counted without a new row here.
CREATE TABLE counts (
  name TEXT PRIMARY KEY,
  n    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counts (name, n) SELECT 'events', COUNT(*) FROM events;
INSERT INTO counts (name, n) SELECT state, COUNT(*) FROM outbox GROUP BY state;
CREATE TRIGGER counts_event_in AFTER INSERT ON events BEGIN
  INSERT INTO counts (name, n) VALUES ('events', 1)
    ON CONFLICT(name) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER counts_event_out AFTER DELETE ON events BEGIN
  UPDATE counts SET n = n - 1 WHERE name = 'events';
END;
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
-- The oldest action not yet applied, without reading the applied ones.
CREATE INDEX outbox_waiting ON outbox(created_ms) WHERE state IN ('pending', 'sending');
-- Retention: done actions by age, events by age, and whether an event
-- still has actions (also what deleting an event checks its foreign key by).
CREATE INDEX outbox_done ON outbox(updated_ms, id) WHERE state = 'done';
CREATE INDEX outbox_event ON outbox(event_id);
CREATE INDEX events_received ON events(received_ms, id);
