//! What a store backend does, one trait per concern. The engine, the
//! workers, the agent API, webhook intake, the pollers and `l3map outbox`
//! hold a [`Store`](super::Store), which calls these; SQLite
//! ([`super::sqlite`]) is the one backend today.
//!
//! # What a second backend must guarantee
//!
//! The crash, store and outbox suites (tests/crash.rs, tests/trust_store.rs,
//! tests/trust_outbox.rs) and `runtime::store::tests` are the contract; in
//! words:
//! - **Durable before answered.** Every method that writes returns only
//!   after its change is durable (SQLite: WAL with `synchronous=FULL`); a
//!   crash at any moment keeps all of a call's changes or none of them.
//! - **Dedupe by event key.** [`Inbox::accept_all`] records an event, its
//!   actions and its source's cursor in one transaction; an event key seen
//!   before (even earlier in the same batch) is a duplicate and writes
//!   nothing but the cursor.
//! - **Exactly-once action keys.** An action's key is unique for all time
//!   (retention never deletes hand-off keys, see
//!   [`HANDOFF_KEY_PREFIX`](super::retention::HANDOFF_KEY_PREFIX)): an action
//!   decided twice (a hand-off decided again by a later event) is queued
//!   once, and the second insert is counted as `already`.
//! - **Atomic claim.** [`Outbox::claim`] moves rows from `pending` to
//!   `sending` in one transaction; no two claims ever return the same row,
//!   and a record never has two groups in flight or one overtaking an
//!   older event's actions (waiting for a retry or parked for an outage).
//! - **Only rows in flight settle.** `retry_later` and `park` change rows
//!   still `sending` and nothing else.
//! - **One sender.** [`Outbox::recover_in_flight`] makes this process the
//!   store's only sender (SQLite: an flock on the file) before it takes
//!   back what a dead one left `sending`; a second sender is refused in one
//!   line, and the claim is released when the process dies.
//! - **Cursors move with their events.** A cursor written with an event is
//!   in the same transaction as the event, so it never points past an
//!   event the store does not hold; the last value written wins.
//! - **Ids are never reused**, even after a dead letter is dropped.
//! - **Health.** Every write's outcome goes to [`Upkeep::health`], so
//!   `/healthz` says "unwritable" until a write that changes rows succeeds.

use super::error::StoreError;
use super::health::WriteHealth;
use super::retention::{Deleted, Retention};
use super::types::{
    Accepted, CredentialState, Group, RefreshLease, Row, SealedCredential, State, Stats,
    StoredCredential, Submission,
};
use super::views::{DeadGroup, DeadQuery, NewReload, Reload, TallyCount, Trail};
use std::path::Path;

