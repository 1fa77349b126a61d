-- the tables as l3map first wrote them
--
-- Schema 1: events (each decided once, by its source's delivery id), the
-- outbox of actions, the dead letters view, the pollers' cursors and the
-- meta table whose `schema_version` every l3map before refinery read.
-- Never edited (refinery refuses a store whose applied migrations differ
-- from this binary's): a change is a new V{n}__*.sql.
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
  id          INTEGER PRIMARY KEY,
  key         TEXT NOT NULL UNIQUE,
  source      TEXT NOT NULL,
  received_ms INTEGER NOT NULL,
  revision    TEXT NOT NULL,
  event       TEXT NOT NULL,
  refused     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
  id          INTEGER PRIMARY KEY,
  key         TEXT NOT NULL UNIQUE,
  event_id    INTEGER NOT NULL REFERENCES events(id),
  connection  TEXT NOT NULL,
  record      TEXT NOT NULL,
  kind        TEXT NOT NULL,
  op          TEXT NOT NULL,
  rule        TEXT NOT NULL,
  source_loc  TEXT NOT NULL,
  revision    TEXT NOT NULL,
  state       TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'done', 'dead')),
  unconfirmed INTEGER NOT NULL DEFAULT 0,
  attempts    INTEGER NOT NULL DEFAULT 0,
  not_before  INTEGER NOT NULL DEFAULT 0,
  last_error  TEXT,
  created_ms  INTEGER NOT NULL,
  updated_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_queue ON outbox(connection, state, record, id);
CREATE VIEW IF NOT EXISTS dead_letters AS
  SELECT id, key, connection, record, kind, rule, source_loc, revision, attempts, last_error, updated_ms
  FROM outbox WHERE state = 'dead';
CREATE TABLE IF NOT EXISTS cursors (
  source     TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  updated_ms INTEGER NOT NULL
);
