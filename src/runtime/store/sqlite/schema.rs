//! Opening the store's file: the checks a file must pass before the
//! runtime trusts it, creating a new store, and bringing an older one up to
//! date (the versions themselves are [`super::migrate`]'s).
//!
//! Why this shape:
//! - A new store and an upgraded one must be the same thing, so a new store
//!   is built by the same migrations, from V1 (the tables as first
//!   released), that bring an old store up to date. Every migration is
//!   therefore exercised by every test that opens a store.
//! - All pending migrations run in one transaction at open: a crash or a
//!   failure halfway leaves the store exactly as the older l3map wrote it.
//! - A store is never created in place: a new one is built next to it and
//!   renamed over the path, so a crash while creating leaves either no file
//!   or a complete store, and an empty file is never mistaken for a new one.

use super::migrate;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};

/// The target its log lines had before the module was split, so operators'
/// filters (`RUST_LOG`, alerts on the JSON `target`) keep matching.
const LOG_TARGET: &str = "l3map::runtime::store::schema";

/// Why a file is not opened, as one line naming the file and what to do.
pub(crate) fn refuse(path: &Path, what: &str) -> String {
    format!("state store {}: {what}", path.display())
}

/// Opens the store at `path`: creates it when there is no file, refuses a
/// file that is empty, damaged, not an l3map store or from a newer l3map,
/// and migrates an older one in place (the steps it applied are returned).
pub(crate) fn open(path: &Path) -> Result<(Connection, Vec<migrate::Step>), String> {
    let created = !found(path)?;
    if created {
        create(path)?;
    }
    let conn = connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
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

/// Whether there is a file at `path` that may be a store: `false` when
/// there is none; refused when it is a folder, unreadable or empty.
fn found(path: &Path) -> Result<bool, String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(refuse(path, &format!("cannot be read: {e}"))),
        Ok(m) if m.is_dir() => Err(refuse(
            path,
            "is a folder; `state` names the database file, e.g. .l3map/state.db",
        )),
        // An empty file is not a new store: it is one whose contents were
        // lost (a failed copy, a truncation). Starting on it would forget
        // which events were already decided and where polling stopped. A
        // store whose data is all still in its write-ahead log is not
        // empty, though: SQLite recovers it from the -wal file.
        Ok(m) if m.len() == 0 && !has_wal(path) => Err(refuse(
            path,
            "is empty (0 bytes), so it is not an l3map store: restore it from a backup, or delete it to start a new store (which forgets the events already decided and the poll cursors)",
        )),
        Ok(_) => Ok(true),
    }
}

/// The schema version of the store at `path`, read on a read-only
/// connection, changing nothing (`l3map migrate --check`): refused as
/// [`open`] refuses, except that the file's pages are not checked.
pub(crate) fn status(path: &Path) -> Result<i64, String> {
    if !found(path)? {
        return Err(refuse(path, "does not exist"));
    }
    let conn = connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(()))
        .map_err(|e| refuse(path, &format!("cannot be read ({})", not_a_database(&e))))?;
    migrate::version(&conn).map_err(|e| refuse(path, &e))
}

/// A connection to the existing file at `path` that waits up to 5 seconds
/// for another process's lock.
fn connect(path: &Path, mode: OpenFlags) -> Result<Connection, String> {
    let conn = Connection::open_with_flags(path, mode | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| refuse(path, &format!("cannot be opened: {e}")))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| refuse(path, &e.to_string()))?;
    Ok(conn)
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

/// Brings the store to the latest schema, in one transaction. A store
/// created a moment ago was built at it, so nothing is pending; one line
/// says it was created. An upgrade logs each step once it is committed.
fn migrate(
    mut conn: Connection,
    path: &Path,
    created: bool,
) -> Result<(Connection, Vec<migrate::Step>), String> {
    let sql = |e: rusqlite::Error| refuse(path, &e.to_string());
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let steps = migrate::upgrade(&tx).map_err(|e| refuse(path, &e))?;
    tx.commit().map_err(sql)?;
    for s in &steps {
        tracing::info!(target: LOG_TARGET, state = %path.display(), from = s.from, to = s.to, what = %s.what, "state store upgraded");
    }
    if created {
        tracing::info!(target: LOG_TARGET, state = %path.display(), schema = migrate::latest(), "state store created");
    }
    Ok((conn, steps))
}

/// Creates a complete store at `path`: built as `path.new-PID` by every
/// migration in one transaction, synced, then renamed over `path`.
fn create(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| refuse(path, &format!("cannot create its folder: {e}")))?;
    }
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".new-{}", std::process::id()));
    let temp = PathBuf::from(temp);
    let _ = std::fs::remove_file(&temp);
    let built = (|| -> Result<(), String> {
        let sql = |e: rusqlite::Error| e.to_string();
        let mut conn = Connection::open(&temp).map_err(sql)?;
        // Rollback journal while building: closing leaves one file, no
        // -wal to carry along. WAL is switched on at the first open.
        let tx = conn.transaction().map_err(sql)?;
        for s in migrate::build(&tx)? {
            tracing::debug!(target: LOG_TARGET, state = %path.display(), to = s.to, "new state store: schema step");
        }
        tx.commit().map_err(sql)?;
        conn.close().map_err(|(_, e)| sql(e))
    })();
    let done = built
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
        let (conn, _) = open(&path).expect("new store");
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
        let (conn, _) = open(&path).expect("reopen");
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
