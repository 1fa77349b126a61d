-- the credentials table: each connection's OAuth grant, sealed (docs/RUNTIME.md, "Credentials")
--
-- Schema 5. One row per connection holding an OAuth grant that must
-- survive a restart (a single-use refresh token rotates on every refresh,
-- so the copy in the environment is stale after the first one).
--
-- - `generation`: +1 on every stored grant; writers compare-and-swap on
--   it, so a second process refreshing the same grant loses cleanly.
--   Bound into the AEAD's associated data with `connection` and `flow`,
--   so a row moved to another connection, or an edited generation,
--   fails authentication instead of decrypting.
-- - `key_id`: which key sealed it (a digest prefix, never the key), so a
--   wrong key is named as such.
-- - `nonce`, `sealed`: ChaCha20-Poly1305 of the grant's JSON (access and
--   refresh token, expiries). Nothing else here is secret: `l3map auth
--   status` reads the other columns without the key.
-- - `refreshing_since_ms`: the durable intent written before a refresh
--   request goes out, cleared by the commit of its answer. Set on an
--   `invalid_grant` it says the answer of a refresh may have been lost.
-- - `state`: `ok`, `needs_login` (the vendor refused the grant) or
--   `undecryptable` (wrong key, or the row was tampered with).
--
-- The design proposed a `slot` column for a standby lineage; there is
-- none yet (see docs/RUNTIME.md), so the connection alone is the key.
CREATE TABLE credentials (
  connection          TEXT PRIMARY KEY,
  generation          INTEGER NOT NULL,
  flow                TEXT NOT NULL,
  key_id              TEXT NOT NULL,
  nonce               BLOB NOT NULL,
  sealed              BLOB NOT NULL,
  access_expires_ms   INTEGER,
  refresh_expires_ms  INTEGER,
  updated_ms          INTEGER NOT NULL,
  refreshing_since_ms INTEGER,
  state               TEXT NOT NULL DEFAULT 'ok'
                      CHECK (state IN ('ok', 'needs_login', 'undecryptable')),
  last_error          TEXT
);