/// Events in: what makes a redelivery a duplicate.
pub trait Inbox {
    /// Each submission as if accepted alone, in order, all in one
    /// transaction (group commit): one `fsync` makes all of them durable,
    /// or none of them are. A key repeated within the batch is a duplicate
    /// the second time.
    fn accept_all(&self, batch: &[Submission<'_>]) -> Result<Vec<Accepted>, StoreError>;

    /// The stored (normalised) event with this key, if accepted.
    fn event(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// How many accepted events have a key starting with `prefix`.
    fn events_with_prefix(&self, prefix: &str) -> Result<u64, StoreError>;

    /// The first `limit` accepted events (as recorded, JSON) whose key
    /// starts with `prefix`, in key order.
    fn events_by_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<String>, StoreError>;
}

/// Where each source's polling stopped.
pub trait Cursors {
    fn cursor(&self, source: &str) -> Result<Option<String>, StoreError>;

    /// Moves a cursor on its own (a poll that found no event).
    fn set_cursor(&self, source: &str, value: &str) -> Result<(), StoreError>;
}

/// Actions out: claimed, sent, settled.
pub trait Outbox {
    /// Claims up to `max` groups of one connection that are due at `now`:
    /// for each record, the oldest event's pending actions, unless a
    /// request for the record is in flight or its oldest actions wait for
    /// a retry (later ones wait behind them, so a record's writes land in
    /// the order they were decided). Actions parked by an outage count as
    /// waiting too: they come back when the connection recovers, and the
    /// record's later writes must not overtake them. Claimed rows become
    /// `sending`.
    fn claim(&self, connection: &str, now: i64, max: usize) -> Result<Vec<Group>, StoreError>;

    /// Until when (this process's clock) the claimed rows `ids` are
    /// surely still this process's to send; `None`: as long as it runs (one
    /// sender per store, SQLite). Past it, a row may have been claimed
    /// again by another replica: it is not sent from here.
    fn held_until(&self, _ids: &[i64]) -> Option<std::time::Instant> {
        None
    }

    /// Gives up sending claimed rows `ids` without settling them: their
    /// lease runs out and they are claimed again (read back first).
    fn abandon(&self, _ids: &[i64]) {}

    /// The ops (as stored, JSON) of `record`'s actions applied since
    /// `since_ms`, by any process: l3map's own writes, which a collision
    /// must not take for a person's change.
    fn applied_since(
        &self,
        _connection: &str,
        _record: &str,
        _since_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    /// Applied: never sent again.
    fn done(&self, ids: &[i64]) -> Result<(), StoreError>;

    /// Finished with a note for the audit trail (kept in `last_error`,
    /// which `outbox list` shows): applied after a collision with a
    /// person's change, or superseded by it. Never sent again.
    fn done_noted(&self, ids: &[i64], note: &str) -> Result<(), StoreError>;

    /// [`Self::done_noted`] for actions of which nothing was written, their
    /// keys freed (each becomes `KEY~withdrawn-ID`): a later decision with
    /// the same key is queued and written, not taken for this one.
    fn done_rearmed(&self, ids: &[i64], note: &str) -> Result<(), StoreError>;

    /// Failed in a way worth another try at `not_before` (ms since 1970).
    /// `unconfirmed`: the failure leaves unknown whether it was applied.
    /// `transient`: an outage (connect error, timeout, 5xx, 429, quota),
    /// which does not count toward `max_attempts`; the first one starts
    /// the action's outage clock (`failing_since`). Only rows in flight
    /// change: one a crashed send already recorded `done` stays done.
    fn retry_later(
        &self,
        ids: &[i64],
        error: &str,
        not_before: i64,
        unconfirmed: bool,
        transient: bool,
    ) -> Result<(), StoreError>;

    /// Given up: kept as a dead letter with the reason, for a human.
    /// `outage`: parked because its connection stayed down past the outage
    /// window; such letters come back by themselves when the connection
    /// recovers ([`Outbox::requeue_outage`]). `kind`: the reason's class
    /// (`validation`, `auth`, ...), by which dead letters are grouped and
    /// retried together. Only rows in flight change.
    fn park(&self, ids: &[i64], reason: &str, kind: &str, outage: bool) -> Result<(), StoreError>;

    /// The connection answered again: every letter it parked for an outage
    /// goes back to the queue, unconfirmed (read back before sending) and
    /// with a fresh outage window. Returns the kinds of the rows requeued.
    fn requeue_outage(&self, connection: &str) -> Result<Vec<String>, StoreError>;

    /// Puts the oldest group this connection parked for an outage back in
    /// the queue as a probe: one real request tells whether the connection
    /// is back. Its outage clock is kept, so if the connection is still
    /// down it is parked again after that one try. Returns the kinds of the
    /// rows requeued.
    fn probe_outage(&self, connection: &str) -> Result<Vec<String>, StoreError>;

    /// At the runtime's start: actions left `sending` by a process that
    /// died (`kill -9`, power loss) may or may not have been applied; they
    /// come back `pending` and unconfirmed, so the worker reads the record
    /// back before sending anything again. Only the process that sends
    /// may call this: another one would take back requests in flight.
    ///
    /// It first makes this process the store's only sender: a second
    /// `l3map run` on the same store would take the first one's requests in
    /// flight back and send them again, so it is refused in one line.
    fn recover_in_flight(&self) -> Result<usize, StoreError>;
}

/// What operators read and do: `l3map outbox`, `/healthz`, `/metrics`.
pub trait Audit {
    /// Rows, newest first, optionally of one state.
    fn list(&self, state: Option<State>, limit: usize) -> Result<Vec<Row>, StoreError>;

    /// The outbox rows decided from the event with this key, oldest first.
    fn actions_of(&self, event_key: &str) -> Result<Vec<Row>, StoreError>;

    /// Dead letters back to the queue (all when `ids` is empty), with a
    /// fresh count of attempts, unconfirmed. Returns how many.
    fn requeue_dead(&self, ids: &[i64]) -> Result<usize, StoreError>;

    /// Deletes dead letters (all when `ids` is empty): for actions a human
    /// decided not to apply. Returns how many.
    fn drop_dead(&self, ids: &[i64]) -> Result<usize, StoreError>;

    /// Counts of events and actions by state, and the oldest action not
    /// yet applied, as committed now. Must be cheap (O(1) in SQLite) and
    /// must never wait for a write: `/healthz` polls it.
    fn stats(&self) -> Result<Stats, StoreError>;
}

/// Keeping the store healthy and small.
pub trait Upkeep {
    /// Where the store is, as the operator named it: for messages.
    fn path(&self) -> &Path;

    /// Starts the maintenance thread (retention sweeps, and write probes
    /// while writes fail); `l3map run` does, one-shot commands do not. It
    /// stops when the backend is dropped.
    fn maintain(&self, retention: Retention);

    /// One retention sweep at `now` (ms since 1970), at once: (events, done
    /// actions) deleted.
    fn sweep(&self, retention: &Retention, now: i64) -> Result<(u64, u64), StoreError>;

    /// Every write's outcome, for `/healthz` and the stats snapshot.
    fn health(&self) -> &WriteHealth;

    /// Rows retention deleted since the store was opened.
    fn deleted(&self) -> &Deleted;
}

/// OAuth grants that survive a restart, sealed by the caller (the store
/// never holds a token in the clear). Every write is durable before it
/// returns; [`Credentials::commit_credential`] is a compare-and-swap on the
/// generation, so two processes refreshing one grant (`l3map run` and
/// `l3map schema pull`) cannot both store theirs: the loser reads the
/// winner's.
pub trait Credentials {
    /// The connection's stored grant, if any.
    fn load_credential(&self, connection: &str) -> Result<Option<StoredCredential>, StoreError>;

    /// Records, durably, that a refresh of `generation` is about to be
    /// sent (at `now`, ms since 1970), if no other writer's intent on it is
    /// younger than `stale_before`; `mine` is the stamp of this writer's
    /// own earlier intent (a refresh that failed in transit), which it may
    /// renew.
    fn begin_refresh(
        &self,
        connection: &str,
        generation: i64,
        now: i64,
        mine: Option<i64>,
        stale_before: i64,
    ) -> Result<RefreshLease, StoreError>;

    /// Stores `new` (whose generation must be `expected + 1`, or 1 with
    /// `expected` = `None` for a connection without a row) if the stored
    /// generation is still `expected`; clears the refresh intent and the
    /// state. `false`: another writer got there first, nothing written.
    fn commit_credential(
        &self,
        expected: Option<i64>,
        new: &SealedCredential,
    ) -> Result<bool, StoreError>;

    /// Sets the state of `generation` (a later one is left alone) with a
    /// short reason (never a token).
    fn mark_credential(
        &self,
        connection: &str,
        generation: i64,
        state: CredentialState,
        error: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Every stored grant, by connection (the sealed bytes included, for
    /// a caller that holds the key; `auth status` shows none of them).
    fn credentials(&self) -> Result<Vec<StoredCredential>, StoreError>;
}

/// Singletons: a poller, a CDC subscription, the retention sweep run on
/// one process of those sharing the store at a time.
pub trait Leases {
    /// Takes or renews the singleton `name` for `ttl`: `Some(epoch)` while
    /// this process holds it (the epoch changes only when the holder
    /// does), `None` while another does. A cursor of the same name is then
    /// written only by its holder: one whose lease was taken over cannot
    /// move it.
    fn lease(&self, name: &str, ttl: std::time::Duration) -> Result<Option<i64>, StoreError>;

    /// Gives `name` back (a drain), if this process holds it.
    fn release(&self, name: &str) -> Result<(), StoreError>;

    /// Gives back every singleton lease this process holds (the first
    /// step of a graceful stop): taken over at once by another process;
    /// what this one still writes under them is fenced off.
    fn release_singletons(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Gives back every lease and claim this process holds and leaves the
    /// fleet (the last step of a graceful stop).
    fn release_all(&self) -> Result<(), StoreError>;

    /// Records which revision this process serves and why its last load
    /// was refused, for `l3map status` (a fleet's replicas row).
    fn report_loaded(&self, _revision: &str, _error: Option<&str>) -> Result<(), StoreError> {
        Ok(())
    }

    /// Replicas, leases, queues and shared budgets (`l3map status`).
    fn fleet_status(&self) -> Result<super::types::FleetStatus, StoreError>;

    /// The rate budgets shared with the other processes on this store, if
    /// it has any (PostgreSQL; one process sends from a SQLite store).
    fn shared_budget(
        &self,
    ) -> Option<std::sync::Arc<dyn crate::connectors::shared_budget::SharedBudget>> {
        None
    }
}

/// One mapping revision across a fleet (PostgreSQL): revisions are stored
/// with their sources, one is active, and an event decided by another is
/// refused by [`Inbox::accept_all`] with
/// [`StoreError::RevisionMoved`] (the check and the switch serialise on
/// one row, so nothing decided by the old revision commits after the
/// switch). A SQLite store has none of this: one process decides.
pub trait Revisions {
    /// Stores `bundle` (once per revision) and switches the fleet to it as
    /// `how` says; the active revision afterwards. `None`: no fleet.
    fn publish(
        &self,
        _bundle: &super::types::Bundle,
        _how: super::types::Publish,
        _by: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    /// The revision the fleet decides by (`None`: no fleet, or none yet).
    fn active_revision(&self) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    /// A stored revision's sources.
    fn bundle(&self, _revision: &str) -> Result<Option<super::types::Bundle>, StoreError> {
        Ok(None)
    }
}

/// Agent turns' answers shared by a fleet's replicas (PostgreSQL), kept an
/// hour: a retried turn another replica decided gets that answer. One
/// process keeps its own in memory (SQLite): nothing here.
pub trait TurnAnswers {
    /// Keeps `answer` (JSON) for the turn event `key`, with the digest of
    /// the request that decided it.
    fn keep_answer(&self, _key: &str, _answer: &str, _digest: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// The answer kept for `key` and its request's digest.
    fn kept_answer(&self, _key: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(None)
    }
}

/// What the ops console reads, and the reloads it shows. Every read is an
/// index range with a limit, whatever the store's size.
pub trait Console {
    /// The tallies of `span_ms` buckets from `since_ms` on, summed.
    fn tallies(&self, span_ms: i64, since_ms: i64) -> Result<Vec<TallyCount>, StoreError>;

    /// A page of dead letters, newest first.
    fn dead_letters(&self, q: &DeadQuery) -> Result<Vec<Row>, StoreError>;

    /// The newest [`DEAD_GROUPED`](super::views::DEAD_GROUPED) dead
    /// letters, counted by reason class.
    fn dead_groups(&self) -> Result<Vec<DeadGroup>, StoreError>;

    /// One outbox row.
    fn action(&self, id: i64) -> Result<Option<Row>, StoreError>;

    /// `record`'s events and actions, newest first, at most `limit` of
    /// each, with every attempt of those actions.
    fn trail(&self, record: &str, limit: usize) -> Result<Trail, StoreError>;

    /// Records a reload (and the files of a revision that went live).
    fn record_reload(&self, r: &NewReload<'_>) -> Result<(), StoreError>;

    /// Reloads, newest first, below `before` (an id) when given.
    fn reloads(&self, before: Option<i64>, limit: usize) -> Result<Vec<Reload>, StoreError>;

    /// The files (JSON) of a revision that went live here.
    fn reload_sources(&self, revision: &str) -> Result<Option<String>, StoreError>;
}

/// A whole backend: what [`Store`](super::Store) holds. Implement the five
/// concern traits, keeping the guarantees listed at the top of this file,
/// and this follows; then let `Store::open` (or the configuration) choose it.
pub trait StoreBackend:
    Inbox
    + Cursors
    + Outbox
    + Audit
    + Console
    + Upkeep
    + Credentials
    + Leases
    + Revisions
    + TurnAnswers
    + std::fmt::Debug
    + Send
    + Sync
{
}

impl<T> StoreBackend for T where
    T: Inbox
        + Cursors
        + Outbox
        + Audit
        + Console
        + Upkeep
        + Credentials
        + Leases
        + Revisions
        + TurnAnswers
        + std::fmt::Debug
        + Send
        + Sync
{
}
