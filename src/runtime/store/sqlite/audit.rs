//! What operators read and do: outbox rows (`l3map outbox list`), dead
//! letters requeued or dropped, and the counts `/healthz` and `/metrics`
//! serve.

use super::SqliteStore;
use crate::runtime::store::api::Audit;
use crate::runtime::store::error::StoreError;
use crate::runtime::store::types::{now_ms, Row, State, Stats};
use rusqlite::{params, Connection};

impl Audit for SqliteStore {
    fn list(&self, state: Option<State>, limit: usize) -> Result<Vec<Row>, StoreError> {
        rows(
            &self.db(),
            "WHERE ?1 IS NULL OR o.state = ?1 ORDER BY o.id DESC LIMIT ?2",
            params![
                state.map(State::as_str),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
        )
    }

    fn actions_of(&self, event_key: &str) -> Result<Vec<Row>, StoreError> {
        rows(
            &self.db(),
            "WHERE e.key = ?1 ORDER BY o.id",
            params![event_key],
        )
    }

    fn requeue_dead(&self, ids: &[i64]) -> Result<usize, StoreError> {
        let db = self.db();
        let sql = "UPDATE outbox SET state = 'pending', attempts = 0, outage_tries = 0, failing_since = NULL,
                   parked_for = NULL, not_before = 0, unconfirmed = 1, updated_ms = ?2
                   WHERE state = 'dead' AND (?1 IS NULL OR id = ?1)";
        self.for_ids(&db, sql, ids)
    }

    fn drop_dead(&self, ids: &[i64]) -> Result<usize, StoreError> {
        let db = self.db();
        let sql = "DELETE FROM outbox WHERE state = 'dead' AND (?1 IS NULL OR id = ?1) AND ?2 IS NOT NULL";
        self.for_ids(&db, sql, ids)
    }

    /// O(1): the counts are kept by triggers (schema 2), the oldest by an
    /// index of waiting actions; read on the reader connection, so it never
    /// waits for a write.
    fn stats(&self) -> Result<Stats, StoreError> {
        read_stats(&mut self.reader.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl SqliteStore {
    fn for_ids(&self, db: &Connection, sql: &str, ids: &[i64]) -> Result<usize, StoreError> {
        let before = db.total_changes();
        let result = Self::for_ids_once(db, sql, ids);
        self.health.record(&result, db.total_changes() > before);
        result
    }

    fn for_ids_once(db: &Connection, sql: &str, ids: &[i64]) -> Result<usize, StoreError> {
        let now = now_ms();
        if ids.is_empty() {
            return Ok(db.execute(sql, params![Option::<i64>::None, now])?);
        }
        let mut n = 0;
        for id in ids {
            n += db.execute(sql, params![Some(*id), now])?;
        }
        Ok(n)
    }
}

/// The counts and the oldest waiting action, in one read transaction so
/// they agree.
fn read_stats(db: &mut Connection) -> Result<Stats, StoreError> {
    let tx = db.transaction()?;
    let mut s = Stats::default();
    {
        let mut q = tx.prepare_cached("SELECT name, n FROM counts")?;
        let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (name, n) = row?;
            let n = u64::try_from(n).unwrap_or(0);
            match name.as_str() {
                "events" => s.events = n,
                "pending" => s.pending = n,
                "sending" => s.sending = n,
                "done" => s.done = n,
                "dead" => s.dead = n,
                _ => {}
            }
        }
    }
    s.oldest_waiting_ms = tx.query_row(
        "SELECT MIN(created_ms) FROM outbox INDEXED BY outbox_waiting
         WHERE state IN ('pending', 'sending')",
        [],
        |r| r.get(0),
    )?;
    tx.finish()?;
    Ok(s)
}

/// Outbox rows with their event's key, filtered and ordered by `tail`.
pub(super) fn rows(
    db: &Connection,
    tail: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Row>, StoreError> {
    let mut q = db.prepare(&format!(
        "SELECT o.id, o.key, e.key, o.connection, o.record, o.kind, o.op, o.rule, o.source_loc,
                o.revision, o.state, o.attempts, o.last_error, o.created_ms, o.updated_ms,
                CASE WHEN o.state = 'dead' THEN COALESCE(o.parked_for, o.parked_kind) END
         FROM outbox o JOIN events e ON e.id = o.event_id {tail}"
    ))?;
    let rows = q.query_map(args, |r| {
        let op: String = r.get(6)?;
        Ok(Row {
            id: r.get(0)?,
            key: r.get(1)?,
            event_key: r.get(2)?,
            connection: r.get(3)?,
            record: r.get(4)?,
            kind: r.get(5)?,
            op: serde_json::from_str(&op).unwrap_or(serde_json::Value::String(op)),
            rule: r.get(7)?,
            source_loc: r.get(8)?,
            revision: r.get(9)?,
            state: State::parse(&r.get::<_, String>(10)?),
            attempts: r.get(11)?,
            last_error: r.get(12)?,
            created_ms: r.get(13)?,
            updated_ms: r.get(14)?,
            parked: r.get(15)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
