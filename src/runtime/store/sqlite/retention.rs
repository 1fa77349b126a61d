//! Retention in SQLite: the sweeps that delete what
//! [`Retention`](crate::runtime::store::Retention) no longer keeps, and the
//! maintenance thread that runs them (and probes while writes fail).
//!
//! Each batch is one short transaction on the connection the runtime
//! writes with, so it queues behind (and in front of) event commits like
//! any other write, never holding the store for more than one batch.

use super::write;
use crate::runtime::store::error::StoreError;
use crate::runtime::store::health::WriteHealth;
use crate::runtime::store::retention::{Deleted, Retention, HANDOFF_KEY_PREFIX};
use crate::runtime::store::types::now_ms;
use rusqlite::{params, Connection};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The target its log lines had before the module was split, so operators'
/// filters (`RUST_LOG`, alerts on the JSON `target`) keep matching.
const LOG_TARGET: &str = "l3map::runtime::store::retention";

/// Rows deleted per transaction.
const BATCH: i64 = 500;
/// Between batches, so queued writes go first.
const PAUSE: Duration = Duration::from_millis(20);
/// The first sweep soon after start, then this often.
const FIRST_SWEEP: Duration = Duration::from_secs(2);
const EVERY: Duration = Duration::from_secs(600);
/// While writes fail, how often to try a one-row write.
const PROBE: Duration = Duration::from_secs(1);

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One sweep at `now` (ms since 1970): deletes what `r` no longer keeps,
/// a batch per transaction. Returns (events, done actions) deleted.
pub(crate) fn sweep(
    db: &Mutex<Connection>,
    health: &WriteHealth,
    r: &Retention,
    now: i64,
    pause: Duration,
) -> Result<(u64, u64), StoreError> {
    let mut actions = 0;
    if let Some(keep) = r.done_actions {
        // Hand-offs are kept: their key is what makes a hand-off once per
        // escalation and record.
        actions = sweep_table(
            db,
            health,
            now.saturating_sub(ms(keep)),
            pause,
            &format!(
                "SELECT updated_ms, id, substr(key, 1, {}) = '{HANDOFF_KEY_PREFIX}'
                 FROM outbox INDEXED BY outbox_done
                 WHERE state = 'done' AND updated_ms < ?1 AND (updated_ms, id) > (?2, ?3)
                 ORDER BY updated_ms, id LIMIT ?4",
                HANDOFF_KEY_PREFIX.len()
            ),
            "DELETE FROM outbox WHERE id = ?1",
        )?;
    }
    let mut events = 0;
    if let Some(keep) = r.events {
        // An event an outbox row refers to is its audit trail: kept.
        events = sweep_table(
            db,
            health,
            now.saturating_sub(ms(keep)),
            pause,
            "SELECT e.received_ms, e.id,
                    EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = e.id)
             FROM events e INDEXED BY events_received
             WHERE e.received_ms < ?1 AND (e.received_ms, e.id) > (?2, ?3)
             ORDER BY e.received_ms, e.id LIMIT ?4",
            "DELETE FROM events WHERE id = ?1",
        )?;
    }
    // The console's tallies: minutes for two days (its windows reach one),
    // hours for 35. A few thousand rows a day: one statement.
    write(
        &mut db.lock().unwrap_or_else(|e| e.into_inner()),
        health,
        |tx| {
            tx.execute(
                "DELETE FROM tallies WHERE (span_ms = 60000 AND bucket_ms < ?1 - 172800000)
                OR (span_ms = 3600000 AND bucket_ms < ?1 - 3024000000)",
                params![now],
            )?;
            Ok(())
        },
    )?;
    Ok((events, actions))
}

/// Deletes the rows `select` finds older than `before`, a batch per
/// transaction with `pause` between, so event commits go between batches.
/// `select` takes (?1 before, ?2/?3 the (time, id) of the last row seen,
/// ?4 the batch size) and yields (time, id, keep); kept rows are stepped
/// over, never read again in this sweep.
fn sweep_table(
    db: &Mutex<Connection>,
    health: &WriteHealth,
    before: i64,
    pause: Duration,
    select: &str,
    delete: &str,
) -> Result<u64, StoreError> {
    let lock = || db.lock().unwrap_or_else(|e| e.into_inner());
    let mut deleted = 0;
    let mut after = (i64::MIN, i64::MIN);
    loop {
        let (n, last) = write(&mut lock(), health, |tx| {
            let rows: Vec<(i64, i64, bool)> = tx
                .prepare_cached(select)?
                .query_map(params![before, after.0, after.1, BATCH], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<_, _>>()?;
            let mut del = tx.prepare_cached(delete)?;
            let mut n = 0;
            for (_, id, keep) in &rows {
                if !keep {
                    n += del.execute([id])? as u64;
                }
            }
            Ok((
                n,
                rows.last()
                    .map(|(t, id, _)| (*t, *id))
                    .filter(|_| rows.len() as i64 == BATCH),
            ))
        })?;
        deleted += n;
        match last {
            Some(l) => after = l,
            None => break,
        }
        std::thread::sleep(pause);
    }
    Ok(deleted)
}

/// A one-row write, to see whether the store takes writes again.
fn probe(db: &Mutex<Connection>, health: &WriteHealth) {
    let mut db = db.lock().unwrap_or_else(|e| e.into_inner());
    let _ = write(&mut db, health, |tx| {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('probed_ms', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [now_ms().to_string()],
        )?;
        Ok(())
    });
}

/// The maintenance thread: retention sweeps, and probes while writes fail.
/// Ends when `stop` is set (the store is dropped).
pub(crate) fn spawn(
    db: Arc<Mutex<Connection>>,
    health: Arc<WriteHealth>,
    deleted: Arc<Deleted>,
    stop: Arc<AtomicBool>,
    r: Retention,
) {
    let _ = std::thread::Builder::new()
        .name("l3map-store-maintenance".into())
        .spawn(move || {
            let mut next_sweep = Instant::now() + FIRST_SWEEP;
            let mut last_probe = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                if health.current().is_some() && last_probe.elapsed() >= PROBE {
                    last_probe = Instant::now();
                    probe(&db, &health);
                }
                if Instant::now() < next_sweep {
                    continue;
                }
                next_sweep = Instant::now() + EVERY;
                match sweep(&db, &health, &r, now_ms(), PAUSE) {
                    Ok((0, 0)) => {}
                    Ok((events, actions)) => {
                        deleted.events.fetch_add(events, Ordering::Relaxed);
                        deleted.done_actions.fetch_add(actions, Ordering::Relaxed);
                        tracing::info!(target: LOG_TARGET, events,
                            done_actions = actions,
                            "retention: deleted what the store no longer keeps"
                        );
                    }
                    Err(e) => {
                        tracing::warn!(target: LOG_TARGET, error = %e, "retention sweep failed; tried again later")
                    }
                }
            }
        });
}
