//! One worker per connection (so per token): claims due groups from the
//! outbox, applies them with the connectors, and records the outcome. The
//! connector's own limiter paces the requests; the worker only bounds how
//! many records are in flight at once.

use super::apply::{Applier, Outcome, Results};
use super::engine::Engine;
use super::store::{now_ms, Group};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How often an idle worker looks for retries that came due.
const IDLE_POLL: Duration = Duration::from_millis(250);

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
    let concurrency = concurrency.max(1);
    loop {
        if *stop.borrow() {
            break;
        }
        let room = concurrency.saturating_sub(in_flight.len());
        if room > 0 {
            let store = engine.store.clone();
            let conn = connection.clone();
            let claimed = tokio::task::spawn_blocking(move || store.claim(&conn, now_ms(), room))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            match claimed {
                Ok(groups) => {
                    for g in groups {
                        let (engine, applier, report) =
                            (engine.clone(), applier.clone(), report.clone());
                        in_flight.spawn(async move {
                            let results = applier.apply(&g).await;
                            settle(&engine, &g, results, report.as_ref()).await;
                        });
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
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            _ = stop.changed() => {}
        }
    }
    // Graceful shutdown: what was sent is seen through and recorded; what
    // was not claimed stays queued for the next start.
    while in_flight.join_next().await.is_some() {}
}

async fn settle(engine: &Engine, g: &Group, results: Results, report: Option<&ReportSink>) {
    for (ids, outcome) in results {
        let store = engine.store.clone();
        let ids2 = ids.clone();
        let o = outcome.clone();
        let saved = tokio::task::spawn_blocking(move || match &o {
            Outcome::Applied => store.done(&ids2),
            Outcome::Retry {
                error,
                after,
                unconfirmed,
                ..
            } => {
                let at = now_ms() + i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 2);
                store.retry_later(&ids2, error, at, *unconfirmed)
            }
            Outcome::Park { reason, .. } => store.park(&ids2, reason),
        })
        .await;
        let saved = match saved {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = saved {
            // The row stays `sending`: the next start reads the record back
            // and finishes it, so nothing is lost or doubled.
            tracing::error!(error = %e, "cannot record an outcome in the outbox");
        }
        let now = now_ms();
        for c in g.items.iter().filter(|c| ids.contains(&c.id)) {
            let result = match &outcome {
                Outcome::Applied => "applied",
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
                Outcome::Retry { error, after, .. } => tracing::warn!(
                    connection = %g.connection, record = %g.record, rule = %c.rule,
                    kind = %c.kind, at = %c.source_loc, attempts = c.attempts,
                    retry_in_ms = after.as_millis() as u64, error = %error, "will retry"
                ),
                Outcome::Park { reason, .. } => tracing::error!(
                    connection = %g.connection, record = %g.record, rule = %c.rule,
                    kind = %c.kind, at = %c.source_loc, attempts = c.attempts,
                    reason = %reason, "parked in the dead letters"
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
}
