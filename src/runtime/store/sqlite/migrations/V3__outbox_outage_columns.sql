-- the outbox's outage columns (failing_since, outage_tries, parked_for) and the index of outage-parked rows
--
-- Schema 3, the outbox's retry policy (docs/RUNTIME.md, "Limits and
-- guarantees"):
-- - `failing_since`: when the action first failed because of an outage
--   (ms since 1970; NULL if it has not): the outage window runs from here;
-- - `outage_tries`: how many of its `attempts` were outages, which do not
--   count toward `max_attempts`;
-- - `parked_for`: `'outage'` on a dead letter parked because its
--   connection stayed down past the window (requeued automatically on
--   recovery); NULL on any other row. The partial index `outbox_outage`
--   keeps `claim` from scanning done rows to find them.
ALTER TABLE outbox ADD COLUMN failing_since INTEGER;
ALTER TABLE outbox ADD COLUMN outage_tries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN parked_for TEXT;
CREATE INDEX outbox_outage ON outbox(connection, record, id) WHERE parked_for = 'outage';
