//! The store on PostgreSQL: what several `l3map run` replicas share
//! (docs/RUNTIME.md, "Running several replicas").
//!
//! The store traits are synchronous (SQLite answers in microseconds, and
//! the runtime calls them on the blocking pool or the committer's thread).
//! Here each call is a future on a small runtime of the store's own, with
//! tokio-postgres connections from a deadpool pool; the calling thread
//! waits on a channel for its answer. Nothing here blocks an async worker
//! of the runtime's, and nothing depends on which thread calls.
//!
//! What differs from SQLite, because several processes write:
//! - **Claims are leases.** A claimed row records its replica, a lease on
//!   the database's clock (moved on by the replica's heartbeat) and a new
//!   epoch from one sequence. Heads are locked `FOR UPDATE SKIP LOCKED`
//!   inside the claim's transaction only, never across an HTTP call. A row
//!   whose lease ran out (its replica died or stalled) is claimed again,
//!   unconfirmed; settling names the epoch the claim got, so the stalled
//!   replica's late answer changes nothing.
//! - **No single sender.** `recover_in_flight` registers this replica and
//!   starts its heartbeat instead of taking rows back: rows in flight are
//!   another replica's until their lease runs out.
//! - **Deadlocks and serialization failures are retried** (each call is
//!   one transaction, run again from the start).

mod audit;
mod budget;
mod claim;
#[doc(hidden)]
pub mod cluster;
mod console;
mod credentials;
mod inbox;
mod lease;
mod migrate;
mod outbox;
mod replica;
mod retention;
mod revisions;
#[cfg(test)]
mod tests;

use crate::connectors::Secret;
use crate::runtime::store::api::Upkeep;
use crate::runtime::store::error::StoreError;
use crate::runtime::store::health::WriteHealth;
use crate::runtime::store::retention::{Deleted, Retention};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use migrate::{latest, migrate, SchemaReport};

const LOG_TARGET: &str = "l3map::runtime::store::postgres";

/// The longest one store call may take (a pool wait, the transaction and
/// its retries): past it the call fails like a failed write, instead of
/// hanging its caller on a database that stopped answering.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the store is and how to reach it (`[store]` in l3map.toml).
#[derive(Clone, PartialEq)]
pub struct PgTarget {
    /// A libpq URL or key=value string without a password.
    pub url: String,
    /// From `password_env` / `password_file`.
    pub password: Option<Secret>,
    /// Connections in this replica's pool.
    pub pool: usize,
    /// How long a claim (and a singleton lease) outlives a silent replica.
    pub lease: Duration,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("url", &self.url)
            .field("pool", &self.pool)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl PgTarget {
    /// The connection settings, with the password from its reference.
    pub fn config(&self) -> Result<tokio_postgres::Config, String> {
        let mut cfg: tokio_postgres::Config = self
            .url
            .parse()
            .map_err(|e| format!("[store] url is not a PostgreSQL URL: {e}"))?;
        if let Some(p) = &self.password {
            cfg.password(p.expose());
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("l3map");
        }
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(Duration::from_secs(10));
        }
        // A dead peer (a failover, a cut link) is noticed by the kernel.
        cfg.keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        Ok(cfg)
    }

    /// How the store is named in messages: user, hosts, port and
    /// database, never a password.
    pub fn shown(&self) -> String {
        match self.url.parse::<tokio_postgres::Config>() {
            Ok(c) => {
                let hosts: Vec<String> = c
                    .get_hosts()
                    .iter()
                    .map(|h| match h {
                        tokio_postgres::config::Host::Tcp(h) => h.clone(),
                        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                    })
                    .collect();
                let port = c.get_ports().first().copied().unwrap_or(5432);
                format!(
                    "postgres://{}@{}:{port}/{}",
                    c.get_user().unwrap_or(""),
                    hosts.join(","),
                    c.get_dbname().unwrap_or("")
                )
            }
            Err(_) => "postgres://(unparsable url)".into(),
        }
    }
}

