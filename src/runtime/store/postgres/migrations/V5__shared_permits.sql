-- Salesforce caps an org's concurrent long-running requests (25 in a
-- production org): the replicas of a fleet share one pool of permits per
-- connected app instead of each capping its own. A permit is a row, held
-- until its request ends; one whose replica stopped beating (killed,
-- stalled, cut off) or whose lease ran out is taken back by the next take
-- (a command that is no replica, `schema pull`, holds its own by lease).
CREATE TABLE permits (
  id         BIGSERIAL PRIMARY KEY,
  key        TEXT NOT NULL,
  holder     TEXT NOT NULL,
  expires_ms DOUBLE PRECISION NOT NULL
);
CREATE INDEX permits_by_key ON permits (key);

-- One permit of `k`'s pool of `cap` for replica `who`, for `lease_ms` at
-- most: its id, or NULL while the pool is full. The pool's advisory lock
-- is the transaction's (PgBouncer's transaction pooling keeps it whole).
CREATE FUNCTION l3map_permit_take(k TEXT, cap INT, lease_ms DOUBLE PRECISION, who TEXT,
                                  stale_ms BIGINT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
  now_ms DOUBLE PRECISION := extract(epoch FROM clock_timestamp()) * 1000;
  held INT;
  got BIGINT;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('l3map-permits:' || k, 0));
  DELETE FROM permits p
  WHERE p.key = k
    AND (p.expires_ms < now_ms
         OR EXISTS (SELECT 1 FROM replicas r
                    WHERE r.id = p.holder AND r.heartbeat_ms < l3map_now_ms() - stale_ms));
  SELECT count(*) INTO held FROM permits WHERE key = k;
  IF held >= cap THEN
    RETURN NULL;
  END IF;
  INSERT INTO permits (key, holder, expires_ms) VALUES (k, who, now_ms + lease_ms)
  RETURNING id INTO got;
  RETURN got;
END $$;
