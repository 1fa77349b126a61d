//! SQLite's own: its schema and migrations, files that are not stores,
//! counts kept by triggers whoever writes, a lock held by another process.

use super::migrate;
use super::SqliteStore;
use crate::runtime::store::tests::{action, event, temp};
use crate::runtime::store::*;
use rusqlite::{Connection, TransactionBehavior};
use std::time::Duration;

/// What schema 6 added, taken away again: a store as an l3map before it
/// left it.
const UNDO_6: &str = "DROP TRIGGER attempts_settled; DROP TRIGGER attempts_requeued;
    DROP TRIGGER attempts_gone; DROP TABLE attempts; DROP TABLE tallies; DROP TABLE reloads;
    DROP TABLE reload_sources; DROP INDEX events_record; DROP INDEX outbox_record;
    DROP INDEX outbox_dead; DROP INDEX outbox_dead_kind;
    ALTER TABLE events DROP COLUMN record; ALTER TABLE outbox DROP COLUMN parked_kind;";

#[test]
fn schema_3_adds_the_outage_columns_to_a_schema_2_store_in_place() {
    let path = temp("columns");
    {
        let s = Store::open(&path).unwrap();
        s.accept(&event("e1"), &[action("a", "7")], None).unwrap();
    }
    {
        // The outbox as schema 2 had it, with its row kept (and no
        // table of a later schema), as an l3map before refinery left it.
        let c = Connection::open(&path).unwrap();
        c.execute_batch(&format!(
            "{UNDO_6}
             DROP TABLE refinery_schema_history;
             DROP TABLE credentials;
             DROP INDEX outbox_outage;
             ALTER TABLE outbox DROP COLUMN failing_since;
             ALTER TABLE outbox DROP COLUMN outage_tries;
             ALTER TABLE outbox DROP COLUMN parked_for;
             UPDATE meta SET value = '2' WHERE key = 'schema_version';"
        ))
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    let g = s.claim("desk", now_ms(), 10).unwrap();
    assert_eq!(g[0].items[0].key, "a");
    assert_eq!(g[0].items[0].failing_since, None);
    s.retry_later(&[g[0].items[0].id], "HTTP 503", 0, false, true)
        .unwrap();
    drop(s);
    // Opening again adds nothing twice, and keeps what was written.
    let s = Store::open(&path).unwrap();
    let g = s.claim("desk", now_ms(), 10).unwrap();
    assert!(g[0].items[0].failing_since.is_some());
}

#[test]
fn a_store_from_another_version_is_refused() {
    let path = temp("version");
    drop(Store::open(&path).unwrap());
    let c = Connection::open(&path).unwrap();
    c.execute(
        "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(c);
    let err = Store::open(&path).unwrap_err().to_string();
    assert!(err.contains("newer l3map (schema 99"), "{err}");
    let junk = temp("junk");
    std::fs::create_dir_all(junk.parent().unwrap()).unwrap();
    std::fs::write(&junk, b"this is not a database at all, not even close").unwrap();
    let err = Store::open(&junk).unwrap_err().to_string();
    assert!(err.contains("not an SQLite database"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn counts_follow_every_writer_including_another_process() {
    let path = temp("counts");
    let s = Store::open(&path).unwrap();
    s.accept(&event("e1"), &[action("a", "7"), action("b", "8")], None)
        .unwrap();
    let g = s.claim("desk", now_ms(), 10).unwrap();
    s.park(&[g[0].items[0].id], "HTTP 422", "validation", false)
        .unwrap();
    // `l3map outbox retry` and `drop` run in another process, on
    // another connection.
    // Opening it changes nothing in flight: `b` stays `sending`.
    let other = Store::open(&path).unwrap();
    assert_eq!(other.requeue_dead(&[]).unwrap(), 1);
    let st = s.stats().unwrap();
    assert_eq!(
        (st.events, st.pending, st.sending, st.done, st.dead),
        (1, 1, 1, 0, 0)
    );
    s.done(&[g[1].items[0].id]).unwrap();
    let direct = Connection::open(&path).unwrap();
    let (pending, done): (u64, u64) = direct
        .query_row(
            "SELECT SUM(state = 'pending'), SUM(state = 'done') FROM outbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let st = s.stats().unwrap();
    assert_eq!((st.pending, st.done, st.sending), (pending, done, 0));
    assert_eq!((pending, done), (1, 1));
    // The snapshot is served until this store writes again, or until
    // it is older than asked (another process's writes).
    let cached = s.stats_cached(Duration::from_secs(60)).unwrap();
    assert_eq!(s.fresh(Duration::from_secs(60)), Some(cached));
    s.accept(&event("e2"), &[], None).unwrap();
    assert_eq!(s.fresh(Duration::from_secs(60)), None);
    let now = s.stats_cached(Duration::from_secs(60)).unwrap();
    assert_eq!(now.events, 2);
    other.accept(&event("e3"), &[], None).unwrap();
    assert_eq!(s.stats_cached(Duration::from_secs(60)).unwrap(), now);
    assert_eq!(s.stats_cached(Duration::ZERO).unwrap().events, 3);
}

#[test]
fn a_schema_1_store_is_upgraded_in_place_keeping_everything() {
    let path = temp("upgrade");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(STEPS[0]).unwrap();
        c.execute_batch(
            "INSERT INTO meta VALUES ('schema_version', '1');
             INSERT INTO events VALUES (1, 'zd:1', 'webhook', 5, 'r1', '{}', '[]');
             INSERT INTO outbox (id, key, event_id, connection, record, kind, op, rule, source_loc, revision, state, created_ms, updated_ms)
               VALUES (1, 'k1', 1, 'desk', '7', 'set_field', '{}', 'r', 'f:1:1', 'r1', 'dead', 5, 5);
             INSERT INTO cursors VALUES ('zendesk_poll', 'c-42', 5);",
        )
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.cursor("zendesk_poll").unwrap().as_deref(), Some("c-42"));
    assert_eq!(
        s.accept(&event("zd:1"), &[], None).unwrap(),
        Accepted::Duplicate
    );
    let st = s.stats().unwrap();
    assert_eq!((st.events, st.dead), (1, 1));
    let v: String = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, migrate::latest().to_string());
}

#[test]
fn an_empty_file_or_a_foreign_database_is_not_a_store() {
    let path = temp("empty");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"").unwrap();
    let err = Store::open(&path).unwrap_err().to_string();
    assert!(err.contains("is empty (0 bytes)"), "{err}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as found");
    let other = temp("foreign");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let err = Store::open(&other).unwrap_err().to_string();
    assert!(err.contains("not an l3map store"), "{err}");
}

#[test]
fn a_failed_write_marks_the_store_unwritable_until_one_succeeds() {
    let path = temp("unwritable");
    // The store's writer gives up on a held lock after 50 ms.
    let sqlite = SqliteStore::open(&path).unwrap();
    sqlite.db().busy_timeout(Duration::from_millis(50)).unwrap();
    let s = Store::with_backend(Box::new(sqlite));
    assert!(s.write_failure().is_none());
    // Another process holds the write lock past the busy timeout.
    let mut blocker = Connection::open(&path).unwrap();
    let tx = blocker
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    assert!(s.accept(&event("e1"), &[], None).is_err());
    let f = s.write_failure().expect("unwritable");
    assert!(f.error.contains("locked"), "{f:?}");
    assert_eq!(s.write_failures(), 1);
    drop(tx);
    // A write that changes nothing proves nothing.
    assert!(s.claim("desk", now_ms(), 10).unwrap().is_empty());
    assert!(s.write_failure().is_some());
    s.accept(&event("e1"), &[], None).unwrap();
    assert!(s.write_failure().is_none());
}

#[test]
fn schema_5_adds_the_credentials_table_to_a_schema_4_store_keeping_its_rows() {
    let path = temp("credentials");
    {
        let s = Store::open(&path).unwrap();
        s.accept(&event("e1"), &[action("a", "7")], None).unwrap();
    }
    {
        let c = Connection::open(&path).unwrap();
        // Schema 4 as an l3map before refinery left it.
        c.execute_batch(&format!(
            "{UNDO_6}
             DROP TABLE refinery_schema_history;
             DROP TABLE credentials;
             UPDATE meta SET value = '4' WHERE key = 'schema_version';"
        ))
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.claim("desk", now_ms(), 10).unwrap()[0].items[0].key, "a");
    assert!(s.credentials().unwrap().is_empty());
    let row = crate::runtime::store::SealedCredential {
        connection: "desk".into(),
        generation: 1,
        flow: "zendesk_code".into(),
        key_id: "00000000".into(),
        nonce: vec![0; 12],
        sealed: vec![1, 2, 3],
        access_expires_ms: None,
        refresh_expires_ms: None,
    };
    assert!(s.commit_credential(None, &row).unwrap());
    // A generation that does not follow the expected one is a bug, refused.
    assert!(s.commit_credential(Some(3), &row).is_err());
}

/// The steps as the l3map before refinery ran them (schema 1, then each
/// upgrade): the statements its `V1` and migration functions held, to the
/// byte; the files add only the comments at their head.
const STEPS: [&str; 5] = [
    include_str!("migrations/V1__first_release_tables.sql"),
    include_str!("migrations/V2__counts_and_retention_indexes.sql"),
    include_str!("migrations/V3__outbox_outage_columns.sql"),
    include_str!("migrations/V4__outbox_ids_never_reused.sql"),
    include_str!("migrations/V5__credentials.sql"),
];

/// A store at schema `version` as the l3map before refinery left it:
/// in WAL mode, its tables, `meta.schema_version`, one event, one dead letter and a
/// cursor, and no refinery history.
fn before_refinery(name: &str, version: usize) -> std::path::PathBuf {
    let path = temp(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let c = Connection::open(&path).unwrap();
    c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .unwrap();
    for step in &STEPS[..version] {
        c.execute_batch(step).unwrap();
    }
    c.execute_batch(&format!(
        "INSERT INTO meta VALUES ('schema_version', '{version}');
         INSERT INTO events (id, key, source, received_ms, revision, event, refused)
           VALUES (1, 'zd:1', 'webhook', 5, 'r1', '{{}}', '[]');
         INSERT INTO outbox (id, key, event_id, connection, record, kind, op, rule, source_loc, revision, state, created_ms, updated_ms)
           VALUES (1, 'k1', 1, 'desk', '7', 'set_field', '{{}}', 'r', 'f:1:1', 'r1', 'dead', 5, 5);
         INSERT INTO cursors VALUES ('zendesk_poll', 'c-42', 5);"
    ))
    .unwrap();
    path
}

/// refinery's history of a store: version, name, checksum.
fn history(path: &std::path::Path) -> Vec<(i64, String, String)> {
    let c = Connection::open(path).unwrap();
    let mut q = c
        .prepare("SELECT version, name, checksum FROM refinery_schema_history ORDER BY version")
        .unwrap();
    let rows = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

fn meta_version(path: &std::path::Path) -> String {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// Opening `path` is refused in one line that says `says`.
fn refused(path: &std::path::Path, says: &str) -> String {
    let err = Store::open(path).unwrap_err().to_string();
    assert!(err.contains(says), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn a_store_from_before_refinery_is_adopted_and_upgraded_in_one_open() {
    let fresh = temp("adopt-fresh");
    drop(Store::open(&fresh).unwrap());
    let ours = history(&fresh);
    assert_eq!(ours.len() as i64, migrate::latest());
    // The release before refinery's newest schema (nothing to apply) and
    // an older one (adopted up to 4, then V5 applied).
    for version in [STEPS.len(), 4] {
        let path = before_refinery(&format!("adopt-{version}"), version);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.cursor("zendesk_poll").unwrap().as_deref(), Some("c-42"));
        assert_eq!(
            s.accept(&event("zd:1"), &[], None).unwrap(),
            Accepted::Duplicate
        );
        assert_eq!(s.stats().unwrap().dead, 1);
        assert!(s.credentials().unwrap().is_empty());
        drop(s);
        // The rows refinery itself writes for these migrations: the
        // same versions, names and checksums.
        assert_eq!(history(&path), ours, "schema {version}");
        assert_eq!(meta_version(&path), migrate::latest().to_string());
        // And it opens again, its history checked against this binary's.
        drop(Store::open(&path).unwrap());
    }
}

#[test]
fn a_store_whose_upgrade_fails_is_left_as_the_older_l3map_wrote_it() {
    let path = before_refinery("adopt-fails", 4);
    // Something that stops V5 (a table of its name already there).
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE credentials (x)")
        .unwrap();
    let err = refused(&path, "cannot be upgraded to schema 5");
    assert!(err.contains("already exists"), "{err}");
    // Neither the adoption nor any step was kept.
    let c = Connection::open(&path).unwrap();
    let adopted: bool = c
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'refinery_schema_history')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!adopted);
    assert_eq!(meta_version(&path), "4");
}

#[test]
fn a_refinery_history_newer_than_this_l3map_is_refused() {
    let path = temp("history-newer");
    drop(Store::open(&path).unwrap());
    let (latest, next) = (migrate::latest(), migrate::latest() + 1);
    Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (?1, 'from_a_newer_l3map', '2030-01-01T00:00:00Z', '1')",
            [next],
        )
        .unwrap();
    refused(
        &path,
        &format!("was written by a newer l3map (schema {next}; this one reads up to {latest})"),
    );
    assert_eq!(history(&path).len() as i64, next, "left as found");
}

#[test]
fn an_applied_migration_edited_since_is_refused() {
    let path = temp("history-edited");
    drop(Store::open(&path).unwrap());
    let (_, name, checksum) = history(&path).remove(2);
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE refinery_schema_history SET checksum = ?1 WHERE version = 3",
            [format!("{checksum}1")],
        )
        .unwrap();
    refused(
        &path,
        &format!("applied migration V3__{name} differs from this l3map's"),
    );
}

#[test]
fn openers_at_once_of_a_store_from_before_refinery_upgrade_it_once() {
    let path = before_refinery("adopt-race", 1);
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || Store::open(&path).map(drop))
        })
        .collect();
    for o in opens {
        o.join().unwrap().unwrap();
    }
    assert_eq!(history(&path).len() as i64, migrate::latest());
}
