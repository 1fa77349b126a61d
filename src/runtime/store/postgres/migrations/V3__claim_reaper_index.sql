-- A claim first takes back the rows whose lease ran out: found by their
-- lease, not by scanning every open row of the connection (a ticket with
-- 20,000 queued actions made each claim read them all).
CREATE INDEX outbox_leases ON outbox(connection, lease_until) WHERE state = 'sending';
