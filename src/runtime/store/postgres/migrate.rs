//! The schema's versions: `migrations/V{n}__*.sql`, embedded in the
//! binary and applied by refinery (its history table records each one
//! with a checksum). At start a schema newer than this binary is refused
//! and an older one brought up to date; `l3map migrate` does the latter on
//! its own, which is how a fleet is upgraded before its replicas are.
//!
//! Two replicas starting at once must not both migrate: the migration runs
//! under a session advisory lock on its own connection, taken only while
//! migrating (PgBouncer in transaction mode does not keep session locks:
//! run `l3map migrate` against the database directly, docs/RUNTIME.md).

use super::PgError;
use crate::runtime::store::error::StoreError;
use deadpool_postgres::Pool;

mod embedded {
    refinery::embed_migrations!("src/runtime/store/postgres/migrations");
}

/// `hashtext('l3map migrate')`, fixed: the advisory lock's key.
const LOCK_KEY: i64 = 0x6c33_6d61_7000_0001;

pub use crate::runtime::store::types::SchemaReport;

/// The newest version this binary knows.
pub fn latest() -> i64 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

/// The version the database is at: the highest refinery recorded.
async fn current(client: &impl tokio_postgres::GenericClient) -> Result<i64, PgError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: Option<i32> = client
        .query_one("SELECT MAX(version) FROM refinery_schema_history", &[])
        .await?
        .get(0);
    Ok(v.map_or(0, i64::from))
}

fn newer(shown: &str, at: i64, latest: i64) -> StoreError {
    StoreError::Refused(format!(
        "state store {shown}: its schema is version {at}, written by a newer l3map (this one knows up to {latest}); run that version or a later one"
    ))
}

/// What the database holds, checked against this binary's migrations:
/// the version it is at. Refused: a database with tables of its own and no
/// l3map schema history (a mistyped database name must not get l3map's
/// tables), a version newer than this binary's, and an applied migration
/// whose checksum differs from this binary's (edited after it was applied).
async fn checked(
    client: &impl tokio_postgres::GenericClient,
    shown: &str,
) -> Result<i64, StoreError> {
    let at = current(client).await.map_err(StoreError::from)?;
    if at == 0 {
        let tables: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM information_schema.tables
                 WHERE table_schema = current_schema()",
                &[],
            )
            .await
            .map_err(|e| StoreError::from(PgError::Db(e)))?
            .get(0);
        if tables > 0 {
            return Err(StoreError::Refused(format!(
                "state store {shown}: the database has {tables} table(s) and no l3map schema history, so it is not an l3map store; point [store] url at an empty database (or one l3map created)"
            )));
        }
        return Ok(0);
    }
    let latest = latest();
    if at > latest {
        return Err(newer(shown, at, latest));
    }
    let applied = client
        .query(
            "SELECT version, name, checksum FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await
        .map_err(|e| StoreError::from(PgError::Db(e)))?;
    let ours = embedded::migrations::runner().get_migrations().clone();
    for row in applied {
        let (version, name, checksum): (i32, String, String) = (row.get(0), row.get(1), row.get(2));
        let same = ours.iter().any(|m| {
            m.version() == version && m.name() == name && m.checksum().to_string() == checksum
        });
        if !same {
            return Err(StoreError::Refused(format!(
                "state store {shown}: applied migration V{version}__{name} differs from this l3map's (edited after it was applied, or from another build); restore the schema or run the l3map that applied it"
            )));
        }
    }
    Ok(at)
}

/// At start: refuses what [`checked`] refuses; an older (or empty) schema
/// is migrated when `migrate` (`l3map run`), refused otherwise (a command
/// that only reads or repairs never changes the schema under a fleet).
pub(super) async fn at_start(
    pool: &Pool,
    shown: &str,
    migrate_older: bool,
) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(|e| connect_failed(shown, &e))?;
    // Checked under the migration's lock, taken for this transaction only
    // (PgBouncer's transaction pooling keeps it): a replica starting while
    // another one migrates waits for that migration, rather than finding
    // a schema half made (tables, no history yet) and refusing the store.
    let sql = |e: tokio_postgres::Error| StoreError::from(PgError::Db(e));
    let tx = client.transaction().await.map_err(sql)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(sql)?;
    let at = checked(&*tx, shown).await;
    tx.commit().await.map_err(sql)?;
    let at = at?;
    let latest = latest();
    if at < latest {
        if !migrate_older {
            return Err(StoreError::Refused(format!(
                "state store {shown}: its schema is version {at} and this l3map needs {latest}; run `l3map migrate` first (or start `l3map run`, which migrates)"
            )));
        }
        drop(client);
        let report = migrate(pool, shown).await?;
        if !report.applied.is_empty() {
            tracing::info!(target: super::LOG_TARGET, store = %shown, from = report.from, to = report.to, "state store migrated");
        }
    }
    Ok(())
}

/// One line for a database that cannot be reached: where, and what the
/// driver and the server said (never the password).
fn connect_failed(shown: &str, e: &deadpool_postgres::PoolError) -> StoreError {
    let mut why = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        why = format!("{why}: {s}");
        source = s.source();
    }
    StoreError::Refused(format!(
        "state store {shown}: cannot connect ({why}); check [store] url, the password reference and that PostgreSQL is running"
    ))
}

/// Where the schema is, changing nothing (`l3map migrate --check`).
pub(super) async fn status(pool: &Pool, shown: &str) -> Result<SchemaReport, StoreError> {
    let client = pool.get().await.map_err(|e| connect_failed(shown, &e))?;
    let at = checked(&**client, shown).await?;
    Ok(SchemaReport {
        from: at,
        to: at,
        applied: Vec::new(),
    })
}

/// Brings the database to the newest schema (`l3map migrate`).
pub async fn migrate(pool: &Pool, shown: &str) -> Result<SchemaReport, StoreError> {
    let mut client = pool.get().await.map_err(|e| connect_failed(shown, &e))?;
    let sql = |e: tokio_postgres::Error| StoreError::from(PgError::Db(e));
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(sql)?;
    let result = async {
        let from = checked(&**client, shown).await?;
        let latest = latest();
        let runner = embedded::migrations::runner()
            .set_abort_divergent(true)
            .set_abort_missing(true);
        let c: &mut tokio_postgres::Client = &mut client;
        let report = runner.run_async(c).await.map_err(|e| {
            StoreError::Refused(format!(
                "state store {shown}: cannot be migrated to schema {latest} ({e}); nothing of the failed step was kept"
            ))
        })?;
        Ok(SchemaReport {
            from,
            to: current(&**client).await.map_err(StoreError::from)?,
            applied: report
                .applied_migrations()
                .iter()
                .map(|m| format!("V{}__{}", m.version(), m.name()))
                .collect(),
        })
    }
    .await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    result
}
