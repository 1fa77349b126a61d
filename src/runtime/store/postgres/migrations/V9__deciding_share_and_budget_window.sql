-- Two fixes the fleet's red team found (issue 18).
--
-- 1. A singleton's share counts only the replicas that can decide. A
--    replica that cannot load the fleet's revision (a rollout of a
--    `connection` change, half done) gives its pollers and CDC channels
--    back; counted among the live replicas, it kept the share of the ones
--    that can decide so small that nobody took them, and the fleet stopped
--    polling. A replica decides when its heartbeat is fresh and the
--    revision it reports is the fleet's active one (any, before there is
--    one).
CREATE OR REPLACE FUNCTION l3map_lease_take(n TEXT, who TEXT, ttl_ms BIGINT, stale_ms BIGINT)
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
  SELECT GREATEST(count(*), 1) INTO live FROM replicas r
    WHERE r.heartbeat_ms >= now_ms - stale_ms
      AND (NOT EXISTS (SELECT 1 FROM fleet_revision)
           OR r.revision = (SELECT f.revision FROM fleet_revision f WHERE f.id = 1));
  SELECT count(*) + 1 INTO total FROM leases WHERE name <> n;
  SELECT count(*) INTO mine FROM leases
    WHERE holder = who AND name <> n AND expires_ms >= now_ms;
  share := (total + live - 1) / live;
  SELECT EXISTS (SELECT 1 FROM leases WHERE name = n AND holder = who AND expires_ms >= now_ms)
    INTO held;
  IF held AND mine + 1 > share THEN
    UPDATE leases SET expires_ms = now_ms - 1 WHERE name = n AND holder = who;
    RETURN NULL;
  END IF;
  IF NOT held AND mine >= share THEN
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

-- 2. The shared bucket keeps a sliding window, as each process's own
--    limiter does. GCRA alone bounds any window only while its pace stays
--    the same; replicas that start together ask at their plan's limit
--    until the account's answers say less, and what went at that pace
--    still counted once the slower one was learned (105 requests in one
--    minute against 100). A log of the requests sent in the last window
--    (at most `lim` rows a key, pruned at every take) holds a request
--    while the window is full at the lowest limit any replica asked with,
--    however the pace changed. Still one round trip per request, and
--    O(1) in the limit: the row keeps the log's count (`sent`), moved
--    under the bucket's row lock with every insert and prune.
ALTER TABLE budgets ADD COLUMN lim INTEGER NOT NULL DEFAULT 0;
ALTER TABLE budgets ADD COLUMN window_ms DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE budgets ADD COLUMN sent BIGINT NOT NULL DEFAULT 0;

CREATE TABLE budget_sends (
  key   TEXT NOT NULL COLLATE "C",
  at_ms DOUBLE PRECISION NOT NULL
);
CREATE INDEX budget_sends_by_key ON budget_sends (key, at_ms);

DROP FUNCTION l3map_budget_take(TEXT, DOUBLE PRECISION, DOUBLE PRECISION);

-- One request of `k` at `lim` per `win` ms, GCRA emission interval `t`
-- and tolerance `tau` (ms): 0 to go now, or how long (ms) to wait before
-- asking again.
CREATE FUNCTION l3map_budget_take(k TEXT, t DOUBLE PRECISION, tau DOUBLE PRECISION,
                                  lim INTEGER, win DOUBLE PRECISION)
RETURNS DOUBLE PRECISION LANGUAGE plpgsql AS $$
DECLARE
  now_ms DOUBLE PRECISION := extract(epoch FROM clock_timestamp()) * 1000;
  tat DOUBLE PRECISION;
  kept_t DOUBLE PRECISION;
  kept_tau DOUBLE PRECISION;
  kept_lim INTEGER;
  kept_win DOUBLE PRECISION;
  sent BIGINT;
  gone BIGINT;
  frees DOUBLE PRECISION;
  at DOUBLE PRECISION;
BEGIN
  INSERT INTO budgets (key, tat_ms, t_ms, tau_ms, lim, window_ms)
  VALUES (k, now_ms, t, tau, GREATEST(lim, 1), win)
  ON CONFLICT (key) DO NOTHING;
  SELECT tat_ms, t_ms, tau_ms, budgets.lim, window_ms, budgets.sent
    INTO tat, kept_t, kept_tau, kept_lim, kept_win, sent
    FROM budgets WHERE key = k FOR UPDATE;
  IF t > kept_t THEN
    kept_t := t;
    kept_tau := tau;
    UPDATE budgets SET t_ms = t, tau_ms = tau WHERE key = k;
  END IF;
  IF kept_lim < 1 OR lim < kept_lim OR win > kept_win THEN
    kept_lim := CASE WHEN kept_lim < 1 THEN GREATEST(lim, 1) ELSE LEAST(kept_lim, GREATEST(lim, 1)) END;
    kept_win := GREATEST(kept_win, win);
    UPDATE budgets SET lim = kept_lim, window_ms = kept_win WHERE key = k;
  END IF;
  WITH d AS (DELETE FROM budget_sends WHERE key = k AND at_ms <= now_ms - kept_win RETURNING 1)
    SELECT count(*) INTO gone FROM d;
  IF gone > 0 THEN
    sent := GREATEST(sent - gone, 0);
    UPDATE budgets SET sent = GREATEST(budgets.sent - gone, 0) WHERE key = k;
  END IF;
  IF sent >= kept_lim THEN
    -- The window has room again when the oldest of the requests over
    -- the limit leaves it.
    SELECT s.at_ms INTO frees FROM budget_sends s WHERE s.key = k
      ORDER BY s.at_ms OFFSET (sent - kept_lim) LIMIT 1;
    RETURN GREATEST(frees + kept_win - now_ms, 1);
  END IF;
  at := GREATEST(tat, now_ms);
  IF at - now_ms > kept_tau THEN
    RETURN at - kept_tau - now_ms;
  END IF;
  UPDATE budgets SET tat_ms = at + kept_t, sent = budgets.sent + 1 WHERE key = k;
  INSERT INTO budget_sends (key, at_ms) VALUES (k, now_ms);
  RETURN 0;
END $$;