pub struct PgStore {
    shown: PathBuf,
    pool: Pool,
    /// `None` only while dropping (see `Drop`).
    rt: Option<tokio::runtime::Runtime>,
    health: Arc<WriteHealth>,
    deleted: Arc<Deleted>,
    /// This process's name in claims, leases and `replicas`.
    replica: Arc<str>,
    lease_ms: i64,
    /// The epoch of each row this replica claimed and has not settled:
    /// settling changes a row only while it still carries that epoch.
    fences: Arc<Mutex<HashMap<i64, i64>>>,
    /// Until when (this process's clock) each claimed row is surely still
    /// this replica's: set at the claim and moved by each heartbeat that
    /// renewed it; past it, the row may be another replica's.
    until: Arc<Mutex<HashMap<i64, std::time::Instant>>>,
    /// The heartbeat is running.
    beating: AtomicBool,
    /// The singleton leases this replica holds, by name, with their epoch:
    /// a cursor of that name is written under it.
    held: Arc<Mutex<HashMap<String, i64>>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("store", &self.shown)
            .field("replica", &self.replica)
            .finish()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping a runtime blocks; a store may be dropped on an async
        // worker, where that panics.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl PgStore {
    /// Connects, checks the schema (a newer one is refused, an older one
    /// migrated) and returns the store. Changes no outbox row.
    pub fn open(target: &PgTarget) -> Result<PgStore, StoreError> {
        PgStore::open_with(target, true)
    }

    /// [`PgStore::open`], an older schema refused instead of migrated
    /// (every command but `l3map run` and `l3map migrate`).
    pub fn open_existing(target: &PgTarget) -> Result<PgStore, StoreError> {
        PgStore::open_with(target, false)
    }

    fn open_with(target: &PgTarget, migrate_older: bool) -> Result<PgStore, StoreError> {
        let shown = target.shown();
        let fail = |message: String| StoreError::Open {
            path: PathBuf::from(&shown),
            message,
        };
        let pool = pool(target, target.pool)
            .map_err(|e| fail(format!("cannot build the connection pool: {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("l3map-postgres")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the store's runtime: {e}")))?;
        let store = PgStore {
            shown: PathBuf::from(&shown),
            pool,
            rt: Some(rt),
            health: Arc::new(WriteHealth::default()),
            deleted: Arc::new(Deleted::default()),
            replica: replica::name().into(),
            lease_ms: i64::try_from(target.lease.as_millis()).unwrap_or(i64::MAX),
            fences: Arc::new(Mutex::new(HashMap::new())),
            until: Arc::new(Mutex::new(HashMap::new())),
            beating: AtomicBool::new(false),
            held: Arc::new(Mutex::new(HashMap::new())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let pool = store.pool.clone();
        let name = shown.clone();
        store.block(async move { migrate::at_start(&pool, &name, migrate_older).await })?;
        Ok(store)
    }

    /// `l3map migrate`: connects to `target` and brings its schema up to
    /// date, or with `check` only reads where it is (`to` < `latest()`:
    /// migrations are pending). Called outside any async runtime.
    pub fn migrate_target(target: &PgTarget, check: bool) -> Result<SchemaReport, StoreError> {
        let shown = target.shown();
        let pool = pool(target, 1).map_err(StoreError::Backend)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        rt.block_on(async move {
            if check {
                migrate::status(&pool, &shown).await
            } else {
                migrate(&pool, &shown).await
            }
        })
    }

    /// This replica's name.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Runs `f` on the store's runtime and waits for it, at most
    /// [`CALL_TIMEOUT`].
    fn block<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let Some(rt) = &self.rt else {
            return Err(StoreError::Backend("the store is closing".into()));
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let answer = tokio::time::timeout(CALL_TIMEOUT, f)
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::Backend(format!(
                        "PostgreSQL did not answer within {} s",
                        CALL_TIMEOUT.as_secs()
                    )))
                });
            let _ = tx.send(answer);
        });
        rx.recv()
            .map_err(|_| StoreError::Backend("the store's call was cancelled".into()))?
    }

    /// A write: `make` builds the transaction's future, run again (a new
    /// future) after a deadlock or a serialization failure; the outcome
    /// goes to the write health `/healthz` reads.
    fn write<T, F>(&self, make: impl Fn() -> F + Send + 'static) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, PgError>> + Send + 'static,
    {
        let result = self.block(async move { retried(make).await });
        self.health.record(&result, result.is_ok());
        result
    }

    /// A read: no retry needed beyond the pool's, and no health record.
    fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, PgError>> + Send + 'static,
    {
        self.block(async move { f.await.map_err(StoreError::from) })
    }
}

