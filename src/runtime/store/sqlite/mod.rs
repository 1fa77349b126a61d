//! The SQLite backend: the whole store in one file in WAL mode, every
//! write through one connection, health and counts read on a second one.
//!
//! Why this shape:
//! - An event, its actions and the source's cursor are written in one
//!   transaction *before* the source is acknowledged, so a `kill -9` at any
//!   moment either keeps all of them or none (and the source redelivers).
//! - An event's key (the source's delivery id) and an action's idempotency
//!   key are UNIQUE: a redelivery or a replay inserts nothing new.
//! - An action is marked `sending` before its request goes out. One found
//!   `sending` after a crash may or may not have been applied; it comes
//!   back *unconfirmed*, and the worker reads the record back before
//!   sending it again.
//!
//! Each concern implements its trait of [`super::api`] in its own file:
//! [`inbox`], [`cursors`], [`outbox`], [`audit`], [`credentials`]; [`lock`] is the
//! one-sender flock, [`schema`] opening (and creating) the file,
//! [`migrate`] the schema's versions, [`retention`] the sweeps. Upkeep is here, beside the connections.

mod audit;
mod console;
mod credentials;
mod cursors;
mod inbox;
mod lock;
mod migrate;
mod outbox;
mod retention;
mod schema;
#[cfg(test)]
mod tests;

pub use migrate::latest;

use super::api::Upkeep;
use super::error::StoreError;
use super::health::WriteHealth;
use super::retention::{Deleted, Retention};
use super::types::SchemaReport;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// SQLite's errors reach the layer above as their message only: no
/// rusqlite type crosses the store's traits.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Backend(e.to_string())
    }
}

/// The store in one SQLite file: what [`Store::open`](super::Store::open)
/// puts behind the handle.
pub struct SqliteStore {
    path: PathBuf,
    /// The one connection every write goes through (shared with the
    /// maintenance thread, which runs retention on it).
    conn: Arc<Mutex<Connection>>,
    /// Health and metrics read here, never through `conn`: in WAL mode a
    /// reader does not block the writer, and they never wait for its lock.
    reader: Mutex<Connection>,
    health: Arc<WriteHealth>,
    deleted: Arc<Deleted>,
    /// Stops the maintenance thread when the store is dropped.
    stop: Arc<AtomicBool>,
    _checkpoints: Checkpointer,
    /// Held by the one process that sends from this store (see
    /// [`lock`]); released when the store is dropped or the process dies.
    sender: Mutex<Option<std::fs::File>>,
    /// The OS locks this process holds on connections whose refresh it
    /// sent and has not yet stored (see [`credentials`]).
    refreshing: Mutex<std::collections::HashMap<String, std::fs::File>>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// WAL checkpoints on a connection and thread of their own. Left to
/// SQLite, a checkpoint runs inside whichever commit crosses the WAL's
/// size, and that event pays for copying and syncing the database file
/// (the benchmark's p99). PASSIVE never blocks the writer; SQLite's own
/// checkpoint at a much larger WAL stays as the backstop.
struct Checkpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Checkpointer {
    const EVERY: std::time::Duration = std::time::Duration::from_millis(500);

    fn start(path: &Path) -> Checkpointer {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, path) = (stop.clone(), path.to_path_buf());
        // Without the thread (none to be had) SQLite's backstop still
        // checkpoints; nothing is lost either way.
        let _ = std::thread::Builder::new()
            .name("l3map-wal-checkpoint".into())
            .spawn(move || {
                let Ok(db) = Connection::open(&path) else {
                    return;
                };
                let _ = db.busy_timeout(std::time::Duration::from_secs(1));
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Self::EVERY);
                    let _ = db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            });
        Checkpointer { stop }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens the store, creating it when there is no file at `path`.
    ///
    /// Refused, with one line naming the file and what to do: an empty
    /// file, a damaged one (`PRAGMA quick_check`), an SQLite file that is
    /// not an l3map store, one written by a newer l3map. A store of an older
    /// l3map is upgraded in place, in one transaction. Opening changes no
    /// outbox row: `l3map outbox` opens the store while `l3map run` is
    /// sending; the runtime calls `recover_in_flight` itself.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let fail = |message: String| StoreError::Open {
            path: path.to_path_buf(),
            message,
        };
        let (conn, _) = schema::open(path).map_err(StoreError::Refused)?;
        // 10,000 pages (about 40 MB): only if the checkpoint thread falls
        // behind.
        conn.execute_batch("PRAGMA wal_autocheckpoint=10000;")
            .map_err(|e| fail(e.to_string()))?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| fail(format!("cannot open a reader: {e}")))?;
        reader
            .busy_timeout(Duration::from_secs(1))
            .map_err(|e| fail(e.to_string()))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
            reader: Mutex::new(reader),
            health: Arc::new(WriteHealth::default()),
            deleted: Arc::new(Deleted::default()),
            stop: Arc::new(AtomicBool::new(false)),
            _checkpoints: Checkpointer::start(path),
            sender: Mutex::new(None),
            refreshing: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// `l3map migrate`: opens the store at `path` (which brings an older
    /// schema up to date, as every open does) and says what it applied;
    /// with `check`, only reads where the schema is (`to` < [`latest`]:
    /// migrations are pending). No file there is refused: `l3map run`
    /// creates the store.
    pub fn migrate_path(path: &Path, check: bool) -> Result<SchemaReport, StoreError> {
        if check {
            let at = schema::status(path).map_err(StoreError::Refused)?;
            return Ok(SchemaReport {
                from: at,
                to: at,
                applied: Vec::new(),
            });
        }
        if !path.exists() {
            return Err(StoreError::Refused(schema::refuse(path, "does not exist")));
        }
        let (_, steps) = schema::open(path).map_err(StoreError::Refused)?;
        Ok(SchemaReport {
            from: steps.first().map_or_else(latest, |s| s.from),
            to: latest(),
            applied: steps.into_iter().map(|s| s.name).collect(),
        })
    }

    /// A panic elsewhere while holding the lock leaves SQLite consistent
    /// (an open transaction is rolled back when dropped).
    fn db(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a write, its outcome recorded for `/healthz` (see
    /// [`super::health`]). A write by another thread in between can only
    /// count as a success, and it is one.
    fn tracked<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        let before = self.db().total_changes();
        let result = f();
        let changed = self.db().total_changes() > before;
        self.health.record(&result, changed);
        result
    }
}

impl Upkeep for SqliteStore {
    fn path(&self) -> &Path {
        &self.path
    }

    fn maintain(&self, retention: Retention) {
        retention::spawn(
            self.conn.clone(),
            self.health.clone(),
            self.deleted.clone(),
            self.stop.clone(),
            retention,
        );
    }

    fn sweep(&self, retention: &Retention, now: i64) -> Result<(u64, u64), StoreError> {
        retention::sweep(&self.conn, &self.health, retention, now, Duration::ZERO)
    }

    fn health(&self) -> &WriteHealth {
        &self.health
    }

    fn deleted(&self) -> &Deleted {
        &self.deleted
    }
}

/// Runs `f` in an IMMEDIATE transaction on `db` and records the outcome in
/// `health`.
fn write<T>(
    db: &mut Connection,
    health: &WriteHealth,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let before = db.total_changes();
    let result = (|| {
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    })();
    health.record(&result, db.total_changes() > before);
    result
}
