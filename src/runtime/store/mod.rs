//! The runtime's durable store: every accepted event, the actions decided
//! from it (the outbox), the sources' cursors, and the dead letters, in one
//! SQLite file in WAL mode.
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
//! Calls are synchronous and short; the async runtime runs them on the
//! blocking pool.

mod health;
mod retention;
mod schema;

pub use health::WriteFailure;
pub use retention::{Deleted, Retention};

use health::WriteHealth;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store {path}: {message}")]
    Open { path: PathBuf, message: String },
    /// Not opened: one line naming the file and what to do.
    #[error("{0}")]
    Refused(String),
    #[error("state store: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The transaction this event was committed in failed (every event of
    /// a group commit gets the same answer).
    #[error("state store: {0}")]
    Batch(String),
}

/// One event as it is accepted.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// The source's delivery id, prefixed by the source: its dedup key.
    pub key: &'a str,
    pub source: &'a str,
    pub revision: &'a str,
    /// The normalised event, JSON.
    pub event: &'a str,
    /// The refusals, JSON (the audit trail keeps them too).
    pub refused: &'a str,
}

/// One event, its actions and its source's new cursor: what
/// [`Store::accept_all`] records together.
#[derive(Debug, Clone)]
pub struct Submission<'a> {
    pub event: NewEvent<'a>,
    pub actions: &'a [NewAction],
    pub cursor: Option<(&'a str, &'a str)>,
}

/// One decided action, ready for the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAction {
    pub key: String,
    pub connection: String,
    pub record: String,
    pub kind: String,
    /// What to send, JSON (the runtime's `Op`).
    pub op: String,
    pub rule: String,
    /// `file:line:col` of the rule in the mappings.
    pub source_loc: String,
    pub revision: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// New: its id, how many of its actions were queued, and how many were
    /// already in the outbox from an earlier event (a hand-off decided
    /// twice, say).
    New {
        event_id: i64,
        queued: usize,
        already: usize,
    },
    /// Seen before: nothing was written (the cursor, if given, still moved).
    Duplicate,
}

/// Actions claimed for one request: one record, one event, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub connection: String,
    pub record: String,
    pub event_id: i64,
    /// Some action may have been applied already (a crash or a lost
    /// answer): read the record back before sending.
    pub unconfirmed: bool,
    pub items: Vec<Claimed>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: i64,
    pub key: String,
    pub kind: String,
    pub op: String,
    pub rule: String,
    pub source_loc: String,
    pub revision: String,
    /// Every try, this one included (outages too).
    pub attempts: u32,
    /// The tries that count toward `max_attempts`, this one included:
    /// every try except those that failed for a transient reason.
    pub counted: u32,
    /// When this action first failed for a transient reason (ms since
    /// 1970), if it has: the outage window is measured from here.
    pub failing_since: Option<i64>,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Sending,
    Done,
    Dead,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sending => "sending",
            State::Done => "done",
            State::Dead => "dead",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "sending" => State::Sending,
            "done" => State::Done,
            "dead" => State::Dead,
            _ => State::Pending,
        }
    }
}

/// An outbox row, for `l3map outbox list` and the tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub id: i64,
    pub key: String,
    pub event_key: String,
    pub connection: String,
    pub record: String,
    pub kind: String,
    pub op: serde_json::Value,
    pub rule: String,
    pub source_loc: String,
    pub revision: String,
    pub state: State,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub events: u64,
    pub pending: u64,
    pub sending: u64,
    pub done: u64,
    pub dead: u64,
    /// When the oldest action not yet applied was decided (ms since 1970).
    pub oldest_waiting_ms: Option<i64>,
}

pub struct Store {
    path: PathBuf,
    /// The one connection every write goes through (shared with the
    /// maintenance thread, which runs retention on it).
    conn: Arc<Mutex<Connection>>,
    /// Health and metrics read here, never through `conn`: in WAL mode a
    /// reader does not block the writer, and they never wait for its lock.
    reader: Mutex<Connection>,
    /// The last stats read, with when and after how many writes: polls
    /// between two writes share one read, so a flood of `/healthz` costs
    /// the store at most one small read per write (and per `max_age`).
    snapshot: Mutex<Option<(Instant, u64, Stats)>>,
    health: Arc<WriteHealth>,
    deleted: Arc<Deleted>,
    /// Stops the maintenance thread when the store is dropped.
    stop: Arc<AtomicBool>,
    _checkpoints: Checkpointer,
    /// Held by the one process that sends from this store (see
    /// [`Store::recover_in_flight`]); released when the store is dropped
    /// or the process dies.
    sender: Mutex<Option<std::fs::File>>,
}

