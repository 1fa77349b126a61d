//! The store's tables, how a store written by an older l3map is brought up
//! to date, and the checks a file must pass before the runtime trusts it.
//!
//! Why this shape:
//! - A new store and an upgraded one must be the same thing, so a new store
//!   is created as schema 1 ([`V1`], the tables as first released) and then
//!   goes through [`MIGRATIONS`] like any old store. Every migration is
//!   therefore exercised by every test that opens a store.
//! - All pending migrations run in one transaction at open: a crash or a
//!   failure halfway leaves the store exactly as the older l3map wrote it.
//! - A store is never created in place: a new one is built next to it and
//!   renamed over the path, so a crash while creating leaves either no file
//!   or a complete store, and an empty file is never mistaken for a new one.

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};
use std::path::{Path, PathBuf};

/// The target its log lines had before the module was split, so operators'
/// filters (`RUST_LOG`, alerts on the JSON `target`) keep matching.
const LOG_TARGET: &str = "l3map::runtime::store::schema";

/// The tables as l3map first wrote them (schema 1). Never edited: a change
/// is a new step in [`MIGRATIONS`].
pub(crate) const V1: &str = "
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
";

/// One step from schema `to - 1` to `to`.
pub(crate) struct Migration {
    pub to: i64,
    pub what: &'static str,
    pub apply: fn(&Transaction<'_>) -> rusqlite::Result<()>,
}

/// In order; each runs once, in the same transaction as the others pending
/// and as the new `schema_version`.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        to: 2,
        what: "row counts kept by triggers (O(1) /healthz and /metrics); indexes for the oldest waiting action and for retention",
        apply: v2_counts_and_retention_indexes,
    },
    Migration {
        to: 3,
        what: "the outbox's outage columns (failing_since, outage_tries, parked_for) and the index of outage-parked rows",
        apply: v3_outbox_outage_columns,
    },
    Migration {
        to: 4,
        what: "outbox ids are never reused (AUTOINCREMENT), so an id `l3map outbox` printed always names the same action",
        apply: v4_outbox_ids_never_reused,
    },
    Migration {
        to: 5,
        what: "the credentials table: each connection's OAuth grant, sealed (docs/RUNTIME.md, \"Credentials\")",
        apply: v5_credentials,
    },
];

/// The schema this l3map reads and writes.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map_or(1, |m| m.to)
}

/// Schema 5. One row per connection holding an OAuth grant that must
/// survive a restart (a single-use refresh token rotates on every refresh,
/// so the copy in the environment is stale after the first one).
///
/// - `generation`: +1 on every stored grant; writers compare-and-swap on
///   it, so a second process refreshing the same grant loses cleanly.
///   Bound into the AEAD's associated data with `connection` and `flow`,
///   so a row moved to another connection, or an edited generation,
///   fails authentication instead of decrypting.
/// - `key_id`: which key sealed it (a digest prefix, never the key), so a
///   wrong key is named as such.
/// - `nonce`, `sealed`: ChaCha20-Poly1305 of the grant's JSON (access and
///   refresh token, expiries). Nothing else here is secret: `l3map auth
///   status` reads the other columns without the key.
/// - `refreshing_since_ms`: the durable intent written before a refresh
///   request goes out, cleared by the commit of its answer. Set on an
///   `invalid_grant` it says the answer of a refresh may have been lost.
/// - `state`: `ok`, `needs_login` (the vendor refused the grant) or
///   `undecryptable` (wrong key, or the row was tampered with).
///
/// The design proposed a `slot` column for a standby lineage; there is
/// none yet (see docs/RUNTIME.md), so the connection alone is the key.
fn v5_credentials(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "
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
",
    )
}

