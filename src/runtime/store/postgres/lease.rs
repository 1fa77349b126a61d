//! Singleton leases: one holder of a name at a time, until its expiry on
//! the database's clock; a holder renews before it runs out, and another
//! replica takes it over after. Each take-over is a new epoch, so what a
//! holder writes under its lease can be fenced by it. Rows, not advisory
//! locks: session locks do not survive PgBouncer's transaction pooling.

use super::PgError;
use deadpool_postgres::Pool;

/// Takes or renews `name` for `holder` for `ttl_ms`; the lease's epoch if
/// `holder` holds it now, `None` if another replica does, or if `holder`
/// already holds its share of the fleet's leases (`l3map_lease_take`,
/// migration V6: singletons spread across the replicas whose heartbeat is
/// younger than `stale_ms`).
pub(super) async fn acquire(
    pool: &Pool,
    name: &str,
    holder: &str,
    ttl_ms: i64,
    stale_ms: i64,
) -> Result<Option<i64>, PgError> {
    let c = pool.get().await?;
    let epoch: Option<i64> = c
        .query_one(
            "SELECT l3map_lease_take($1, $2, $3, $4)",
            &[&name, &holder, &ttl_ms, &stale_ms],
        )
        .await?
        .get(0);
    Ok(epoch)
}

/// Gives `name` back (a drain), if `holder` holds it.
pub(super) async fn release(pool: &Pool, name: &str, holder: &str) -> Result<(), PgError> {
    let c = pool.get().await?;
    c.execute(
        "DELETE FROM leases WHERE name = $1 AND holder = $2",
        &[&name, &holder],
    )
    .await?;
    Ok(())
}

impl crate::runtime::store::api::Leases for super::PgStore {
    fn lease(
        &self,
        name: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<i64>, crate::runtime::store::StoreError> {
        let (pool, n, holder) = (self.pool.clone(), name.to_string(), self.replica.clone());
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let stale = self.lease_ms;
        let got = self.write(move || {
            let (pool, n, holder) = (pool.clone(), n.clone(), holder.clone());
            async move { acquire(&pool, &n, &holder, ttl, stale).await }
        })?;
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match got {
            Some(epoch) => held.insert(name.to_string(), epoch),
            None => held.remove(name),
        };
        Ok(got)
    }

    fn release(&self, name: &str) -> Result<(), crate::runtime::store::StoreError> {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        let (pool, n, holder) = (self.pool.clone(), name.to_string(), self.replica.clone());
        self.write(move || {
            let (pool, n, holder) = (pool.clone(), n.clone(), holder.clone());
            async move { release(&pool, &n, &holder).await }
        })
    }

    fn report_loaded(
        &self,
        revision: &str,
        error: Option<&str>,
    ) -> Result<(), crate::runtime::store::StoreError> {
        self.report(revision, error)
    }

    fn fleet_status(
        &self,
    ) -> Result<crate::runtime::store::types::FleetStatus, crate::runtime::store::StoreError> {
        self.status()
    }

    fn shared_budget(
        &self,
    ) -> Option<std::sync::Arc<dyn crate::connectors::shared_budget::SharedBudget>> {
        let rt = self.rt.as_ref()?.handle().clone();
        Some(std::sync::Arc::new(super::budget::PgBudget {
            pool: self.pool.clone(),
            rt,
            holder: self.replica.clone(),
            // Three missed beats (a beat is a third of the lease).
            stale_ms: self.lease_ms,
        }))
    }

    fn release_singletons(&self) -> Result<(), crate::runtime::store::StoreError> {
        // `held` keeps its epochs: a cursor write still on its way is
        // checked against a lease row that is gone, and refused.
        let (pool, holder) = (self.pool.clone(), self.replica.clone());
        self.write(move || {
            let (pool, holder) = (pool.clone(), holder.clone());
            async move {
                let c = pool.get().await?;
                c.execute("DELETE FROM leases WHERE holder = $1", &[&&*holder])
                    .await?;
                Ok::<_, PgError>(())
            }
        })
    }

    fn release_all(&self) -> Result<(), crate::runtime::store::StoreError> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (pool, holder) = (self.pool.clone(), self.replica.clone());
        self.write(move || {
            let (pool, holder) = (pool.clone(), holder.clone());
            async move {
                let c = pool.get().await?;
                c.execute("DELETE FROM leases WHERE holder = $1", &[&&*holder])
                    .await?;
                // Claims still held (work that did not finish within the
                // drain) are released to the others, unconfirmed.
                c.execute(
                    "UPDATE outbox SET state = 'pending', unconfirmed = TRUE, claimed_by = NULL,
                       lease_until = NULL
                     WHERE claimed_by = $1 AND state = 'sending'",
                    &[&&*holder],
                )
                .await?;
                c.execute("DELETE FROM replicas WHERE id = $1", &[&&*holder])
                    .await?;
                Ok::<_, PgError>(())
            }
        })
    }
}
