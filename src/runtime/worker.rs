//! One worker per connection (so per token): claims due groups from the
//! outbox, applies them with the connectors, and records the outcome. The
//! connector's own limiter paces the requests; the worker only bounds how
//! many records are in flight at once.
//!
//! Two things keep a passing fault from becoming work for a human:
//! - An outcome that cannot be recorded (the store is locked or failing)
//!   is recorded again with backoff until it is, so the record never stays
//!   `sending` until a restart with its later actions stuck behind it.
//! - Actions parked because their connection stayed down past the outage
//!   window come back by themselves: the first request that succeeds on
//!   the connection requeues them all, and while none does, one of them is
//!   put back as a probe every `retry_max_secs`.

use super::apply::batch::{self, MAX_BATCH};
use super::apply::{Applier, Outcome, Results, Tries};
use super::engine::Engine;
use super::store::{now_ms, Group, Store, StoreError};
use crate::connectors::backoff::Backoff;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How often an idle worker looks for retries that came due.
const IDLE_POLL: Duration = Duration::from_millis(250);

/// Recording an outcome again after a store error: from this...
const RECORD_RETRY_MIN: Duration = Duration::from_millis(100);
/// ...doubling up to this. Short: the record waits behind it.
const RECORD_RETRY_MAX: Duration = Duration::from_secs(5);

/// A line of the per-action log: what the demo shows and the logs keep.
#[derive(Debug, Clone)]
pub struct Report {
    pub connection: String,
    pub record: String,
    pub rule: String,
    pub kind: String,
    pub source_loc: String,
    pub revision: String,
    pub outcome: Outcome,
    /// From decision to this outcome.
    pub latency: Duration,
}

pub type ReportSink = Arc<dyn Fn(&Report) + Send + Sync>;

/// What the worker's in-flight tasks share about the connection.
struct Connection {
    name: String,
    /// Whether the store may hold actions this connection parked for an
    /// outage. True at start (a previous run may have parked some); set
    /// after every such park; cleared before each look, so a park racing
    /// the look sets it again.
    outage_parked: AtomicBool,
}

/// Runs until `stop` turns true, then finishes what is in flight.
pub async fn run(
    engine: Arc<Engine>,
    applier: Arc<Applier>,
    connection: String,
    concurrency: usize,
    mut stop: watch::Receiver<bool>,
    report: Option<ReportSink>,
) {
    let mut in_flight: JoinSet<()> = JoinSet::new();
    // Each in-flight task's group, so a task that panics (a bug) does not
    // leave its record `sending` until a restart.
    let mut groups: HashMap<tokio::task::Id, Vec<Group>> = HashMap::new();
    // A Zendesk connection claims up to a bulk update's worth of tickets
    // per free slot: groups sharing one update go out as one job.
    let batching = applier.batches(&connection);
    let concurrency = concurrency.max(1);
    let conn = Arc::new(Connection {
        name: connection.clone(),
        outage_parked: AtomicBool::new(true),
    });
    // A parked connection is probed at the backoff's cap: as often as a
    // long outage is retried anyway.
    let probe_every = applier.retries().max;
    let mut next_probe = tokio::time::Instant::now() + probe_every;
    loop {
        if *stop.borrow() {
            break;
        }
        if tokio::time::Instant::now() >= next_probe {
            next_probe = tokio::time::Instant::now() + probe_every;
            probe(&engine, &conn).await;
        }
        let room = concurrency.saturating_sub(in_flight.len());
        if room > 0 {
            let store = engine.store.clone();
            let name = connection.clone();
            let want = if batching { room * MAX_BATCH } else { room };
            let claimed = tokio::task::spawn_blocking(move || store.claim(&name, now_ms(), want))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            match claimed {
                Ok(claimed_groups) => {
                    let claimed_groups = super::screen::screen(&engine, claimed_groups).await;
                    let (bulk, single) = if batching {
                        batch::plan(&applier, claimed_groups)
                    } else {
                        (vec![], claimed_groups)
                    };
                    for b in bulk {
                        let (engine, applier, report, conn) = (
                            engine.clone(),
                            applier.clone(),
                            report.clone(),
                            conn.clone(),
                        );
                        let task = b.clone();
                        let handle = in_flight.spawn(async move {
                            let ids: Vec<i64> = task.iter().flat_map(ids_of).collect();
                            let sent = fenced(&engine.store, ids, applier.apply_batch(&task));
                            if let Some(results) = sent.await {
                                settle_batch(&engine, &conn, &task, results, report.as_ref()).await;
                            }
                        });
                        groups.insert(handle.id(), b);
                    }
                    // Groups sent alone share the free slots: at most
                    // `room` tasks, each sending its groups one by one.
                    for chunk in spread(single, room) {
                        let (engine, applier, report, conn) = (
                            engine.clone(),
                            applier.clone(),
                            report.clone(),
                            conn.clone(),
                        );
                        let task = chunk.clone();
                        let handle = in_flight.spawn(async move {
                            for g in &task {
                                let sent =
                                    fenced(&engine.store, ids_of(g).collect(), applier.apply(g));
                                if let Some(results) = sent.await {
                                    settle(&engine, &conn, g, results, report.as_ref()).await;
                                }
                            }
                        });
                        groups.insert(handle.id(), chunk);
                    }
                }
                Err(e) => {
                    tracing::error!(connection = %connection, error = %e, "cannot read the outbox");
                }
            }
        }
        tokio::select! {
            _ = engine.wake.notified() => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
            Some(done) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                finished(&engine, &applier, &mut groups, done).await;
            }
            _ = stop.changed() => {}
        }
    }
    // Graceful shutdown: what was sent is seen through and recorded; what
    // was not claimed stays queued for the next start.
    while let Some(done) = in_flight.join_next_with_id().await {
        finished(&engine, &applier, &mut groups, done).await;
    }
}

