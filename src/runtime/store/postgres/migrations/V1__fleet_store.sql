-- The l3map store on PostgreSQL, schema 1: what SQLite's schema 5 keeps,
-- plus what several replicas need to share it (claims with a lease and a
-- fencing epoch, singleton leases, replicas). Never edited once released:
-- a change is a new V{n}__*.sql (refinery refuses an edited one).

-- Now, in ms since 1970, on the database's clock: leases and claims are
-- compared on one clock whatever the replicas' clocks say.
CREATE FUNCTION l3map_now_ms() RETURNS BIGINT
  LANGUAGE SQL VOLATILE
  AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT $$;

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- Keys compare bytewise (COLLATE "C"), as in SQLite: a prefix is a range
-- of the unique index.
CREATE TABLE events (
  id          BIGSERIAL PRIMARY KEY,
  key         TEXT COLLATE "C" NOT NULL UNIQUE,
  source      TEXT NOT NULL,
  received_ms BIGINT NOT NULL,
  revision    TEXT NOT NULL,
  event       TEXT NOT NULL,
  refused     TEXT NOT NULL
);
CREATE INDEX events_received ON events(received_ms, id);

-- A sequence never hands an id out twice (`l3map outbox retry ID` always
-- names the action it listed).
CREATE TABLE outbox (
  id            BIGSERIAL PRIMARY KEY,
  key           TEXT COLLATE "C" NOT NULL UNIQUE,
  event_id      BIGINT NOT NULL REFERENCES events(id),
  connection    TEXT NOT NULL,
  record        TEXT NOT NULL,
  kind          TEXT NOT NULL,
  op            TEXT NOT NULL,
  rule          TEXT NOT NULL,
  source_loc    TEXT NOT NULL,
  revision      TEXT NOT NULL,
  state         TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'done', 'dead')),
  unconfirmed   BOOLEAN NOT NULL DEFAULT FALSE,
  attempts      INTEGER NOT NULL DEFAULT 0,
  not_before    BIGINT NOT NULL DEFAULT 0,
  last_error    TEXT,
  created_ms    BIGINT NOT NULL,
  updated_ms    BIGINT NOT NULL,
  failing_since BIGINT,
  outage_tries  INTEGER NOT NULL DEFAULT 0,
  parked_for    TEXT,
  -- A claim: which replica holds the row while it is `sending`, until when
  -- (the database's clock; its heartbeat moves it on), and the claim's
  -- epoch. Settling names the epoch, so a replica whose claim was taken
  -- over (it stalled past the lease) settles nothing.
  claimed_by    TEXT,
  lease_until   BIGINT,
  epoch         BIGINT NOT NULL DEFAULT 0
);
-- Each record's unfinished rows in decision order: its head is the first.
-- Only unfinished rows are in it, so a ticket with 20,000 applied actions
-- costs its head nothing, and one with 20,000 queued costs one probe.
CREATE INDEX outbox_open ON outbox(connection, record, id)
  WHERE state IN ('pending', 'sending') OR parked_for = 'outage';
CREATE INDEX outbox_waiting ON outbox(created_ms) WHERE state IN ('pending', 'sending');
CREATE INDEX outbox_done ON outbox(updated_ms, id) WHERE state = 'done';
CREATE INDEX outbox_event ON outbox(event_id);
CREATE INDEX outbox_claimed ON outbox(claimed_by) WHERE state = 'sending';
CREATE INDEX outbox_dead ON outbox(id) WHERE state = 'dead';

-- Fencing epochs of claims and leases: one sequence, so an epoch is never
-- given twice.
CREATE SEQUENCE epochs;

-- The counts `/healthz` and `/metrics` serve, kept by triggers in the
-- transaction of the rows they count (O(1) to read). Spread over 16 rows
-- per name, by transaction id: one row per name would serialise every
-- writer of every replica on its lock.
CREATE TABLE counts (
  name  TEXT NOT NULL,
  shard INTEGER NOT NULL,
  n     BIGINT NOT NULL,
  PRIMARY KEY (name, shard)
);

CREATE FUNCTION l3map_count(what TEXT, by BIGINT) RETURNS VOID LANGUAGE SQL AS $$
  INSERT INTO counts (name, shard, n) VALUES (what, (txid_current() % 16)::INTEGER, by)
  ON CONFLICT (name, shard) DO UPDATE SET n = counts.n + EXCLUDED.n
$$;

CREATE FUNCTION l3map_count_events() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM l3map_count('events', 1);
  ELSE
    PERFORM l3map_count('events', -1);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER counts_events AFTER INSERT OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION l3map_count_events();

CREATE FUNCTION l3map_count_actions() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM l3map_count(NEW.state, 1);
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM l3map_count(OLD.state, -1);
  ELSIF OLD.state IS DISTINCT FROM NEW.state THEN
    PERFORM l3map_count(OLD.state, -1);
    PERFORM l3map_count(NEW.state, 1);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER counts_actions AFTER INSERT OR DELETE OR UPDATE OF state ON outbox
  FOR EACH ROW EXECUTE FUNCTION l3map_count_actions();

-- Where each source's polling stopped. `epoch`: the singleton lease it was
-- written under (0: none), so a holder that lost its lease cannot move it.
CREATE TABLE cursors (
  source     TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  updated_ms BIGINT NOT NULL,
  epoch      BIGINT NOT NULL DEFAULT 0
);

-- Sealed OAuth grants, as in SQLite's schema 5 (docs/RUNTIME.md,
-- "Credentials").
CREATE TABLE credentials (
  connection          TEXT PRIMARY KEY,
  generation          BIGINT NOT NULL,
  flow                TEXT NOT NULL,
  key_id              TEXT NOT NULL,
  nonce               BYTEA NOT NULL,
  sealed              BYTEA NOT NULL,
  access_expires_ms   BIGINT,
  refresh_expires_ms  BIGINT,
  updated_ms          BIGINT NOT NULL,
  refreshing_since_ms BIGINT,
  state               TEXT NOT NULL DEFAULT 'ok'
                      CHECK (state IN ('ok', 'needs_login', 'undecryptable')),
  last_error          TEXT
);

-- Singletons (a poller, a CDC subscription, the reaper): one holder at a
-- time, until `expires_ms` (the database's clock); each take-over a new
-- epoch.
CREATE TABLE leases (
  name       TEXT PRIMARY KEY,
  holder     TEXT NOT NULL,
  epoch      BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL
);

-- The replicas: each one's heartbeat, loaded revision and last load error,
-- for `l3map status` and `/readyz`.
CREATE TABLE replicas (
  id           TEXT PRIMARY KEY,
  host         TEXT NOT NULL,
  pid          BIGINT NOT NULL,
  started_ms   BIGINT NOT NULL,
  heartbeat_ms BIGINT NOT NULL,
  revision     TEXT,
  load_error   TEXT,
  draining     BOOLEAN NOT NULL DEFAULT FALSE
);