/// Schema 4. SQLite gives a new row the largest id + 1, so after `l3map
/// outbox drop` removed the newest dead letter, the next action got its id
/// and a later `outbox retry ID`, typed from the old listing, hit another
/// action. AUTOINCREMENT never hands an id out twice; SQLite cannot add it
/// to a table, so the table is rebuilt with its rows, ids, indexes,
/// triggers and view, in the migration's transaction.
fn v4_outbox_ids_never_reused(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "
CREATE TABLE outbox_v4 (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  key           TEXT NOT NULL UNIQUE,
  event_id      INTEGER NOT NULL REFERENCES events(id),
  connection    TEXT NOT NULL,
  record        TEXT NOT NULL,
  kind          TEXT NOT NULL,
  op            TEXT NOT NULL,
  rule          TEXT NOT NULL,
  source_loc    TEXT NOT NULL,
  revision      TEXT NOT NULL,
  state         TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'done', 'dead')),
  unconfirmed   INTEGER NOT NULL DEFAULT 0,
  attempts      INTEGER NOT NULL DEFAULT 0,
  not_before    INTEGER NOT NULL DEFAULT 0,
  last_error    TEXT,
  created_ms    INTEGER NOT NULL,
  updated_ms    INTEGER NOT NULL,
  failing_since INTEGER,
  outage_tries  INTEGER NOT NULL DEFAULT 0,
  parked_for    TEXT
);
INSERT INTO outbox_v4 (id, key, event_id, connection, record, kind, op, rule, source_loc,
    revision, state, unconfirmed, attempts, not_before, last_error, created_ms, updated_ms,
    failing_since, outage_tries, parked_for)
  SELECT id, key, event_id, connection, record, kind, op, rule, source_loc,
    revision, state, unconfirmed, attempts, not_before, last_error, created_ms, updated_ms,
    failing_since, outage_tries, parked_for
  FROM outbox;
DROP VIEW dead_letters;
DROP TABLE outbox;
ALTER TABLE outbox_v4 RENAME TO outbox;
CREATE INDEX outbox_queue ON outbox(connection, state, record, id);
CREATE INDEX outbox_outage ON outbox(connection, record, id) WHERE parked_for = 'outage';
CREATE INDEX outbox_waiting ON outbox(created_ms) WHERE state IN ('pending', 'sending');
CREATE INDEX outbox_done ON outbox(updated_ms, id) WHERE state = 'done';
CREATE INDEX outbox_event ON outbox(event_id);
CREATE TRIGGER counts_action_in AFTER INSERT ON outbox BEGIN
  INSERT INTO counts (name, n) VALUES (NEW.state, 1)
    ON CONFLICT(name) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER counts_action_out AFTER DELETE ON outbox BEGIN
  UPDATE counts SET n = n - 1 WHERE name = OLD.state;
END;
CREATE TRIGGER counts_action_moved AFTER UPDATE OF state ON outbox
  WHEN OLD.state IS NOT NEW.state BEGIN
  UPDATE counts SET n = n - 1 WHERE name = OLD.state;
  INSERT INTO counts (name, n) VALUES (NEW.state, 1)
    ON CONFLICT(name) DO UPDATE SET n = n + 1;
END;
CREATE VIEW dead_letters AS
  SELECT id, key, connection, record, kind, rule, source_loc, revision, attempts, last_error, updated_ms
  FROM outbox WHERE state = 'dead';
",
    )
}

/// Schema 3, the outbox's retry policy (docs/RUNTIME.md, "Limits and
/// guarantees"):
/// - `failing_since`: when the action first failed because of an outage
///   (ms since 1970; NULL if it has not): the outage window runs from here;
/// - `outage_tries`: how many of its `attempts` were outages, which do not
///   count toward `max_attempts`;
/// - `parked_for`: `'outage'` on a dead letter parked because its
///   connection stayed down past the window (requeued automatically on
///   recovery); NULL on any other row. The partial index `outbox_outage`
///   keeps `claim` from scanning done rows to find them.
fn v3_outbox_outage_columns(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "
ALTER TABLE outbox ADD COLUMN failing_since INTEGER;
ALTER TABLE outbox ADD COLUMN outage_tries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN parked_for TEXT;
CREATE INDEX outbox_outage ON outbox(connection, record, id) WHERE parked_for = 'outage';
",
    )
}

/// Schema 2. `/healthz` and `/metrics` used to count rows (`COUNT(*)` over
/// every event) under the lock the writers share; the counts are now kept
/// by triggers in the same transaction as the rows they count, so they stay
/// right whoever writes (the runtime, `l3map outbox retry` from another
/// process, retention) and reading them is O(1). The upsert in the triggers
/// keeps a state added by a later schema counted without a new row here.
fn v2_counts_and_retention_indexes(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "
CREATE TABLE counts (
  name TEXT PRIMARY KEY,
  n    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counts (name, n) SELECT 'events', COUNT(*) FROM events;
INSERT INTO counts (name, n) SELECT state, COUNT(*) FROM outbox GROUP BY state;
CREATE TRIGGER counts_event_in AFTER INSERT ON events BEGIN
  INSERT INTO counts (name, n) VALUES ('events', 1)
    ON CONFLICT(name) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER counts_event_out AFTER DELETE ON events BEGIN
  UPDATE counts SET n = n - 1 WHERE name = 'events';
END;
CREATE TRIGGER counts_action_in AFTER INSERT ON outbox BEGIN
  INSERT INTO counts (name, n) VALUES (NEW.state, 1)
    ON CONFLICT(name) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER counts_action_out AFTER DELETE ON outbox BEGIN
  UPDATE counts SET n = n - 1 WHERE name = OLD.state;
END;
CREATE TRIGGER counts_action_moved AFTER UPDATE OF state ON outbox
  WHEN OLD.state IS NOT NEW.state BEGIN
  UPDATE counts SET n = n - 1 WHERE name = OLD.state;
  INSERT INTO counts (name, n) VALUES (NEW.state, 1)
    ON CONFLICT(name) DO UPDATE SET n = n + 1;
END;
-- The oldest action not yet applied, without reading the applied ones.
CREATE INDEX outbox_waiting ON outbox(created_ms) WHERE state IN ('pending', 'sending');
-- Retention: done actions by age, events by age, and whether an event
-- still has actions (also what deleting an event checks its foreign key by).
CREATE INDEX outbox_done ON outbox(updated_ms, id) WHERE state = 'done';
CREATE INDEX outbox_event ON outbox(event_id);
CREATE INDEX events_received ON events(received_ms, id);
",
    )
}

