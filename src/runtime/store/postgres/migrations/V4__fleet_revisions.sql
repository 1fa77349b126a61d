-- One mapping revision across the fleet (issue 18): every revision a
-- replica or `l3map publish` put forward, with its sources, so a replica
-- that has another loaded compiles it from here; and the one row saying
-- which revision the fleet decides by. An event's transaction reads that
-- row FOR SHARE, so a switch waits for the events being recorded and no
-- event decided by the old revision commits after it.
CREATE TABLE revisions (
    revision     TEXT PRIMARY KEY,
    bundle       TEXT NOT NULL,   -- JSON: files and lockfile
    published_ms BIGINT NOT NULL,
    published_by TEXT NOT NULL
);

CREATE TABLE fleet_revision (
    id           SMALLINT PRIMARY KEY CHECK (id = 1),
    revision     TEXT NOT NULL REFERENCES revisions (revision),
    published_by TEXT NOT NULL,
    switched_ms  BIGINT NOT NULL
);