impl Drop for Store {
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

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Store {
    /// Opens the store, creating it when there is no file at `path`.
    ///
    /// Refused, with one line naming the file and what to do: an empty
    /// file, a damaged one (`PRAGMA quick_check`), an SQLite file that is
    /// not an l3map store, one written by a newer l3map. A store of an older
    /// l3map is upgraded in place, in one transaction. Opening changes no
    /// outbox row: `l3map outbox` opens the store while `l3map run` is
    /// sending; the runtime calls [`Store::recover_in_flight`] itself.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let fail = |message: String| StoreError::Open {
            path: path.to_path_buf(),
            message,
        };
        let conn = schema::open(path).map_err(StoreError::Refused)?;
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
        Ok(Store {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
            reader: Mutex::new(reader),
            snapshot: Mutex::new(None),
            health: Arc::new(WriteHealth::default()),
            deleted: Arc::new(Deleted::default()),
            stop: Arc::new(AtomicBool::new(false)),
            _checkpoints: Checkpointer::start(path),
            sender: Mutex::new(None),
        })
    }

    /// Starts the maintenance thread (retention sweeps, and write probes
    /// while writes fail); `l3map run` does, one-shot commands do not.
    pub fn maintain(&self, retention: Retention) {
        retention::spawn(
            self.conn.clone(),
            self.health.clone(),
            self.deleted.clone(),
            self.stop.clone(),
            retention,
        );
    }

    /// One retention sweep at `now` (ms since 1970), at once: (events, done
    /// actions) deleted.
    pub fn sweep(&self, retention: &Retention, now: i64) -> Result<(u64, u64), StoreError> {
        retention::sweep(&self.conn, &self.health, retention, now, Duration::ZERO)
    }

    /// The last write failure, while no write has succeeded since.
    pub fn write_failure(&self) -> Option<WriteFailure> {
        self.health.current()
    }

    /// Writes that failed since the store was opened.
    pub fn write_failures(&self) -> u64 {
        self.health.failures()
    }

    /// Rows retention deleted since the store was opened.
    pub fn deleted(&self) -> &Deleted {
        &self.deleted
    }

    /// Runs a write, its outcome recorded for `/healthz` (see
    /// [`health`]). A write by another thread in between can only count
    /// as a success, and it is one.
    fn tracked<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        let before = self.db().total_changes();
        let result = f();
        let changed = self.db().total_changes() > before;
        self.health.record(&result, changed);
        result
    }

    /// At the runtime's start: actions left `sending` by a process that
    /// died (`kill -9`, power loss) may or may not have been applied; they
    /// come back `pending` and unconfirmed, so the worker reads the record
    /// back before sending anything again. Only the process that sends
    /// may call this: another one would take back requests in flight.
    ///
    /// It first makes this process the store's only sender: a second
    /// `l3map run` on the same file would take the first one's requests in
    /// flight back and send them again, so it is refused in one line.
    pub fn recover_in_flight(&self) -> Result<usize, StoreError> {
        self.claim_sender()?;
        self.tracked(|| {
            Ok(self.db().execute(
                "UPDATE outbox SET state = 'pending', unconfirmed = 1 WHERE state = 'sending'",
                [],
            )?)
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An OS lock (flock) on the database file itself, on its own open
    /// file description: it follows the file, not the path, so a second
    /// runtime reaching the same store through a symlink or a hard link is
    /// refused too. SQLite's locks are POSIX record locks, which flock
    /// neither takes nor disturbs on Unix; elsewhere, where a whole-file
    /// lock would block SQLite's own, the lock is on `<state>.lock` beside
    /// the store's real path. The OS drops it when the process dies, so a
    /// crash never leaves a store that cannot be started. The pid of the
    /// holder is written to `<state>.lock` for the next one's message.
    fn claim_sender(&self) -> Result<(), StoreError> {
        use std::io::{Read, Seek, Write};
        let mut held = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_some() {
            return Ok(());
        }
        let real = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let mut name = real.as_os_str().to_owned();
        name.push(".lock");
        let pid_path = PathBuf::from(name);
        let refuse = |what: String| {
            StoreError::Refused(format!("state store {}: {what}", self.path.display()))
        };
        let open = |path: &Path| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(|e| refuse(format!("cannot open {}: {e}", path.display())))
        };
        let lock_path = if cfg!(unix) {
            real.clone()
        } else {
            pid_path.clone()
        };
        let lock = open(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                if let Ok(mut f) = std::fs::File::open(&pid_path) {
                    let _ = f.read_to_string(&mut pid);
                }
                let pid = pid.trim();
                let who = if pid.is_empty() || pid.len() > 20 {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                };
                return Err(refuse(format!(
                    "another `l3map run` is sending from it{who}; two runtimes on one SQLite store would send the same actions twice. Stop that one, or give this one its own `state` in l3map.toml"
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(refuse(format!("cannot lock {}: {e}", lock_path.display())))
            }
        }
        // Who holds it, for the next one's message; the lock is what counts.
        if let Ok(mut f) = open(&pid_path) {
            let _ = f
                .set_len(0)
                .and_then(|()| f.rewind())
                .and_then(|()| writeln!(f, "{}", std::process::id()));
        }
        *held = Some(lock);
        Ok(())
    }

    /// A panic elsewhere while holding the lock leaves SQLite consistent
    /// (an open transaction is rolled back when dropped).
    fn db(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an event and queues its actions, and moves the source's
    /// cursor, all in one transaction.
    pub fn accept(
        &self,
        ev: &NewEvent<'_>,
        actions: &[NewAction],
        cursor: Option<(&str, &str)>,
    ) -> Result<Accepted, StoreError> {
        let got = self.accept_all(&[Submission {
            event: ev.clone(),
            actions,
            cursor,
        }])?;
        Ok(got[0])
    }

    /// [`Store::accept`] for many events in one transaction (group commit):
    /// one `fsync` makes all of them durable, or none of them are. Each is
    /// decided as if accepted alone, in order: a key repeated within the
    /// batch is a duplicate the second time.
    pub fn accept_all(&self, batch: &[Submission<'_>]) -> Result<Vec<Accepted>, StoreError> {
        self.tracked(|| self.accept_all_once(batch))
    }

    fn accept_all_once(&self, batch: &[Submission<'_>]) -> Result<Vec<Accepted>, StoreError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        let mut results = Vec::with_capacity(batch.len());
        {
            let mut insert_event = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (key, source, received_ms, revision, event, refused)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut insert_action = tx.prepare_cached(
                "INSERT OR IGNORE INTO outbox
                 (key, event_id, connection, record, kind, op, rule, source_loc, revision, state, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?10)",
            )?;
            for Submission {
                event: ev,
                actions,
                cursor,
            } in batch
            {
                if let Some((source, value)) = cursor {
                    set_cursor(&tx, source, value, now)?;
                }
                let inserted = insert_event.execute(params![
                    ev.key,
                    ev.source,
                    now,
                    ev.revision,
                    ev.event,
                    ev.refused
                ])?;
                if inserted == 0 {
                    results.push(Accepted::Duplicate);
                    continue;
                }
                let event_id = tx.last_insert_rowid();
                let mut queued = 0;
                for a in *actions {
                    queued += insert_action.execute(params![
                        a.key,
                        event_id,
                        a.connection,
                        a.record,
                        a.kind,
                        a.op,
                        a.rule,
                        a.source_loc,
                        a.revision,
                        now
                    ])?;
                }
                results.push(Accepted::New {
                    event_id,
                    queued,
                    already: actions.len() - queued,
                });
            }
        }
        tx.commit()?;
        Ok(results)
    }

    pub fn cursor(&self, source: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT value FROM cursors WHERE source = ?1",
                params![source],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn set_cursor(&self, source: &str, value: &str) -> Result<(), StoreError> {
        self.tracked(|| set_cursor(&self.db(), source, value, now_ms()))
    }

    /// Claims up to `max` groups of one connection that are due at `now`:
    /// for each record, the oldest event's pending actions, unless a
    /// request for the record is in flight or its oldest actions wait for
    /// a retry (later ones wait behind them, so a record's writes land in
    /// the order they were decided). Actions parked by an outage count as
    /// waiting too: they come back when the connection recovers, and the
    /// record's later writes must not overtake them. Claimed rows become
    /// `sending`.
    pub fn claim(&self, connection: &str, now: i64, max: usize) -> Result<Vec<Group>, StoreError> {
        self.tracked(|| self.claim_once(connection, now, max))
    }

    fn claim_once(&self, connection: &str, now: i64, max: usize) -> Result<Vec<Group>, StoreError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Each record's oldest unfinished action; one still `sending` means
        // a request for the record is out, and nothing behind it may pass.
        let heads: Vec<(String, i64, i64, String)> = {
            let mut q = tx.prepare_cached(
                "SELECT o.record, o.event_id, o.not_before, o.state FROM outbox o
                 JOIN (SELECT record, MIN(id) AS first FROM (
                         SELECT record, id FROM outbox
                         WHERE connection = ?1 AND state IN ('pending', 'sending')
                         UNION ALL
                         -- Two searches, each on its own index: one OR
                         -- would scan every row of the connection, done
                         -- ones included.
                         SELECT record, id FROM outbox
                         WHERE connection = ?1 AND parked_for = 'outage')
                       GROUP BY record) h
                   ON o.id = h.first
                 ORDER BY o.id",
            )?;
            let rows = q.query_map(params![connection], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut groups = Vec::new();
        for (record, event_id, not_before, state) in heads {
            if groups.len() >= max {
                break;
            }
            if state != "pending" || not_before > now {
                continue;
            }
            let mut items = Vec::new();
            let mut unconfirmed = false;
            {
                let mut q = tx.prepare_cached(
                    "SELECT id, key, kind, op, rule, source_loc, revision, attempts, created_ms, unconfirmed,
                            outage_tries, failing_since
                     FROM outbox
                     WHERE connection = ?1 AND record = ?2 AND event_id = ?3 AND state = 'pending'
                     ORDER BY id",
                )?;
                let rows = q.query_map(params![connection, record, event_id], |r| {
                    let attempts = r.get::<_, u32>(7)?.saturating_add(1);
                    Ok((
                        Claimed {
                            id: r.get(0)?,
                            key: r.get(1)?,
                            kind: r.get(2)?,
                            op: r.get(3)?,
                            rule: r.get(4)?,
                            source_loc: r.get(5)?,
                            revision: r.get(6)?,
                            attempts,
                            counted: attempts.saturating_sub(r.get::<_, u32>(10)?).max(1),
                            failing_since: r.get(11)?,
                            created_ms: r.get(8)?,
                        },
                        r.get::<_, bool>(9)?,
                    ))
                })?;
                for row in rows {
                    let (c, u) = row?;
                    unconfirmed |= u;
                    items.push(c);
                }
            }
            let mut mark = tx.prepare_cached(
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_ms = ?2 WHERE id = ?1",
            )?;
            for c in &items {
                mark.execute(params![c.id, now])?;
            }
            groups.push(Group {
                connection: connection.to_string(),
                record,
                event_id,
                unconfirmed,
                items,
            });
        }
        tx.commit()?;
        Ok(groups)
    }

    /// Applied: never sent again.
    pub fn done(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.tracked(|| {
            self.update_each(
                "UPDATE outbox SET state = 'done', not_before = 0, unconfirmed = 0, updated_ms = ?2
                 WHERE id = ?1",
                ids,
                |id, now| vec![Box::new(id), Box::new(now)],
            )
        })
    }

    /// Failed in a way worth another try at `not_before` (ms since 1970).
    /// `unconfirmed`: the failure leaves unknown whether it was applied.
    /// `transient`: an outage (connect error, timeout, 5xx, 429, quota),
    /// which does not count toward `max_attempts`; the first one starts
    /// the action's outage clock (`failing_since`). Only rows in flight
    /// change: one a crashed send already recorded `done` stays done.
    pub fn retry_later(
        &self,
        ids: &[i64],
        error: &str,
        not_before: i64,
        unconfirmed: bool,
        transient: bool,
    ) -> Result<(), StoreError> {
        let error = error.to_string();
        self.tracked(|| {
            self.update_each(
                "UPDATE outbox SET state = 'pending', last_error = ?3, not_before = ?4,
                   unconfirmed = ?5, updated_ms = ?2,
                   outage_tries = outage_tries + ?6,
                   failing_since = CASE WHEN ?6 = 1 THEN COALESCE(failing_since, ?2) ELSE failing_since END
                 WHERE id = ?1 AND state = 'sending'",
                ids,
                |id, now| {
                    vec![
                        Box::new(id),
                        Box::new(now),
                        Box::new(error.clone()),
                        Box::new(not_before),
                        Box::new(unconfirmed),
                        Box::new(i64::from(transient)),
                    ]
                },
            )
        })
    }

    /// Given up: kept as a dead letter with the reason, for a human.
    /// `outage`: parked because its connection stayed down past the outage
    /// window; such letters come back by themselves when the connection
    /// recovers ([`Store::requeue_outage`]). Only rows in flight change.
    pub fn park(&self, ids: &[i64], reason: &str, outage: bool) -> Result<(), StoreError> {
        let reason = reason.to_string();
        let why = outage.then_some("outage");
        self.tracked(|| {
            self.update_each(
                "UPDATE outbox SET state = 'dead', last_error = ?3, not_before = 0, unconfirmed = 0,
                   parked_for = ?4, updated_ms = ?2 WHERE id = ?1 AND state = 'sending'",
                ids,
                |id, now| {
                    vec![
                        Box::new(id),
                        Box::new(now),
                        Box::new(reason.clone()),
                        Box::new(why),
                    ]
                },
            )
        })
    }

    /// Runs `sql` once per id in one immediate transaction; `?1` is the
    /// id and `?2` now (ms), the rest come from `args`.
    fn update_each(
        &self,
        sql: &str,
        ids: &[i64],
        args: impl Fn(i64, i64) -> Vec<Box<dyn rusqlite::ToSql>>,
    ) -> Result<(), StoreError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut q = tx.prepare_cached(sql)?;
            let now = now_ms();
            for id in ids {
                q.execute(rusqlite::params_from_iter(args(*id, now)))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The connection answered again: every letter it parked for an outage
    /// goes back to the queue, unconfirmed (read back before sending) and
    /// with a fresh outage window. Returns the kinds of the rows requeued.
    pub fn requeue_outage(&self, connection: &str) -> Result<Vec<String>, StoreError> {
        self.tracked(|| self.requeue_outage_once(connection))
    }

    fn requeue_outage_once(&self, connection: &str) -> Result<Vec<String>, StoreError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let kinds = {
            let mut q = tx.prepare_cached(
                "SELECT kind FROM outbox WHERE connection = ?1 AND state = 'dead' AND parked_for = 'outage'",
            )?;
            let kinds = q.query_map(params![connection], |r| r.get::<_, String>(0))?;
            kinds.collect::<Result<Vec<_>, _>>()?
        };
        if !kinds.is_empty() {
            tx.execute(
                "UPDATE outbox SET state = 'pending', unconfirmed = 1, not_before = 0,
                   failing_since = NULL, parked_for = NULL, updated_ms = ?2
                 WHERE connection = ?1 AND state = 'dead' AND parked_for = 'outage'",
                params![connection, now_ms()],
            )?;
        }
        tx.commit()?;
        Ok(kinds)
    }

    /// Puts the oldest group this connection parked for an outage back in
    /// the queue as a probe: one real request tells whether the connection
    /// is back. Its outage clock is kept, so if the connection is still
    /// down it is parked again after that one try. Returns the kinds of the
    /// rows requeued.
    pub fn probe_outage(&self, connection: &str) -> Result<Vec<String>, StoreError> {
        self.tracked(|| self.probe_outage_once(connection))
    }

    fn probe_outage_once(&self, connection: &str) -> Result<Vec<String>, StoreError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows: Vec<(i64, String)> = {
            let mut q = tx.prepare_cached(
                "SELECT o.id, o.kind FROM outbox o JOIN (
                   SELECT record, event_id FROM outbox
                   WHERE connection = ?1 AND state = 'dead' AND parked_for = 'outage'
                   ORDER BY id LIMIT 1) h
                 ON o.record = h.record AND o.event_id = h.event_id
                 WHERE o.connection = ?1 AND o.state = 'dead' AND o.parked_for = 'outage'",
            )?;
            let rows = q.query_map(params![connection], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        {
            let mut q = tx.prepare_cached(
                "UPDATE outbox SET state = 'pending', unconfirmed = 1, not_before = 0,
                   parked_for = NULL, updated_ms = ?2 WHERE id = ?1",
            )?;
            let now = now_ms();
            for (id, _) in &rows {
                q.execute(params![id, now])?;
            }
        }
        tx.commit()?;
        Ok(rows.into_iter().map(|(_, kind)| kind).collect())
    }

    /// Rows, newest first, optionally of one state.
    pub fn list(&self, state: Option<State>, limit: usize) -> Result<Vec<Row>, StoreError> {
        rows(
            &self.db(),
            "WHERE ?1 IS NULL OR o.state = ?1 ORDER BY o.id DESC LIMIT ?2",
            params![
                state.map(State::as_str),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
        )
    }

    /// Dead letters back to the queue (all when `ids` is empty), with a
    /// fresh count of attempts. Returns how many.
    pub fn requeue_dead(&self, ids: &[i64]) -> Result<usize, StoreError> {
        let db = self.db();
        let sql = "UPDATE outbox SET state = 'pending', attempts = 0, outage_tries = 0, failing_since = NULL,
                   parked_for = NULL, not_before = 0, unconfirmed = 1, updated_ms = ?2
                   WHERE state = 'dead' AND (?1 IS NULL OR id = ?1)";
        self.for_ids(&db, sql, ids)
    }

    /// Deletes dead letters (all when `ids` is empty): for actions a human
    /// decided not to apply. Returns how many.
    pub fn drop_dead(&self, ids: &[i64]) -> Result<usize, StoreError> {
        let db = self.db();
        let sql = "DELETE FROM outbox WHERE state = 'dead' AND (?1 IS NULL OR id = ?1) AND ?2 IS NOT NULL";
        self.for_ids(&db, sql, ids)
    }

    fn for_ids(&self, db: &Connection, sql: &str, ids: &[i64]) -> Result<usize, StoreError> {
        let before = db.total_changes();
        let result = Self::for_ids_once(db, sql, ids);
        self.health.record(&result, db.total_changes() > before);
        result
    }

    fn for_ids_once(db: &Connection, sql: &str, ids: &[i64]) -> Result<usize, StoreError> {
        let now = now_ms();
        if ids.is_empty() {
            return Ok(db.execute(sql, params![Option::<i64>::None, now])?);
        }
        let mut n = 0;
        for id in ids {
            n += db.execute(sql, params![Some(*id), now])?;
        }
        Ok(n)
    }

    /// The stored (normalised) event with this key, if accepted.
    pub fn event(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .db()
            .query_row("SELECT event FROM events WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// How many accepted events have a key starting with `prefix`.
    pub fn events_with_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        // `>= prefix AND < prefix + U+FFFF` uses the key's index; LIKE
        // would need escaping and scan.
        let upper = format!("{prefix}\u{ffff}");
        Ok(self.db().query_row(
            "SELECT COUNT(*) FROM events WHERE key >= ?1 AND key < ?2",
            params![prefix, upper],
            |r| r.get(0),
        )?)
    }

    /// The first `limit` accepted events (as recorded, JSON) whose key
    /// starts with `prefix`, in key order.
    pub fn events_by_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        let upper = format!("{prefix}\u{ffff}");
        let db = self.db();
        let mut q = db.prepare(
            "SELECT event FROM events WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3",
        )?;
        let rows = q.query_map(params![prefix, upper, limit], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The outbox rows decided from the event with this key, oldest first.
    pub fn actions_of(&self, event_key: &str) -> Result<Vec<Row>, StoreError> {
        rows(
            &self.db(),
            "WHERE e.key = ?1 ORDER BY o.id",
            params![event_key],
        )
    }

    /// Counts of events and actions by state, and the oldest action not
    /// yet applied, as committed now. O(1): the counts are kept by triggers
    /// (schema 2), the oldest by an index of waiting actions; read on the
    /// reader connection, so it never waits for a write.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        read_stats(&mut self.reader.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// [`Store::stats`], read again only when this process has written
    /// since the last read, or it is older than `max_age` (for writes by
    /// another process, `l3map outbox retry`): what `/healthz` and
    /// `/metrics` serve. An answered event shows in the next poll.
    /// Concurrent callers of a stale snapshot share one read.
    pub fn stats_cached(&self, max_age: Duration) -> Result<Stats, StoreError> {
        if let Some(s) = self.fresh(max_age) {
            return Ok(s);
        }
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        // Read by another caller while this one waited for the reader?
        if let Some(s) = self.fresh(max_age) {
            return Ok(s);
        }
        // Before the read: a write landing during it makes this stale.
        let writes = self.health.writes();
        let s = read_stats(&mut reader)?;
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), writes, s));
        Ok(s)
    }

    /// The cached stats, if younger than `max_age` and no write of this
    /// store came since: no I/O, no waiting.
    pub fn fresh(&self, max_age: Duration) -> Option<Stats> {
        match *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((at, writes, s)) if at.elapsed() < max_age && writes == self.health.writes() => {
                Some(s)
            }
            _ => None,
        }
    }

    /// The revision and rule behind every action applied to a record,
    /// oldest first: the audit trail.
    pub fn audit(&self, connection: &str, record: &str) -> Result<Vec<Row>, StoreError> {
        let mut rows: Vec<Row> = self
            .list(None, usize::MAX)?
            .into_iter()
            .filter(|r| r.connection == connection && r.record == record)
            .collect();
        rows.reverse();
        Ok(rows)
    }
}

/// The counts and the oldest waiting action, in one read transaction so
/// they agree.
fn read_stats(db: &mut Connection) -> Result<Stats, StoreError> {
    let tx = db.transaction()?;
    let mut s = Stats::default();
    {
        let mut q = tx.prepare_cached("SELECT name, n FROM counts")?;
        let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (name, n) = row?;
            let n = u64::try_from(n).unwrap_or(0);
            match name.as_str() {
                "events" => s.events = n,
                "pending" => s.pending = n,
                "sending" => s.sending = n,
                "done" => s.done = n,
                "dead" => s.dead = n,
                _ => {}
            }
        }
    }
    s.oldest_waiting_ms = tx.query_row(
        "SELECT MIN(created_ms) FROM outbox INDEXED BY outbox_waiting
         WHERE state IN ('pending', 'sending')",
        [],
        |r| r.get(0),
    )?;
    tx.finish()?;
    Ok(s)
}

/// Outbox rows with their event's key, filtered and ordered by `tail`.
fn rows(
    db: &Connection,
    tail: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Row>, StoreError> {
    let mut q = db.prepare(&format!(
        "SELECT o.id, o.key, e.key, o.connection, o.record, o.kind, o.op, o.rule, o.source_loc,
                o.revision, o.state, o.attempts, o.last_error, o.created_ms, o.updated_ms
         FROM outbox o JOIN events e ON e.id = o.event_id {tail}"
    ))?;
    let rows = q.query_map(args, |r| {
        let op: String = r.get(6)?;
        Ok(Row {
            id: r.get(0)?,
            key: r.get(1)?,
            event_key: r.get(2)?,
            connection: r.get(3)?,
            record: r.get(4)?,
            kind: r.get(5)?,
            op: serde_json::from_str(&op).unwrap_or(serde_json::Value::String(op)),
            rule: r.get(7)?,
            source_loc: r.get(8)?,
            revision: r.get(9)?,
            state: State::parse(&r.get::<_, String>(10)?),
            attempts: r.get(11)?,
            last_error: r.get(12)?,
            created_ms: r.get(13)?,
            updated_ms: r.get(14)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn set_cursor(db: &Connection, source: &str, value: &str, now: i64) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO cursors (source, value, updated_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(source) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
        params![source, value, now],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "l3map-store-{name}-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("state.db")
    }

    fn action(key: &str, record: &str) -> NewAction {
        NewAction {
            key: key.into(),
            connection: "desk".into(),
            record: record.into(),
            kind: "set_field".into(),
            op: r#"{"op":"zendesk_field","id":1,"value":"x"}"#.into(),
            rule: "map crm -> desk".into(),
            source_loc: "fields.l3map:3:1".into(),
            revision: "r1".into(),
        }
    }

    fn event(key: &str) -> NewEvent<'_> {
        NewEvent {
            key,
            source: "webhook",
            revision: "r1",
            event: "{}",
            refused: "[]",
        }
    }

    #[test]
    fn an_event_is_accepted_once_and_its_actions_queued_once() {
        let s = Store::open(&temp("accept")).unwrap();
        let got = s
            .accept(&event("zd:1"), &[action("a", "7"), action("b", "7")], None)
            .unwrap();
        assert!(matches!(
            got,
            Accepted::New {
                queued: 2,
                already: 0,
                ..
            }
        ));
        assert_eq!(
            s.accept(&event("zd:1"), &[action("a", "7")], None).unwrap(),
            Accepted::Duplicate
        );
        // Another event deciding the same hand-off: queued once.
        let got = s
            .accept(&event("zd:2"), &[action("b", "7"), action("c", "7")], None)
            .unwrap();
        assert!(matches!(
            got,
            Accepted::New {
                queued: 1,
                already: 1,
                ..
            }
        ));
        let st = s.stats().unwrap();
        assert_eq!((st.events, st.pending), (2, 3));
        assert!(st.oldest_waiting_ms.is_some());
    }

    #[test]
    fn a_group_commit_decides_each_event_as_if_alone() {
        let s = Store::open(&temp("batch")).unwrap();
        s.accept(&event("old"), &[action("k-old", "7")], None)
            .unwrap();
        let (a1, a2, a3) = (
            [action("k1", "7")],
            [action("k1", "7"), action("k2", "8")],
            [action("k3", "9")],
        );
        let got = s
            .accept_all(&[
                Submission {
                    event: event("e1"),
                    actions: &a1,
                    cursor: Some(("zendesk_poll", "c1")),
                },
                // The same key again within the batch: a duplicate.
                Submission {
                    event: event("e1"),
                    actions: &a3,
                    cursor: Some(("zendesk_poll", "c2")),
                },
                // A new event whose first action an earlier one queued.
                Submission {
                    event: event("e2"),
                    actions: &a2,
                    cursor: None,
                },
                Submission {
                    event: event("old"),
                    actions: &a3,
                    cursor: None,
                },
            ])
            .unwrap();
        assert!(matches!(
            got[0],
            Accepted::New {
                queued: 1,
                already: 0,
                ..
            }
        ));
        assert_eq!(got[1], Accepted::Duplicate);
        assert!(matches!(
            got[2],
            Accepted::New {
                queued: 1,
                already: 1,
                ..
            }
        ));
        assert_eq!(got[3], Accepted::Duplicate);
        let st = s.stats().unwrap();
        // old, e1, e2; k-old, k1, k2 (k3 belonged only to duplicates).
        assert_eq!((st.events, st.pending), (3, 3));
        assert_eq!(s.cursor("zendesk_poll").unwrap().as_deref(), Some("c2"));
    }

    #[test]
    fn the_cursor_moves_with_the_event_even_when_it_is_a_duplicate() {
        let s = Store::open(&temp("cursor")).unwrap();
        assert_eq!(s.cursor("zendesk_poll").unwrap(), None);
        s.accept(&event("e1"), &[], Some(("zendesk_poll", "c1")))
            .unwrap();
        s.accept(&event("e1"), &[], Some(("zendesk_poll", "c2")))
            .unwrap();
        assert_eq!(s.cursor("zendesk_poll").unwrap().as_deref(), Some("c2"));
    }

    #[test]
    fn a_record_is_claimed_one_event_at_a_time_in_order() {
        let s = Store::open(&temp("claim")).unwrap();
        s.accept(&event("e1"), &[action("a1", "7"), action("a2", "7")], None)
            .unwrap();
        s.accept(&event("e2"), &[action("b1", "7")], None).unwrap();
        s.accept(&event("e3"), &[action("c1", "8")], None).unwrap();
        let now = now_ms();
        let g = s.claim("desk", now, 10).unwrap();
        let keys: Vec<Vec<&str>> = g
            .iter()
            .map(|g| g.items.iter().map(|c| c.key.as_str()).collect())
            .collect();
        assert_eq!(keys, vec![vec!["a1", "a2"], vec!["c1"]]);
        assert!(g.iter().all(|g| !g.unconfirmed && g.items[0].attempts == 1));
        // Both records are in flight: nothing more to claim.
        assert!(s.claim("desk", now, 10).unwrap().is_empty());
        // e1 waits for a retry: e2 (same record) waits behind it.
        let ids: Vec<i64> = g[0].items.iter().map(|c| c.id).collect();
        s.retry_later(&ids, "HTTP 503", now + 60_000, false, false)
            .unwrap();
        assert!(s.claim("desk", now, 10).unwrap().is_empty());
        let later = s.claim("desk", now + 60_000, 10).unwrap();
        assert_eq!(later[0].items[0].key, "a1");
        assert_eq!(later[0].items[0].attempts, 2);
        s.done(&ids).unwrap();
        let next = s.claim("desk", now, 10).unwrap();
        assert_eq!(next[0].items[0].key, "b1");
        // Another connection's queue is separate.
        assert!(s.claim("crm", now, 10).unwrap().is_empty());
    }

    #[test]
    fn a_crash_while_sending_leaves_the_action_unconfirmed() {
        let path = temp("crash");
        {
            let s = Store::open(&path).unwrap();
            s.accept(&event("e1"), &[action("a", "7")], None).unwrap();
            let g = s.claim("desk", now_ms(), 10).unwrap();
            assert_eq!(g.len(), 1);
            // Dropped without done(): the process died mid-request.
        }
        let s = Store::open(&path).unwrap();
        // Another process opening the store (`l3map outbox list`) takes
        // nothing back; the runtime's start does.
        assert!(s.claim("desk", now_ms(), 10).unwrap().is_empty());
        assert_eq!(s.recover_in_flight().unwrap(), 1);
        let g = s.claim("desk", now_ms(), 10).unwrap();
        assert_eq!(g.len(), 1);
        assert!(g[0].unconfirmed);
        assert_eq!(g[0].items[0].attempts, 2);
    }

    #[test]
    fn dead_letters_are_listed_requeued_and_dropped() {
        let s = Store::open(&temp("dead")).unwrap();
        s.accept(&event("e1"), &[action("a", "7"), action("b", "8")], None)
            .unwrap();
        let g = s.claim("desk", now_ms(), 10).unwrap();
        for grp in &g {
            let ids: Vec<i64> = grp.items.iter().map(|c| c.id).collect();
            s.park(&ids, "Zendesk: rejected (HTTP 422): Status invalid", false)
                .unwrap();
        }
        let dead = s.list(Some(State::Dead), 10).unwrap();
        assert_eq!(dead.len(), 2);
        assert_eq!(dead[0].event_key, "e1");
        assert_eq!(
            dead[0].last_error.as_deref(),
            Some("Zendesk: rejected (HTTP 422): Status invalid")
        );
        assert_eq!(dead[0].op["op"], "zendesk_field");
        assert_eq!(s.requeue_dead(&[dead[0].id]).unwrap(), 1);
        assert_eq!(s.stats().unwrap().dead, 1);
        let again = s.claim("desk", now_ms(), 10).unwrap();
        assert!(again[0].unconfirmed, "a requeued letter is read back first");
        assert_eq!(again[0].items[0].attempts, 1);
        assert_eq!(s.drop_dead(&[]).unwrap(), 1);
        assert_eq!(s.stats().unwrap().dead, 0);
        // Only dead letters can be dropped.
        assert_eq!(s.drop_dead(&[again[0].items[0].id]).unwrap(), 0);
    }

    #[test]
    fn outage_retries_do_not_count_and_start_the_outage_clock_once() {
        let s = Store::open(&temp("outage-tries")).unwrap();
        s.accept(&event("e1"), &[action("a", "7")], None).unwrap();
        let now = now_ms();
        let ids = |g: &[Group]| g[0].items.iter().map(|c| c.id).collect::<Vec<_>>();
        let g = s.claim("desk", now, 10).unwrap();
        assert_eq!(g[0].items[0].failing_since, None);
        s.retry_later(&ids(&g), "could not connect", 0, false, true)
            .unwrap();
        let g = s.claim("desk", now, 10).unwrap();
        let first = g[0].items[0].failing_since.expect("the outage clock runs");
        assert_eq!((g[0].items[0].attempts, g[0].items[0].counted), (2, 1));
        s.retry_later(&ids(&g), "HTTP 503", 0, true, true).unwrap();
        let g = s.claim("desk", now, 10).unwrap();
        assert_eq!(g[0].items[0].failing_since, Some(first), "kept, not reset");
        assert!(g[0].unconfirmed);
        // An auth error counts.
        s.retry_later(&ids(&g), "HTTP 401", 0, false, false)
            .unwrap();
        let g = s.claim("desk", now, 10).unwrap();
        assert_eq!((g[0].items[0].attempts, g[0].items[0].counted), (4, 2));
    }

    #[test]
    fn an_outage_letter_holds_its_record_and_comes_back_on_recovery() {
        let s = Store::open(&temp("outage-park")).unwrap();
        s.accept(&event("e1"), &[action("a1", "7"), action("a2", "7")], None)
            .unwrap();
        s.accept(&event("e2"), &[action("b1", "7")], None).unwrap();
        s.accept(&event("e3"), &[action("c1", "8")], None).unwrap();
        let now = now_ms();
        let g = s.claim("desk", now, 10).unwrap();
        let (seven, eight): (Vec<i64>, Vec<i64>) = (
            g[0].items.iter().map(|c| c.id).collect(),
            g[1].items.iter().map(|c| c.id).collect(),
        );
        s.park(&seven, "down past the window", true).unwrap();
        s.park(&eight, "HTTP 422", false).unwrap();
        // e2 waits behind the outage letters of its record.
        assert!(s.claim("desk", now, 10).unwrap().is_empty());
        // A probe puts the oldest outage group back, unconfirmed.
        assert_eq!(s.probe_outage("desk").unwrap().len(), 2);
        let probe = s.claim("desk", now, 10).unwrap();
        assert_eq!(probe.len(), 1);
        assert!(probe[0].unconfirmed);
        assert_eq!(probe[0].items[0].key, "a1");
        s.park(&seven, "still down", true).unwrap();
        assert!(s.probe_outage("crm").unwrap().is_empty());
        // Recovery: the outage letters go back; the 422 stays for a human.
        assert_eq!(s.requeue_outage("desk").unwrap().len(), 2);
        assert!(s.requeue_outage("desk").unwrap().is_empty());
        assert_eq!(s.stats().unwrap().dead, 1);
        let back = s.claim("desk", now, 10).unwrap();
        assert_eq!(back[0].items[0].key, "a1");
        assert!(back[0].unconfirmed);
        assert_eq!(back[0].items[0].failing_since, None, "a fresh window");
    }

    #[test]
    fn schema_3_adds_the_outage_columns_to_a_schema_2_store_in_place() {
        let path = temp("columns");
        {
            let s = Store::open(&path).unwrap();
            s.accept(&event("e1"), &[action("a", "7")], None).unwrap();
        }
        {
            // The outbox as schema 2 had it, with its row kept.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "DROP INDEX outbox_outage;
                 ALTER TABLE outbox DROP COLUMN failing_since;
                 ALTER TABLE outbox DROP COLUMN outage_tries;
                 ALTER TABLE outbox DROP COLUMN parked_for;
                 UPDATE meta SET value = '2' WHERE key = 'schema_version';",
            )
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
        s.park(&[g[0].items[0].id], "HTTP 422", false).unwrap();
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
            c.execute_batch(schema::V1).unwrap();
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
        assert_eq!(v, schema::latest().to_string());
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
    fn retention_keeps_what_is_still_needed() {
        let s = Store::open(&temp("retention")).unwrap();
        let mut handoff = action("h0123-1.2.0-t7", "7");
        handoff.kind = "comment".into();
        s.accept(&event("old-done"), &[action("x1", "1")], None)
            .unwrap();
        s.accept(&event("old-handoff"), &[handoff], None).unwrap();
        s.accept(&event("old-dead"), &[action("x3", "3")], None)
            .unwrap();
        s.accept(&event("old-bare"), &[], None).unwrap();
        for g in s.claim("desk", now_ms(), 10).unwrap() {
            let ids: Vec<i64> = g.items.iter().map(|c| c.id).collect();
            if g.record == "3" {
                s.park(&ids, "HTTP 422", false).unwrap();
            } else {
                s.done(&ids).unwrap();
            }
        }
        let r = Retention {
            events: Some(Duration::from_secs(60)),
            done_actions: Some(Duration::from_secs(60)),
        };
        // Nothing is old yet.
        assert_eq!(s.sweep(&r, now_ms()).unwrap(), (0, 0));
        let later = now_ms() + 120_000;
        // The plain done action and its event go, and the bare event; the
        // hand-off, the dead letter and their events stay.
        assert_eq!(s.sweep(&r, later).unwrap(), (2, 1));
        assert!(s.event("old-done").unwrap().is_none());
        assert!(s.event("old-bare").unwrap().is_none());
        assert!(s.event("old-handoff").unwrap().is_some());
        assert!(s.event("old-dead").unwrap().is_some());
        let st = s.stats().unwrap();
        assert_eq!((st.events, st.done, st.dead), (2, 1, 1));
        assert_eq!(s.sweep(&r, later).unwrap(), (0, 0));
        // Keeping for good deletes nothing.
        let keep = Retention {
            events: None,
            done_actions: None,
        };
        assert_eq!(s.sweep(&keep, later + 10_000_000).unwrap(), (0, 0));
    }

    #[test]
    fn a_failed_write_marks_the_store_unwritable_until_one_succeeds() {
        let path = temp("unwritable");
        let s = Store::open(&path).unwrap();
        assert!(s.write_failure().is_none());
        // Another process holds the write lock past the busy timeout.
        s.db().busy_timeout(Duration::from_millis(50)).unwrap();
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
}
