//! What operators read and do (`l3map outbox`, `/healthz`, `/metrics`):
//! the same rows and counts as on SQLite.

use super::{PgError, PgStore};
use crate::runtime::store::api::Audit;
use crate::runtime::store::error::StoreError;
use crate::runtime::store::types::{now_ms, Row, State, Stats};

pub(super) const COLUMNS: &str = "o.id, o.key, e.key, o.connection, o.record, o.kind, o.op, o.rule,
    o.source_loc, o.revision, o.state, o.attempts, o.last_error, o.created_ms, o.updated_ms,
    CASE WHEN o.state = 'dead' THEN COALESCE(o.parked_for, o.parked_kind) END";

pub(super) fn row(r: &tokio_postgres::Row) -> Row {
    let op: String = r.get(6);
    Row {
        id: r.get(0),
        key: r.get(1),
        event_key: r.get(2),
        connection: r.get(3),
        record: r.get(4),
        kind: r.get(5),
        op: serde_json::from_str(&op).unwrap_or(serde_json::Value::String(op)),
        rule: r.get(7),
        source_loc: r.get(8),
        revision: r.get(9),
        state: State::parse(&r.get::<_, String>(10)),
        attempts: u32::try_from(r.get::<_, i32>(11)).unwrap_or(0),
        last_error: r.get(12),
        created_ms: r.get(13),
        updated_ms: r.get(14),
        parked: r.get(15),
    }
}

impl Audit for PgStore {
    fn list(&self, state: Option<State>, limit: usize) -> Result<Vec<Row>, StoreError> {
        let pool = self.pool.clone();
        let state = state.map(|s| s.as_str().to_string());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM outbox o JOIN events e ON e.id = o.event_id
                         WHERE $1::TEXT IS NULL OR o.state = $1 ORDER BY o.id DESC LIMIT $2"
                    ),
                    &[&state, &limit],
                )
                .await?;
            Ok(rows.iter().map(row).collect())
        })
    }

    fn actions_of(&self, event_key: &str) -> Result<Vec<Row>, StoreError> {
        let (pool, key) = (self.pool.clone(), event_key.to_string());
        self.read(async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM outbox o JOIN events e ON e.id = o.event_id
                         WHERE e.key = $1 ORDER BY o.id"
                    ),
                    &[&key],
                )
                .await?;
            Ok(rows.iter().map(row).collect())
        })
    }

    fn requeue_dead(&self, ids: &[i64]) -> Result<usize, StoreError> {
        self.for_ids(
            "UPDATE outbox SET state = 'pending', attempts = 0, outage_tries = 0,
               failing_since = NULL, parked_for = NULL, not_before = 0, unconfirmed = TRUE,
               updated_ms = $2
             WHERE state = 'dead' AND ($1::BIGINT[] IS NULL OR id = ANY($1))",
            ids,
        )
    }

    fn drop_dead(&self, ids: &[i64]) -> Result<usize, StoreError> {
        self.for_ids(
            "DELETE FROM outbox WHERE state = 'dead' AND ($1::BIGINT[] IS NULL OR id = ANY($1))
               AND $2::BIGINT IS NOT NULL",
            ids,
        )
    }

    /// O(1): the counts are kept by triggers, the oldest waiting action by
    /// its partial index.
    fn stats(&self) -> Result<Stats, StoreError> {
        let pool = self.pool.clone();
        self.read(async move {
            let mut c = pool.get().await?;
            // One snapshot, so the counts and the oldest agree.
            let tx = c
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let mut s = Stats::default();
            for r in tx
                .query("SELECT name, SUM(n)::BIGINT FROM counts GROUP BY name", &[])
                .await?
            {
                let n = u64::try_from(r.get::<_, i64>(1)).unwrap_or(0);
                match r.get::<_, String>(0).as_str() {
                    "events" => s.events = n,
                    "pending" => s.pending = n,
                    "sending" => s.sending = n,
                    "done" => s.done = n,
                    "dead" => s.dead = n,
                    _ => {}
                }
            }
            s.oldest_waiting_ms = tx
                .query_one(
                    "SELECT MIN(created_ms) FROM outbox WHERE state IN ('pending', 'sending')",
                    &[],
                )
                .await?
                .get(0);
            tx.commit().await?;
            Ok(s)
        })
    }
}

impl PgStore {
    /// Runs `sql` ($1 the ids, NULL for all; $2 now) once; the rows it
    /// changed.
    fn for_ids(&self, sql: &'static str, ids: &[i64]) -> Result<usize, StoreError> {
        let pool = self.pool.clone();
        let ids = (!ids.is_empty()).then(|| ids.to_vec());
        self.write(move || {
            let (pool, ids) = (pool.clone(), ids.clone());
            async move {
                let c = pool.get().await?;
                let n = c.execute(sql, &[&ids, &now_ms()]).await?;
                Ok::<_, PgError>(usize::try_from(n).unwrap_or(usize::MAX))
            }
        })
    }
}
