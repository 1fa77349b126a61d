//! Singleton leases: one holder of a name at a time, until its expiry on
//! the database's clock; a holder renews before it runs out, and another
//! replica takes it over after. Each take-over is a new epoch, so what a
//! holder writes under its lease can be fenced by it. Rows, not advisory
//! locks: session locks do not survive PgBouncer's transaction pooling.

use super::PgError;
use deadpool_postgres::Pool;

/// Takes or renews `name` for `holder` for `ttl_ms`; the lease's epoch if
/// `holder` holds it now, `None` if another replica does.
pub(super) async fn acquire(
    pool: &Pool,
    name: &str,
    holder: &str,
    ttl_ms: i64,
) -> Result<Option<i64>, PgError> {
    let c = pool.get().await?;
    let row = c
        .query_opt(
            "INSERT INTO leases (name, holder, epoch, expires_ms)
             VALUES ($1, $2, nextval('epochs'), l3map_now_ms() + $3)
             ON CONFLICT (name) DO UPDATE SET
               holder = EXCLUDED.holder,
               epoch = CASE WHEN leases.holder = EXCLUDED.holder THEN leases.epoch
                            ELSE EXCLUDED.epoch END,
               expires_ms = EXCLUDED.expires_ms
             WHERE leases.holder = EXCLUDED.holder OR leases.expires_ms < l3map_now_ms()
             RETURNING epoch",
            &[&name, &holder, &ttl_ms],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Gives `name` back (a drain), if `holder` holds it.
#[allow(dead_code)]
pub(super) async fn release(pool: &Pool, name: &str, holder: &str) -> Result<(), PgError> {
    let c = pool.get().await?;
    c.execute(
        "DELETE FROM leases WHERE name = $1 AND holder = $2",
        &[&name, &holder],
    )
    .await?;
    Ok(())
}
