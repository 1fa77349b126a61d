-- Singletons spread across the replicas (issue 18): a replica takes a
-- free or expired lease only while it holds fewer than its share (the
-- leases over the live replicas, rounded up), and gives one back when it
-- holds more than that (a replica joined), so the pollers, CDC channels
-- and retention of a fleet run on different replicas, not all on the one
-- that started first. A live replica is one whose heartbeat is younger
-- than `stale_ms` (its claims' lease); one that is not counted still
-- renews what it holds. Returns the lease's epoch when `who` holds `n`
-- now, NULL when it does not.
CREATE FUNCTION l3map_lease_take(n TEXT, who TEXT, ttl_ms BIGINT, stale_ms BIGINT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
  now_ms BIGINT := l3map_now_ms();
  live BIGINT;
  total BIGINT;
  mine BIGINT;
  share BIGINT;
  held BOOLEAN;
  got BIGINT;
BEGIN
  SELECT GREATEST(count(*), 1) INTO live FROM replicas WHERE heartbeat_ms >= now_ms - stale_ms;
  SELECT count(*) + 1 INTO total FROM leases WHERE name <> n;
  SELECT count(*) INTO mine FROM leases
    WHERE holder = who AND name <> n AND expires_ms >= now_ms;
  share := (total + live - 1) / live;
  SELECT EXISTS (SELECT 1 FROM leases WHERE name = n AND holder = who AND expires_ms >= now_ms)
    INTO held;
  IF held AND mine + 1 > share THEN
    -- More than its share: this one goes to a replica with room. Run
    -- out, not deleted: it still counts among the fleet's leases.
    UPDATE leases SET expires_ms = now_ms - 1 WHERE name = n AND holder = who;
    RETURN NULL;
  END IF;
  IF NOT held AND mine >= share THEN
    -- Renewing a lease that ran out is still taking it: a replica with
    -- room takes it instead.
    RETURN NULL;
  END IF;
  INSERT INTO leases (name, holder, epoch, expires_ms)
  VALUES (n, who, nextval('epochs'), now_ms + ttl_ms)
  ON CONFLICT (name) DO UPDATE SET
    holder = EXCLUDED.holder,
    epoch = CASE WHEN leases.holder = EXCLUDED.holder THEN leases.epoch ELSE EXCLUDED.epoch END,
    expires_ms = EXCLUDED.expires_ms
  WHERE leases.holder = EXCLUDED.holder OR leases.expires_ms < now_ms
  RETURNING epoch INTO got;
  RETURN got;
END $$;
