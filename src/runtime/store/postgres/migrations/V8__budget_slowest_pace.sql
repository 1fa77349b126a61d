-- One pace per shared bucket (issue 18): each replica asks with the limit
-- it believes (its plan's until the account's answers say less), and a
-- replica that just started must not pace the fleet at its plan's limit
-- while another has learned the account's lower one. The bucket keeps the
-- slowest pace any replica asked with, and every replica goes at it.
ALTER TABLE budgets ADD COLUMN t_ms DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE budgets ADD COLUMN tau_ms DOUBLE PRECISION NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION l3map_budget_take(k TEXT, t DOUBLE PRECISION, tau DOUBLE PRECISION)
RETURNS DOUBLE PRECISION LANGUAGE plpgsql AS $$
DECLARE
  now_ms DOUBLE PRECISION := extract(epoch FROM clock_timestamp()) * 1000;
  tat DOUBLE PRECISION;
  kept_t DOUBLE PRECISION;
  kept_tau DOUBLE PRECISION;
  at DOUBLE PRECISION;
BEGIN
  INSERT INTO budgets (key, tat_ms, t_ms, tau_ms) VALUES (k, now_ms, t, tau)
  ON CONFLICT (key) DO NOTHING;
  SELECT tat_ms, t_ms, tau_ms INTO tat, kept_t, kept_tau FROM budgets WHERE key = k FOR UPDATE;
  IF t > kept_t THEN
    kept_t := t;
    kept_tau := tau;
    UPDATE budgets SET t_ms = t, tau_ms = tau WHERE key = k;
  END IF;
  at := GREATEST(tat, now_ms);
  IF at - now_ms > kept_tau THEN
    RETURN at - kept_tau - now_ms;
  END IF;
  UPDATE budgets SET tat_ms = at + kept_t WHERE key = k;
  RETURN 0;
END $$;