fn ids_of(g: &Group) -> impl Iterator<Item = i64> + '_ {
    g.items.iter().map(|c| c.id)
}

/// `send`, unless the claim of `ids` may have run out first (this
/// replica stalled, or was cut off from the store, past its lease): then
/// it is dropped, before its request if it was still waiting for the
/// token's budget, and the rows are left for their lease to run out
/// (another replica claims them again, reads the record back, and sends
/// what is missing). Checked first whenever the task wakes (`biased`), so
/// a replica continued after a stall never sends on a claim it lost.
async fn fenced<T>(
    store: &Store,
    ids: Vec<i64>,
    send: impl std::future::Future<Output = T>,
) -> Option<T> {
    if store.held_until(&ids).is_none() {
        return Some(send.await);
    }
    let lost = async {
        loop {
            let now = tokio::time::Instant::now();
            match store.held_until(&ids) {
                Some(t) if t <= now.into_std() => return,
                Some(t) => {
                    let at = tokio::time::Instant::from_std(t);
                    tokio::time::sleep_until(at.min(now + Duration::from_millis(250))).await;
                }
                None => std::future::pending::<()>().await,
            }
        }
    };
    tokio::select! {
        biased;
        _ = lost => {
            store.abandon(&ids);
            tracing::warn!(actions = ?ids, "a claim ran out before its request was sent (this replica stalled or lost the store); left for another replica, which reads the record back first");
            None
        }
        r = send => Some(r),
    }
}

/// `groups` in at most `n` lists (none empty), in order.
fn spread(groups: Vec<Group>, n: usize) -> Vec<Vec<Group>> {
    let per = groups.len().div_ceil(n.max(1)).max(1);
    let mut out = Vec::new();
    let mut it = groups.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(per).collect());
    }
    out
}

/// Records a bulk update's results, ticket by ticket, and counts the job.
async fn settle_batch(
    engine: &Engine,
    conn: &Connection,
    groups: &[Group],
    results: Vec<Results>,
    report: Option<&ReportSink>,
) {
    let count = |want: fn(&Outcome) -> bool| {
        results
            .iter()
            .filter(|r| r.iter().any(|(_, o)| want(o)))
            .count() as u64
    };
    let applied = count(|o| {
        matches!(
            o,
            Outcome::Applied
                | Outcome::Settled {
                    superseded: false,
                    ..
                }
        )
    });
    let retried = count(|o| matches!(o, Outcome::Retry { .. }));
    let parked = count(|o| matches!(o, Outcome::Park { .. }));
    let whole_failed = applied == 0
        && results.iter().all(|r| {
            r.iter().all(|(_, o)| {
                !matches!(
                    o,
                    Outcome::Retry { kind: "job", .. } | Outcome::Park { kind: "job", .. }
                )
            })
        });
    engine
        .metrics
        .batch(if whole_failed { "failed" } else { "completed" });
    engine.metrics.batch_tickets("applied", applied);
    engine.metrics.batch_tickets("retried", retried);
    engine.metrics.batch_tickets("parked", parked);
    tracing::info!(
        connection = %conn.name, tickets = groups.len(), applied, retried, parked,
        "bulk update finished"
    );
    for (g, r) in groups.iter().zip(results) {
        settle(engine, conn, g, r, report).await;
    }
}

