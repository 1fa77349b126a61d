//! The runtime's durable store: every accepted event, the actions decided
//! from it (the outbox), the sources' cursors, and the dead letters.
//!
//! [`Store`] is the handle the engine, the workers, the agent API, webhook
//! intake, the pollers and `l3map outbox` hold. Behind it is a backend
//! ([`api::StoreBackend`], one trait per concern, with what every backend
//! must guarantee); SQLite in WAL mode ([`sqlite`]) is the one there is.
//! What does not depend on the backend stays here: the stats snapshot
//! `/healthz` serves, the write-health record, the retention policy.
//!
//! Files: [`api`] (the traits), [`types`] (rows, states, submissions),
//! [`error`] (the one error type), [`health`] (is the store writable),
//! [`retention`] (what is kept, and for how long), [`sqlite`].
//!
//! Calls are synchronous and short; the async runtime runs them on the
//! blocking pool (the workers, the pollers, intake) or on the committer's
//! own thread (the engine's group commit).

pub mod api;
pub mod error;
mod group;
mod health;
pub mod postgres;
mod retention;
pub mod sqlite;
#[cfg(test)]
mod tests;
pub mod types;
pub mod views;

pub use error::StoreError;
pub use health::{WriteFailure, WriteHealth};
pub use retention::{Deleted, Retention};
pub use types::{
    now_ms, Accepted, Bundle, Claimed, CredentialState, FleetStatus, Group, NewAction, NewEvent,
    Publish, RefreshLease, Row, SchemaReport, SealedCredential, State, Stats, StoredCredential,
    Submission, Tally,
};

use api::StoreBackend;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The store as the runtime holds it (`Arc<Store>`): a backend behind the
/// traits of [`api`], and the stats snapshot in front of it.
///
/// A concrete handle rather than `Arc<dyn StoreBackend>` at every call
/// site: callers keep one type name and one set of method names whatever
/// the backend, `Store::open` stays the one-line way to get SQLite, and
/// what every backend shares (the snapshot, `accept` of one event, the
/// audit filter) is written once, here.
pub struct Store {
    backend: Box<dyn StoreBackend>,
    /// The last stats read, with when and after how many writes: polls
    /// between two writes share one read, so a flood of `/healthz` costs
    /// the store at most one small read per write (and per `max_age`).
    snapshot: Mutex<Option<(Instant, u64, Stats)>>,
    /// Held while the snapshot is read again, so concurrent callers of a
    /// stale snapshot share one read.
    refresh: Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.backend.path())
            .finish()
    }
}

