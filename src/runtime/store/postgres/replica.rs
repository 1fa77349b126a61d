//! This process as one replica of the fleet: its name, its row in
//! `replicas`, and the heartbeat that keeps its claims' leases alive.
//! A replica that stops beating (killed, stopped, cut off from the
//! database) loses its claims when their lease runs out; the others claim
//! them again, and its own late answers are fenced off.

use super::PgStore;
use crate::runtime::store::error::StoreError;
use crate::runtime::store::types::{
    BudgetStatus, FleetStatus, LeaseStatus, QueueStatus, ReplicaStatus,
};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// `host:pid:random`: unique per process start, readable in `l3map status`.
pub(super) fn name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
}

impl PgStore {
    /// Writes this replica's row and starts its heartbeat (every third of
    /// the lease) on the store's runtime; idempotent.
    pub(super) fn start_heartbeat(&self) -> Result<(), StoreError> {
        let (pool, replica) = (self.pool.clone(), self.replica.clone());
        self.write(move || {
            let (pool, replica) = (pool.clone(), replica.clone());
            async move {
                let c = pool.get().await?;
                let host = replica.split(':').next().unwrap_or("").to_string();
                c.execute(
                    "INSERT INTO replicas (id, host, pid, started_ms, heartbeat_ms)
                     VALUES ($1, $2, $3, l3map_now_ms(), l3map_now_ms())
                     ON CONFLICT (id) DO UPDATE SET heartbeat_ms = l3map_now_ms()",
                    &[&&*replica, &host, &i64::from(std::process::id())],
                )
                .await?;
                Ok(())
            }
        })?;
        if self.beating.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let Some(rt) = &self.rt else {
            return Ok(());
        };
        let (pool, replica, stop) = (self.pool.clone(), self.replica.clone(), self.stop.clone());
        let (fences, until) = (self.fences.clone(), self.until.clone());
        let lease = self.lease_ms;
        let every = Duration::from_millis(u64::try_from(lease / 3).unwrap_or(1000).max(100));
        rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(every).await;
                // Only the rows a worker here holds: a claim whose answer
                // was lost on the way back (its commit went through) is
                // no one's here, and must run out for another to take.
                let (held, epochs): (Vec<i64>, Vec<i64>) = fences
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|(id, epoch)| (*id, *epoch))
                    .unzip();
                let asked = std::time::Instant::now();
                match beat(&pool, &replica, lease, &held, &epochs).await {
                    Ok(renewed) => {
                        // A row not renewed is another replica's now (or
                        // settled): it must not be sent from here.
                        let safe = super::safe_until(asked, lease);
                        let mut until = until.lock().unwrap_or_else(|e| e.into_inner());
                        for id in &held {
                            if renewed.contains(id) {
                                until.insert(*id, safe);
                            } else if let Some(u) = until.get_mut(id) {
                                *u = asked;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(target: super::LOG_TARGET, error = %crate::runtime::store::StoreError::from(e), "heartbeat failed; this replica's claims run out if it keeps failing");
                    }
                }
            }
        });
        Ok(())
    }
}

/// One heartbeat: the replica's row, and the lease of every row it holds.
async fn beat(
    pool: &deadpool_postgres::Pool,
    replica: &str,
    lease: i64,
    held: &[i64],
    epochs: &[i64],
) -> Result<std::collections::HashSet<i64>, super::PgError> {
    let c = pool.get().await?;
    c.execute(
        "UPDATE replicas SET heartbeat_ms = l3map_now_ms() WHERE id = $1",
        &[&replica],
    )
    .await?;
    // Only rows still claimed by this replica with the epoch it got: one
    // claimed again by another is not taken back by renewing it.
    let renewed = c
        .query(
            "UPDATE outbox o SET lease_until = l3map_now_ms() + $2
             FROM unnest($3::BIGINT[], $4::BIGINT[]) AS h(id, epoch)
             WHERE o.id = h.id AND o.epoch = h.epoch AND o.claimed_by = $1
               AND o.state = 'sending'
             RETURNING o.id",
            &[&replica, &lease, &held, &epochs],
        )
        .await?;
    Ok(renewed.iter().map(|r| r.get(0)).collect())
}

impl PgStore {
    pub(super) fn report(&self, revision: &str, error: Option<&str>) -> Result<(), StoreError> {
        let (pool, replica) = (self.pool.clone(), self.replica.clone());
        let (revision, error) = (revision.to_string(), error.map(str::to_string));
        self.write(move || {
            let (pool, replica, revision, error) =
                (pool.clone(), replica.clone(), revision.clone(), error.clone());
            async move {
                let c = pool.get().await?;
                let host = replica.split(':').next().unwrap_or("").to_string();
                c.execute(
                    "INSERT INTO replicas (id, host, pid, started_ms, heartbeat_ms, revision, load_error)
                     VALUES ($1, $2, $3, l3map_now_ms(), l3map_now_ms(), $4, $5)
                     ON CONFLICT (id) DO UPDATE SET revision = $4, load_error = $5",
                    &[&&*replica, &host, &i64::from(std::process::id()), &revision, &error],
                )
                .await?;
                Ok::<_, super::PgError>(())
            }
        })
    }

    pub(super) fn status(&self) -> Result<FleetStatus, StoreError> {
        let pool = self.pool.clone();
        self.read(async move {
            let c = pool.get().await?;
            let replicas = c
                .query(
                    "SELECT id, host, pid, started_ms, l3map_now_ms() - heartbeat_ms, revision,
                            load_error
                     FROM replicas ORDER BY started_ms, id",
                    &[],
                )
                .await?
                .iter()
                .map(|r| ReplicaStatus {
                    id: r.get(0),
                    host: r.get(1),
                    pid: r.get(2),
                    started_ms: r.get(3),
                    heartbeat_age_ms: r.get(4),
                    revision: r.get(5),
                    load_error: r.get(6),
                })
                .collect();
            let leases = c
                .query(
                    "SELECT name, holder, epoch, expires_ms - l3map_now_ms() FROM leases
                     ORDER BY name",
                    &[],
                )
                .await?
                .iter()
                .map(|r| LeaseStatus {
                    name: r.get(0),
                    holder: r.get(1),
                    epoch: r.get(2),
                    expires_in_ms: r.get(3),
                })
                .collect();
            let queues = c
                .query(
                    "SELECT connection,
                            COUNT(*) FILTER (WHERE state = 'pending'),
                            COUNT(*) FILTER (WHERE state = 'sending'),
                            COUNT(*) FILTER (WHERE state = 'dead')
                     FROM outbox WHERE state IN ('pending', 'sending', 'dead')
                     GROUP BY connection ORDER BY connection",
                    &[],
                )
                .await?
                .iter()
                .map(|r| QueueStatus {
                    connection: r.get(0),
                    pending: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                    sending: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
                    dead: u64::try_from(r.get::<_, i64>(3)).unwrap_or(0),
                })
                .collect();
            let budgets = c
                .query(
                    "SELECT key, GREATEST(tat_ms - l3map_now_ms(), 0)::BIGINT FROM budgets
                     ORDER BY key",
                    &[],
                )
                .await?
                .iter()
                .map(|r| BudgetStatus {
                    key: r.get(0),
                    booked_ahead_ms: r.get(1),
                })
                .collect();
            Ok(FleetStatus {
                active_revision: super::revisions::active(&c).await?,
                replicas,
                leases,
                queues,
                budgets,
            })
        })
    }
}