/// A task ended. One that panicked never recorded its outcome: its group
/// goes back to the queue unconfirmed (read back before anything is sent
/// again), counting as a failed try, and is parked after `max_attempts`
/// such tries rather than panicking forever.
async fn finished(
    engine: &Engine,
    applier: &Applier,
    groups: &mut HashMap<tokio::task::Id, Vec<Group>>,
    done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) {
    let (id, err) = match done {
        Ok((id, ())) => (id, None),
        Err(e) => (e.id(), Some(e)),
    };
    let Some(gs) = groups.remove(&id) else {
        return;
    };
    let Some(err) = err else {
        return;
    };
    // A group the task settled before it failed is `done` or waiting;
    // recording the failure again only touches rows still `sending`
    // (read back before anything is sent again).
    for g in gs {
        panicked(engine, applier, &g, &err).await;
    }
}

async fn panicked(engine: &Engine, applier: &Applier, g: &Group, err: &tokio::task::JoinError) {
    let tries = Tries::of(g, now_ms());
    let error = format!("l3map failed while sending this ({err}); this is a bug, please report it");
    let outcome = if tries.counted >= applier.retries().max_attempts {
        Outcome::Park {
            reason: error,
            kind: "bug",
            outage: false,
        }
    } else {
        Outcome::Retry {
            error,
            after: applier.retries().backoff(tries.total),
            unconfirmed: true,
            transient: false,
            kind: "bug",
        }
    };
    tracing::error!(connection = %g.connection, record = %g.record, error = %err, "a send failed inside l3map");
    let ids: Vec<i64> = g.items.iter().map(|c| c.id).collect();
    record(engine, g, &ids, &outcome).await;
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes one outcome, again and again with backoff until the store takes
/// it: the request went out and its outcome is known, so giving up here
/// would leave the record `sending` (and every later action of it waiting)
/// until a restart. A shutdown meanwhile leaves it `sending`, which the
/// next start reads back, so nothing is lost or doubled either way.
async fn record(engine: &Engine, g: &Group, ids: &[i64], outcome: &Outcome) {
    let mut waits = Backoff::new(RECORD_RETRY_MIN, RECORD_RETRY_MAX).bounds();
    let mut failures = 0u32;
    loop {
        let (ids2, o) = (ids.to_vec(), outcome.clone());
        let saved = blocking(&engine.store, move |store| match &o {
            Outcome::Applied => store.done(&ids2),
            Outcome::Settled {
                note, rearm: true, ..
            } => store.done_rearmed(&ids2, note),
            Outcome::Settled { note, .. } => store.done_noted(&ids2, note),
            Outcome::Retry {
                error,
                after,
                unconfirmed,
                transient,
                ..
            } => {
                let at = now_ms() + i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 2);
                store.retry_later(&ids2, error, at, *unconfirmed, *transient)
            }
            Outcome::Park {
                reason,
                kind,
                outage,
            } => store.park(&ids2, reason, kind, *outage),
        })
        .await;
        match saved {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(
                        connection = %g.connection, record = %g.record, failures,
                        "recorded an outcome the store had refused"
                    );
                }
                return;
            }
            Err(e) => {
                failures += 1;
                // Once, then every 20th failure (about every 100 s at the
                // cap): a locked store must not flood the log.
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::error!(
                        connection = %g.connection, record = %g.record, failures, error = %e,
                        "cannot record an outcome in the outbox; trying again"
                    );
                }
                tokio::time::sleep(waits.next().unwrap_or(RECORD_RETRY_MAX)).await;
            }
        }
    }
}

/// A request on the connection succeeded: anything it parked for an
/// outage goes back to the queue.
async fn recovered(engine: &Engine, conn: &Connection) {
    if !conn.outage_parked.swap(false, Ordering::SeqCst) {
        return;
    }
    let name = conn.name.clone();
    match blocking(&engine.store, move |s| s.requeue_outage(&name)).await {
        Ok(kinds) if kinds.is_empty() => {}
        Ok(kinds) => {
            for k in &kinds {
                engine.metrics.action(k, "requeued");
            }
            tracing::info!(
                connection = %conn.name, requeued = kinds.len(),
                "the connection answers again: requeued the actions an outage had parked"
            );
        }
        Err(e) => {
            conn.outage_parked.store(true, Ordering::SeqCst);
            tracing::error!(connection = %conn.name, error = %e, "cannot requeue the actions an outage parked");
        }
    }
}