impl Store {
    /// Opens the SQLite store at `path`, creating it when there is no file
    /// there (see [`sqlite::SqliteStore::open`] for what is refused).
    /// Opening changes no outbox row: `l3map outbox` opens the store while
    /// `l3map run` is sending; the runtime calls
    /// [`Store::recover_in_flight`] itself.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::with_backend(Box::new(sqlite::SqliteStore::open(
            path,
        )?)))
    }

    /// Connects to the PostgreSQL store `target` names (see
    /// [`postgres::PgStore::open`]): what several replicas share.
    pub fn open_postgres(target: &postgres::PgTarget) -> Result<Store, StoreError> {
        Ok(Store::with_backend(Box::new(postgres::PgStore::open(
            target,
        )?)))
    }

    /// [`Store::open_postgres`] for a command that must not change the
    /// schema: an older one is refused (`l3map migrate` first).
    pub fn open_postgres_existing(target: &postgres::PgTarget) -> Result<Store, StoreError> {
        Ok(Store::with_backend(Box::new(
            postgres::PgStore::open_existing(target)?,
        )))
    }

    /// A store on any backend.
    pub fn with_backend(backend: Box<dyn StoreBackend>) -> Store {
        Store {
            backend,
            snapshot: Mutex::new(None),
            refresh: Mutex::new(()),
        }
    }

    /// See [`api::Upkeep::maintain`].
    pub fn maintain(&self, retention: Retention) {
        self.backend.maintain(retention)
    }

    /// See [`api::Upkeep::sweep`].
    pub fn sweep(&self, retention: &Retention, now: i64) -> Result<(u64, u64), StoreError> {
        self.backend.sweep(retention, now)
    }

    /// The last write failure, while no write has succeeded since.
    pub fn write_failure(&self) -> Option<WriteFailure> {
        self.backend.health().current()
    }

    /// Writes that failed since the store was opened.
    pub fn write_failures(&self) -> u64 {
        self.backend.health().failures()
    }

    /// Rows retention deleted since the store was opened.
    pub fn deleted(&self) -> &Deleted {
        self.backend.deleted()
    }

    /// See [`api::Leases::lease`].
    pub fn lease(&self, name: &str, ttl: Duration) -> Result<Option<i64>, StoreError> {
        self.backend.lease(name, ttl)
    }

    /// See [`api::Leases::release`].
    pub fn release(&self, name: &str) -> Result<(), StoreError> {
        self.backend.release(name)
    }

    /// See [`api::Leases::report_loaded`].
    pub fn report_loaded(&self, revision: &str, error: Option<&str>) -> Result<(), StoreError> {
        self.backend.report_loaded(revision, error)
    }

    /// See [`api::Revisions::publish`].
    pub fn publish(
        &self,
        bundle: &Bundle,
        how: Publish,
        by: &str,
    ) -> Result<Option<String>, StoreError> {
        self.backend.publish(bundle, how, by)
    }

    /// See [`api::Revisions::active_revision`].
    pub fn active_revision(&self) -> Result<Option<String>, StoreError> {
        self.backend.active_revision()
    }

    /// See [`api::Revisions::bundle`].
    pub fn bundle(&self, revision: &str) -> Result<Option<Bundle>, StoreError> {
        self.backend.bundle(revision)
    }

    /// See [`api::Outbox::applied_since`].
    pub fn applied_since(
        &self,
        connection: &str,
        record: &str,
        since_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.backend.applied_since(connection, record, since_ms)
    }

    /// See [`api::Outbox::held_until`].
    pub fn held_until(&self, ids: &[i64]) -> Option<std::time::Instant> {
        self.backend.held_until(ids)
    }

    /// See [`api::Outbox::abandon`].
    pub fn abandon(&self, ids: &[i64]) {
        self.backend.abandon(ids)
    }

    /// See [`api::TurnAnswers::keep_answer`].
    pub fn keep_answer(&self, key: &str, answer: &str, digest: &str) -> Result<(), StoreError> {
        self.backend.keep_answer(key, answer, digest)
    }

    /// See [`api::TurnAnswers::kept_answer`].
    pub fn kept_answer(&self, key: &str) -> Result<Option<(String, String)>, StoreError> {
        self.backend.kept_answer(key)
    }

    /// See [`api::Leases::fleet_status`].
    pub fn fleet_status(&self) -> Result<FleetStatus, StoreError> {
        self.backend.fleet_status()
    }

    /// See [`api::Leases::shared_budget`].
    pub fn shared_budget(
        &self,
    ) -> Option<std::sync::Arc<dyn crate::connectors::shared_budget::SharedBudget>> {
        self.backend.shared_budget()
    }

    /// See [`api::Leases::release_singletons`].
    pub fn release_singletons(&self) -> Result<(), StoreError> {
        self.backend.release_singletons()
    }

    /// See [`api::Leases::release_all`].
    pub fn release_all(&self) -> Result<(), StoreError> {
        self.backend.release_all()
    }

    /// See [`api::Outbox::recover_in_flight`].
    pub fn recover_in_flight(&self) -> Result<usize, StoreError> {
        self.backend.recover_in_flight()
    }

    pub fn path(&self) -> &Path {
        self.backend.path()
    }

    /// Whether other processes share this store (a fleet's PostgreSQL; one
    /// process sends from a SQLite file).
    pub fn is_shared(&self) -> bool {
        self.backend.shared_budget().is_some()
    }

    /// What the ops console reads (see [`api::Console`]).
    pub fn console(&self) -> &dyn api::Console {
        &*self.backend
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
    /// see [`api::Inbox::accept_all`].
    pub fn accept_all(&self, batch: &[Submission<'_>]) -> Result<Vec<Accepted>, StoreError> {
        self.backend.accept_all(batch)
    }

    pub fn cursor(&self, source: &str) -> Result<Option<String>, StoreError> {
        self.backend.cursor(source)
    }

    pub fn set_cursor(&self, source: &str, value: &str) -> Result<(), StoreError> {
        self.backend.set_cursor(source, value)
    }

    /// See [`api::Outbox::claim`].
    pub fn claim(&self, connection: &str, now: i64, max: usize) -> Result<Vec<Group>, StoreError> {
        self.backend.claim(connection, now, max)
    }

    /// Applied: never sent again.
    pub fn done(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.backend.done(ids)
    }

    /// See [`api::Outbox::done_noted`].
    pub fn done_noted(&self, ids: &[i64], note: &str) -> Result<(), StoreError> {
        self.backend.done_noted(ids, note)
    }

    /// See [`api::Outbox::done_rearmed`].
    pub fn done_rearmed(&self, ids: &[i64], note: &str) -> Result<(), StoreError> {
        self.backend.done_rearmed(ids, note)
    }

    /// See [`api::Outbox::retry_later`].
    pub fn retry_later(
        &self,
        ids: &[i64],
        error: &str,
        not_before: i64,
        unconfirmed: bool,
        transient: bool,
    ) -> Result<(), StoreError> {
        self.backend
            .retry_later(ids, error, not_before, unconfirmed, transient)
    }

    /// See [`api::Outbox::park`].
    pub fn park(
        &self,
        ids: &[i64],
        reason: &str,
        kind: &str,
        outage: bool,
    ) -> Result<(), StoreError> {
        self.backend.park(ids, reason, kind, outage)
    }

    /// See [`api::Outbox::requeue_outage`].
    pub fn requeue_outage(&self, connection: &str) -> Result<Vec<String>, StoreError> {
        self.backend.requeue_outage(connection)
    }

    /// See [`api::Outbox::probe_outage`].
    pub fn probe_outage(&self, connection: &str) -> Result<Vec<String>, StoreError> {
        self.backend.probe_outage(connection)
    }

    /// Rows, newest first, optionally of one state.
    pub fn list(&self, state: Option<State>, limit: usize) -> Result<Vec<Row>, StoreError> {
        self.backend.list(state, limit)
    }

    /// See [`api::Audit::requeue_dead`].
    pub fn requeue_dead(&self, ids: &[i64]) -> Result<usize, StoreError> {
        self.backend.requeue_dead(ids)
    }

    /// See [`api::Audit::drop_dead`].
    pub fn drop_dead(&self, ids: &[i64]) -> Result<usize, StoreError> {
        self.backend.drop_dead(ids)
    }

    /// The stored (normalised) event with this key, if accepted.
    pub fn event(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.backend.event(key)
    }

    /// How many accepted events have a key starting with `prefix`.
    pub fn events_with_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        self.backend.events_with_prefix(prefix)
    }

    /// See [`api::Inbox::events_by_prefix`].
    pub fn events_by_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        self.backend.events_by_prefix(prefix, limit)
    }

    /// The outbox rows decided from the event with this key, oldest first.
    pub fn actions_of(&self, event_key: &str) -> Result<Vec<Row>, StoreError> {
        self.backend.actions_of(event_key)
    }

    /// See [`api::Audit::stats`].
    pub fn stats(&self) -> Result<Stats, StoreError> {
        self.backend.stats()
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
        let _reading = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        // Read by another caller while this one waited?
        if let Some(s) = self.fresh(max_age) {
            return Ok(s);
        }
        // Before the read: a write landing during it makes this stale.
        let writes = self.backend.health().writes();
        let s = self.backend.stats()?;
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), writes, s));
        Ok(s)
    }

    /// The cached stats, if younger than `max_age` and no write of this
    /// store came since: no I/O, no waiting.
    pub fn fresh(&self, max_age: Duration) -> Option<Stats> {
        match *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((at, writes, s))
                if at.elapsed() < max_age && writes == self.backend.health().writes() =>
            {
                Some(s)
            }
            _ => None,
        }
    }

    /// See [`api::Credentials::load_credential`].
    pub fn load_credential(
        &self,
        connection: &str,
    ) -> Result<Option<StoredCredential>, StoreError> {
        self.backend.load_credential(connection)
    }

    /// See [`api::Credentials::begin_refresh`].
    pub fn begin_refresh(
        &self,
        connection: &str,
        generation: i64,
        now: i64,
        mine: Option<i64>,
        stale_before: i64,
    ) -> Result<RefreshLease, StoreError> {
        self.backend
            .begin_refresh(connection, generation, now, mine, stale_before)
    }

    /// See [`api::Credentials::commit_credential`].
    pub fn commit_credential(
        &self,
        expected: Option<i64>,
        new: &SealedCredential,
    ) -> Result<bool, StoreError> {
        self.backend.commit_credential(expected, new)
    }

    /// See [`api::Credentials::mark_credential`].
    pub fn mark_credential(
        &self,
        connection: &str,
        generation: i64,
        state: CredentialState,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.backend
            .mark_credential(connection, generation, state, error)
    }

    /// See [`api::Credentials::credentials`].
    pub fn credentials(&self) -> Result<Vec<StoredCredential>, StoreError> {
        self.backend.credentials()
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
