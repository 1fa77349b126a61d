//! The shared rate budget ([`SharedBudget`]) on PostgreSQL: a GCRA bucket
//! per token key in `budgets` and a log of the last window's requests in
//! `budget_sends` (migration V9), taken by `l3map_budget_take` in one round
//! trip on the store's runtime (the caller's task awaits it, no thread is
//! blocked).

use super::PgError;
use crate::connectors::shared_budget::{gcra, SharedBudget, Wait};
use deadpool_postgres::Pool;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

#[derive(Clone)]
pub(super) struct PgBudget {
    pub(super) pool: Pool,
    pub(super) rt: tokio::runtime::Handle,
    /// This replica, which holds the permits it takes.
    pub(super) holder: std::sync::Arc<str>,
    /// A replica whose heartbeat is older than this holds no permit.
    pub(super) stale_ms: i64,
}

impl std::fmt::Debug for PgBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgBudget")
    }
}

/// How long a request let go by the bucket may take to reach the vendor
/// (a loaded replica, a slow connection), in ms.
const TRIP_MS: f64 = 1000.0;

/// The most one answer may make a request wait before asking again: a
/// long hold is re-read, so a shorter one set meanwhile is seen.
const MAX_WAIT: Duration = Duration::from_secs(5);

impl SharedBudget for PgBudget {
    fn take<'a>(
        &'a self,
        key: &'a str,
        limit: u32,
        window: Duration,
    ) -> Pin<Box<dyn Future<Output = Wait> + Send + 'a>> {
        let (t, tau) = gcra(limit, window);
        let lim = i32::try_from(limit).unwrap_or(i32::MAX);
        // The vendor counts a request when it arrives, the log when it
        // was let go: kept a trip longer than the window, so requests let
        // go a window apart cannot arrive inside one.
        let win = window.as_secs_f64() * 1000.0 + TRIP_MS;
        let (pool, k) = (self.pool.clone(), key.to_string());
        let asked = self.rt.spawn(async move {
            let c = pool.get().await.map_err(PgError::from)?;
            let wait: f64 = c
                .query_one(
                    "SELECT l3map_budget_take($1, $2, $3, $4, $5)",
                    &[&k, &t, &tau, &lim, &win],
                )
                .await
                .map_err(PgError::from)?
                .get(0);
            Ok::<f64, PgError>(wait)
        });
        Box::pin(async move {
            match asked.await {
                Ok(Ok(ms)) if ms <= 0.0 => Ok(Duration::ZERO),
                // A wait is never rounded down to a go.
                Ok(Ok(ms)) => {
                    Ok(Duration::from_secs_f64(ms / 1000.0)
                        .clamp(Duration::from_millis(1), MAX_WAIT))
                }
                Ok(Err(e)) => Err(crate::runtime::store::StoreError::from(e).to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    fn permit<'a>(
        &'a self,
        key: &'a str,
        cap: usize,
        lease: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Option<i64>, String>> + Send + 'a>> {
        let (pool, k, holder) = (self.pool.clone(), key.to_string(), self.holder.clone());
        let (cap, stale) = (i32::try_from(cap).unwrap_or(i32::MAX), self.stale_ms);
        let lease = lease.as_secs_f64() * 1000.0;
        let asked = self.rt.spawn(async move {
            let c = pool.get().await.map_err(PgError::from)?;
            let id: Option<i64> = c
                .query_one(
                    "SELECT l3map_permit_take($1, $2, $3, $4, $5)",
                    &[&k, &cap, &lease, &&*holder, &stale],
                )
                .await
                .map_err(PgError::from)?
                .get(0);
            Ok::<Option<i64>, PgError>(id)
        });
        Box::pin(async move {
            match asked.await {
                Ok(r) => r.map_err(|e| crate::runtime::store::StoreError::from(e).to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    fn give_back(&self, id: i64) {
        let pool = self.pool.clone();
        self.rt.spawn(async move {
            let Ok(c) = pool.get().await else { return };
            let _ = c.execute("DELETE FROM permits WHERE id = $1", &[&id]).await;
        });
    }

    fn hold(&self, key: &str, pause: Duration, limit: u32, window: Duration) {
        let (pool, k) = (self.pool.clone(), key.to_string());
        let ms = pause.as_secs_f64() * 1000.0;
        // Past the pause by the bucket's tolerance: the first request
        // goes when the pause ends, not `tau` before.
        let (_, tau) = gcra(limit, window);
        self.rt.spawn(async move {
            let Ok(c) = pool.get().await else { return };
            let _ = c
                .execute("SELECT l3map_budget_hold($1, $2, $3)", &[&k, &ms, &tau])
                .await;
        });
    }
}