/// A pool of at most `size` connections to `target`.
fn pool(target: &PgTarget, size: usize) -> Result<Pool, String> {
    let manager = Manager::from_config(
        target.config()?,
        tokio_postgres::NoTls,
        ManagerConfig {
            // A connection that broke (failover, cut link) is found on its
            // next use and replaced; a full check per checkout would cost
            // a round trip on every call.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| e.to_string())
}

/// Runs `make()` until it is not a deadlock or serialization failure (at
/// most 8 times, with a short growing pause).
async fn retried<T, F>(make: impl Fn() -> F) -> Result<T, StoreError>
where
    F: Future<Output = Result<T, PgError>>,
{
    let mut tries = 0u32;
    loop {
        match make().await {
            Err(e) if e.retryable() && tries < 8 => {
                tries += 1;
                let pause = 5 * u64::from(tries) + fastrand::u64(0..10);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            other => return other.map_err(StoreError::from),
        }
    }
}

/// What a store call can fail with, before it becomes a [`StoreError`].
#[derive(Debug)]
pub(crate) enum PgError {
    Db(tokio_postgres::Error),
    Pool(String),
    Other(String),
    /// An event decided by another revision than the fleet's (the active
    /// one): refused, nothing written.
    Moved(String),
}

impl PgError {
    fn retryable(&self) -> bool {
        use tokio_postgres::error::SqlState;
        match self {
            PgError::Db(e) => matches!(
                e.code(),
                Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE
            ),
            _ => false,
        }
    }
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> PgError {
        PgError::Db(e)
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(e: deadpool_postgres::PoolError) -> PgError {
        PgError::Pool(e.to_string())
    }
}

/// How long before its lease runs out (on this process's clock) a claim
/// is no longer sent: a tenth of the lease and 100 ms, for the time a
/// heartbeat takes and clocks that run at slightly different rates.
fn safe_until(asked: std::time::Instant, lease_ms: i64) -> std::time::Instant {
    let lease = std::time::Duration::from_millis(u64::try_from(lease_ms).unwrap_or(0));
    asked + lease.saturating_sub(lease / 10 + std::time::Duration::from_millis(100))
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> StoreError {
        if let PgError::Moved(active) = e {
            return StoreError::RevisionMoved { active };
        }
        StoreError::Backend(match e {
            // The server's own message and code (`as_db_error`), or the
            // connection's: never the URL or a password.
            PgError::Db(e) => match e.as_db_error() {
                Some(db) => format!("PostgreSQL: {} ({})", db.message(), db.code().code()),
                None => format!("PostgreSQL: {e}"),
            },
            PgError::Pool(m) => format!("PostgreSQL: {m}"),
            PgError::Other(m) | PgError::Moved(m) => m,
        })
    }
}

impl Upkeep for PgStore {
    fn path(&self) -> &Path {
        &self.shown
    }

    fn maintain(&self, retention: Retention) {
        if let Some(rt) = &self.rt {
            rt.spawn(retention::run(
                self.pool.clone(),
                self.health.clone(),
                self.deleted.clone(),
                self.stop.clone(),
                self.replica.clone(),
                self.lease_ms,
                retention,
            ));
        }
    }

    fn sweep(&self, retention: &Retention, now: i64) -> Result<(u64, u64), StoreError> {
        let (pool, r) = (self.pool.clone(), *retention);
        let result = self.block(async move { retention::sweep(&pool, &r, now).await });
        self.health.record(&result, result.is_ok());
        result
    }

    fn health(&self) -> &WriteHealth {
        &self.health
    }

    fn deleted(&self) -> &Deleted {
        &self.deleted
    }
}
