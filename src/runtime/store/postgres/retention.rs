//! Retention on PostgreSQL: what [`Retention`] no longer keeps is deleted
//! in batches, by one replica at a time (the `retention` lease), each
//! batch its own short transaction.

use super::lease;
use crate::runtime::store::error::StoreError;
use crate::runtime::store::health::WriteHealth;
use crate::runtime::store::retention::{Deleted, Retention, HANDOFF_KEY_PREFIX};
use crate::runtime::store::types::now_ms;
use deadpool_postgres::Pool;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const BATCH: i64 = 500;
const FIRST_SWEEP: Duration = Duration::from_secs(2);
const EVERY: Duration = Duration::from_secs(600);

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One sweep at `now`: (events, done actions) deleted.
pub(super) async fn sweep(pool: &Pool, r: &Retention, now: i64) -> Result<(u64, u64), StoreError> {
    let mut actions = 0;
    if let Some(keep) = r.done_actions {
        // Hand-offs are kept: their key is what makes a hand-off once.
        let like = format!("{HANDOFF_KEY_PREFIX}%");
        actions = batches(
            pool,
            "DELETE FROM outbox WHERE id IN (
               SELECT id FROM outbox WHERE state = 'done' AND updated_ms < $1
                 AND key NOT LIKE $2 ORDER BY updated_ms, id LIMIT $3)",
            now.saturating_sub(ms(keep)),
            &like,
        )
        .await?;
    }
    let mut events = 0;
    if let Some(keep) = r.events {
        // An event an outbox row refers to is its audit trail: kept.
        events = batches(
            pool,
            "DELETE FROM events WHERE id IN (
               SELECT e.id FROM events e WHERE e.received_ms < $1 AND $2 <> ''
                 AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = e.id)
               ORDER BY e.received_ms, e.id LIMIT $3)",
            now.saturating_sub(ms(keep)),
            "-",
        )
        .await?;
    }
    // Replicas gone for a day (killed, scaled away): their rows only.
    let c = pool.get().await.map_err(super::PgError::from)?;
    c.execute(
        "DELETE FROM replicas WHERE heartbeat_ms < l3map_now_ms() - 86400000",
        &[],
    )
    .await
    .map_err(super::PgError::from)?;
    // Turns' answers past the hour a retry gets them.
    c.execute(
        "DELETE FROM turn_answers WHERE at_ms < l3map_now_ms() - 3600000",
        &[],
    )
    .await
    .map_err(super::PgError::from)?;
    // The console's tallies: minutes for two days (its windows reach one),
    // hours for 35.
    c.execute(
        "DELETE FROM tallies WHERE (span_ms = 60000 AND bucket_ms < $1::BIGINT - 172800000)
            OR (span_ms = 3600000 AND bucket_ms < $1::BIGINT - 3024000000)",
        &[&now],
    )
    .await
    .map_err(super::PgError::from)?;
    // Mapping revisions: the active one and the 50 newest are kept (a
    // switch back stays one `l3map publish` away), older ones after 30
    // days. An event names its revision by hash, not by reference.
    c.execute(
        "DELETE FROM revisions r
         WHERE r.published_ms < l3map_now_ms() - 2592000000
           AND r.revision NOT IN (SELECT revision FROM fleet_revision)
           AND r.revision NOT IN (SELECT revision FROM revisions
                                  ORDER BY published_ms DESC LIMIT 50)",
        &[],
    )
    .await
    .map_err(super::PgError::from)?;
    Ok((events, actions))
}

async fn batches(pool: &Pool, sql: &str, before: i64, arg: &str) -> Result<u64, StoreError> {
    let mut deleted = 0;
    loop {
        let c = pool.get().await.map_err(super::PgError::from)?;
        let n = c
            .execute(sql, &[&before, &arg, &BATCH])
            .await
            .map_err(super::PgError::from)?;
        deleted += n;
        if i64::try_from(n).unwrap_or(0) < BATCH {
            return Ok(deleted);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The maintenance task: a sweep soon after start and then every ten
/// minutes, on whichever replica holds the `retention` lease.
pub(super) async fn run(
    pool: Pool,
    health: Arc<WriteHealth>,
    deleted: Arc<Deleted>,
    stop: Arc<AtomicBool>,
    replica: Arc<str>,
    lease_ms: i64,
    r: Retention,
) {
    tokio::time::sleep(FIRST_SWEEP).await;
    while !stop.load(Ordering::Relaxed) {
        let ttl = ms(EVERY) + lease_ms;
        match lease::acquire(&pool, "retention", &replica, ttl, lease_ms).await {
            Ok(Some(_)) => {
                let result = sweep(&pool, &r, now_ms()).await;
                health.record(&result, result.is_ok());
                match result {
                    Ok((0, 0)) => {}
                    Ok((events, actions)) => {
                        deleted.events.fetch_add(events, Ordering::Relaxed);
                        deleted.done_actions.fetch_add(actions, Ordering::Relaxed);
                        tracing::info!(target: super::LOG_TARGET, events, done_actions = actions, "retention: deleted what the store no longer keeps");
                    }
                    Err(e) => {
                        tracing::warn!(target: super::LOG_TARGET, error = %e, "retention sweep failed; tried again later")
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(target: super::LOG_TARGET, error = %StoreError::from(e), "retention lease unavailable; tried again later")
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}