/// Puts one group parked by an outage back in the queue, so a real request
/// finds out whether the connection is back.
async fn probe(engine: &Engine, conn: &Connection) {
    if !conn.outage_parked.swap(false, Ordering::SeqCst) {
        return;
    }
    let name = conn.name.clone();
    match blocking(&engine.store, move |s| s.probe_outage(&name)).await {
        Ok(kinds) if kinds.is_empty() => {}
        Ok(kinds) => {
            conn.outage_parked.store(true, Ordering::SeqCst);
            for k in &kinds {
                engine.metrics.action(k, "requeued");
            }
            engine.wake.notify_one();
            tracing::info!(
                connection = %conn.name, requeued = kinds.len(),
                "requeued one group an outage had parked, as a probe of the connection"
            );
        }
        Err(e) => {
            conn.outage_parked.store(true, Ordering::SeqCst);
            tracing::error!(connection = %conn.name, error = %e, "cannot probe the outbox");
        }
    }
}

async fn settle(
    engine: &Engine,
    conn: &Connection,
    g: &Group,
    results: Results,
    report: Option<&ReportSink>,
) {
    let mut applied = false;
    for (ids, outcome) in results {
        record(engine, g, &ids, &outcome).await;
        match &outcome {
            Outcome::Applied
            | Outcome::Settled {
                superseded: false, ..
            } => applied = true,
            Outcome::Park { outage: true, .. } => conn.outage_parked.store(true, Ordering::SeqCst),
            _ => {}
        }
        let now = now_ms();
        for c in g.items.iter().filter(|c| ids.contains(&c.id)) {
            let result = match &outcome {
                Outcome::Applied
                | Outcome::Settled {
                    superseded: false, ..
                } => "applied",
                Outcome::Settled { .. } => "superseded",
                Outcome::Retry { .. } => "failed",
                Outcome::Park { .. } => "parked",
            };
            engine.metrics.action(&c.kind, result);
            let latency = Duration::from_millis(u64::try_from(now - c.created_ms).unwrap_or(0));
            if matches!(outcome, Outcome::Applied) {
                engine.metrics.action_latency(latency.as_secs_f64());
            }
            match &outcome {
                Outcome::Applied => tracing::info!(
                    connection = %g.connection, record = %g.record, rule = %c.rule,
                    kind = %c.kind, at = %c.source_loc, revision = %c.revision,
                    latency_ms = latency.as_millis() as u64, "applied"
                ),
                Outcome::Settled {
                    note, superseded, ..
                } => tracing::info!(
                    connection = %g.connection, record = %g.record, rule = %c.rule,
                    kind = %c.kind, at = %c.source_loc, revision = %c.revision,
                    superseded = *superseded, note = %note,
                    "{}", if *superseded { "superseded, not applied" } else { "applied, with a note" }
                ),
                Outcome::Retry {
                    error,
                    after,
                    transient,
                    ..
                } => tracing::warn!(
                    connection = %g.connection, record = %g.record, rule = %c.rule,
                    kind = %c.kind, at = %c.source_loc, attempts = c.attempts,
                    outage = *transient,
                    retry_in_ms = after.as_millis() as u64, error = %error, "will retry"
                ),
                Outcome::Park { reason, outage, .. } => tracing::error!(
                    connection = %g.connection, record = %g.record, rule = %c.rule,
                    kind = %c.kind, at = %c.source_loc, attempts = c.attempts,
                    outage = *outage, reason = %reason, "parked in the dead letters"
                ),
            }
            if let Some(sink) = report {
                sink(&Report {
                    connection: g.connection.clone(),
                    record: g.record.clone(),
                    rule: c.rule.clone(),
                    kind: c.kind.clone(),
                    source_loc: c.source_loc.clone(),
                    revision: c.revision.clone(),
                    outcome: outcome.clone(),
                    latency,
                });
            }
        }
        // API calls, errors, 429s and retries are counted per HTTP attempt
        // by the connectors' observer (runtime::stack::observe).
    }
    if applied {
        recovered(engine, conn).await;
    }
}
