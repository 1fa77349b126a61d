-- One rate budget per vendor account (a Zendesk token, a Salesforce org)
-- shared by every replica: a GCRA bucket, its theoretical arrival time on
-- the database's clock. One round trip per request.
CREATE TABLE budgets (
  key    TEXT PRIMARY KEY,
  tat_ms DOUBLE PRECISION NOT NULL
);

-- One request of `k` with emission interval `t` and tolerance `tau` (ms):
-- 0 to go now, or how long (ms) to wait before asking again.
CREATE FUNCTION l3map_budget_take(k TEXT, t DOUBLE PRECISION, tau DOUBLE PRECISION)
RETURNS DOUBLE PRECISION LANGUAGE plpgsql AS $$
DECLARE
  now_ms DOUBLE PRECISION := extract(epoch FROM clock_timestamp()) * 1000;
  tat DOUBLE PRECISION;
  at DOUBLE PRECISION;
BEGIN
  INSERT INTO budgets (key, tat_ms) VALUES (k, now_ms) ON CONFLICT (key) DO NOTHING;
  SELECT tat_ms INTO tat FROM budgets WHERE key = k FOR UPDATE;
  at := GREATEST(tat, now_ms);
  IF at - now_ms > tau THEN
    RETURN at - tau - now_ms;
  END IF;
  UPDATE budgets SET tat_ms = at + t WHERE key = k;
  RETURN 0;
END $$;

-- The vendor said stop (a 429's Retry-After, an exhausted window): no
-- replica sends on `k` for `pause_ms`.
CREATE FUNCTION l3map_budget_hold(k TEXT, pause_ms DOUBLE PRECISION, tau DOUBLE PRECISION)
RETURNS VOID LANGUAGE SQL AS $$
  INSERT INTO budgets (key, tat_ms)
  VALUES (k, extract(epoch FROM clock_timestamp()) * 1000 + pause_ms + tau)
  ON CONFLICT (key) DO UPDATE SET tat_ms = GREATEST(budgets.tat_ms, EXCLUDED.tat_ms)
$$;