/// Why a file is not opened, as one line naming the file and what to do.
pub(crate) fn refuse(path: &Path, what: &str) -> String {
    format!("state store {}: {what}", path.display())
}

/// Opens the store at `path`: creates it when there is no file, refuses a
/// file that is empty, damaged, not an l3map store or from a newer l3map,
/// and migrates an older one in place.
pub(crate) fn open(path: &Path) -> Result<Connection, String> {
    let mut created = false;
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create(path)?;
            created = true;
        }
        Err(e) => return Err(refuse(path, &format!("cannot be read: {e}"))),
        Ok(m) if m.is_dir() => {
            return Err(refuse(
                path,
                "is a folder; `state` names the database file, e.g. .l3map/state.db",
            ))
        }
        // An empty file is not a new store: it is one whose contents were
        // lost (a failed copy, a truncation). Starting on it would forget
        // which events were already decided and where polling stopped. A
        // store whose data is all still in its write-ahead log is not
        // empty, though: SQLite recovers it from the -wal file.
        Ok(m) if m.len() == 0 && !has_wal(path) => {
            return Err(refuse(
                path,
                "is empty (0 bytes), so it is not an l3map store: restore it from a backup, or delete it to start a new store (which forgets the events already decided and the poll cursors)",
            ))
        }
        Ok(_) => {}
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| refuse(path, &format!("cannot be opened: {e}")))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| refuse(path, &e.to_string()))?;
    check_integrity(&conn, path)?;
    // WAL: readers never block the writer, and a committed transaction
    // survives the process being killed. FULL: it survives power loss.
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(|e| refuse(path, &format!("cannot switch to WAL mode: {e}")))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(refuse(
            path,
            &format!("the file system refused WAL mode ({mode}); put the store on a local disk"),
        ));
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
        .map_err(|e| refuse(path, &e.to_string()))?;
    migrate(conn, path, created)
}

fn has_wal(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal)).is_ok_and(|m| m.len() > 0)
}

/// `PRAGMA quick_check`: every page and index entry is readable and well
/// formed (without cross-checking index contents against tables, which
/// `integrity_check` adds at several times the cost). It reads the whole
/// file once, so a large store takes a moment longer to start.
fn check_integrity(conn: &Connection, path: &Path) -> Result<(), String> {
    let damaged = |detail: &str| {
        refuse(
            path,
            &format!(
                "is damaged ({detail}); l3map will not start on it, because it would forget which events were already decided. Restore it from a backup, or recover what is readable with `sqlite3 {} .recover | sqlite3 recovered.db` and point `state` at recovered.db",
                path.display()
            ),
        )
    };
    let mut q = conn
        .prepare("PRAGMA quick_check")
        .map_err(|e| damaged(&not_a_database(&e)))?;
    let problems: Vec<String> = q
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| damaged(&not_a_database(&e)))?;
    match problems.first().map(String::as_str) {
        Some("ok") | None => Ok(()),
        Some(first) => Err(damaged(&format!(
            "quick_check: {}{}",
            first.replace('\n', " "),
            if problems.len() > 1 {
                format!(" and {} more", problems.len() - 1)
            } else {
                String::new()
            }
        ))),
    }
}

fn not_a_database(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => "not an SQLite database".into(),
        _ => e.to_string(),
    }
}

/// Brings the store to [`latest`], in one transaction. A store created a
/// moment ago goes through the same steps, but is not announced as an
/// upgrade: one line says it was created.
fn migrate(mut conn: Connection, path: &Path, created: bool) -> Result<Connection, String> {
    let sql = |e: rusqlite::Error| refuse(path, &e.to_string());
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql)?;
    let has_meta: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
            [],
            |r| r.get(0),
        )
        .map_err(sql)?;
    let version: Option<String> = if has_meta {
        tx.query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql)?
    } else {
        None
    };
    let Some(version) = version else {
        return Err(refuse(
            path,
            "is an SQLite database but not an l3map store (it has no schema version); point `state` at the store `l3map run` created, or at a path that does not exist yet to create one",
        ));
    };
    let latest = latest();
    let version = match version.parse::<i64>() {
        Ok(v) if (1..=latest).contains(&v) => v,
        Ok(v) if v > latest => {
            return Err(refuse(
                path,
                &format!("was written by a newer l3map (schema {v}; this one reads up to {latest}); run that version or a later one"),
            ))
        }
        _ => {
            return Err(refuse(
                path,
                &format!("has an unreadable schema version ({version:?}); restore it from a backup"),
            ))
        }
    };
    for m in MIGRATIONS.iter().filter(|m| m.to > version) {
        (m.apply)(&tx).map_err(|e| {
            refuse(
                path,
                &format!(
                    "cannot be upgraded to schema {} ({e}); nothing was changed, the older l3map still reads it",
                    m.to
                ),
            )
        })?;
        if created {
            tracing::debug!(target: LOG_TARGET, state = %path.display(), to = m.to, "new state store: schema step");
        } else {
            tracing::info!(target: LOG_TARGET, state = %path.display(), from = m.to - 1, to = m.to, what = m.what, "state store upgraded");
        }
    }
    if created {
        tracing::info!(target: LOG_TARGET, state = %path.display(), schema = latest, "state store created");
    }
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
        params![latest.to_string()],
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)?;
    Ok(conn)
}

/// Creates a complete store at `path`: built as `path.new-PID`, synced,
/// then renamed over `path`.
fn create(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| refuse(path, &format!("cannot create its folder: {e}")))?;
    }
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".new-{}", std::process::id()));
    let temp = PathBuf::from(temp);
    let _ = std::fs::remove_file(&temp);
    let built = (|| -> rusqlite::Result<()> {
        let conn = Connection::open(&temp)?;
        // Rollback journal while building: closing leaves one file, no
        // -wal to carry along. WAL is switched on at the first open.
        conn.execute_batch(V1)?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', '1')",
            [],
        )?;
        conn.close().map_err(|(_, e)| e)
    })();
    let done = built
        .map_err(|e| e.to_string())
        .and_then(|()| {
            std::fs::File::open(&temp)
                .and_then(|f| f.sync_all())
                .map_err(|e| e.to_string())
        })
        .and_then(|()| std::fs::rename(&temp, path).map_err(|e| e.to_string()));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&temp);
        return Err(refuse(path, &format!("cannot be created: {e}")));
    }
    // The rename itself is durable once the folder is synced.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(conn: &Connection, key: &str) -> i64 {
        conn.execute(
            "INSERT INTO outbox (key, event_id, connection, record, kind, op, rule, source_loc,
               revision, state, created_ms, updated_ms)
             VALUES (?1, 1, 'desk', '1', 'comment', '{}', 'r', 'a.l3map:1:1', 'rev', 'dead', 0, 0)",
            [key],
        )
        .expect("insert");
        conn.last_insert_rowid()
    }

    #[test]
    fn an_id_of_a_dropped_action_is_never_given_to_a_new_one() {
        let dir = std::env::temp_dir().join(format!("l3map-schema-ids-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("state.db");
        let conn = open(&path).expect("new store");
        conn.execute(
            "INSERT INTO events (id, key, source, received_ms, revision, event, refused)
             VALUES (1, 'e', 'test', 0, 'rev', '{}', '[]')",
            [],
        )
        .expect("event");
        insert(&conn, "a");
        let newest = insert(&conn, "b");
        // `l3map outbox drop` of the newest dead letter.
        conn.execute("DELETE FROM outbox WHERE id = ?1", [newest])
            .expect("drop");
        drop(conn);
        // Also across a reopen: the sequence is in the file.
        let conn = open(&path).expect("reopen");
        let next = insert(&conn, "c");
        assert!(next > newest, "id {newest} was given out again as {next}");
        let dead: i64 = conn
            .query_row("SELECT n FROM counts WHERE name = 'dead'", [], |r| r.get(0))
            .expect("counts kept by the rebuilt triggers");
        assert_eq!(dead, 2);
        let listed: i64 = conn
            .query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))
            .expect("the view is back");
        assert_eq!(listed, 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
