//! The ops console's reads (see [`Console`]) and the reloads it shows, on
//! the fleet's database: every replica's reloads in one list.

use super::audit::{row, COLUMNS};
use super::{PgError, PgStore};
use crate::runtime::store::api::Console;
use crate::runtime::store::error::StoreError;
use crate::runtime::store::types::{now_ms, Row};
use crate::runtime::store::views::{
    Attempt, DeadGroup, DeadQuery, NewReload, Reload, TallyCount, Trail, TrailEvent, DEAD_GROUPED,
    RELOADS_KEPT,
};

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn reload(r: &tokio_postgres::Row) -> Reload {
    Reload {
        id: r.get(0),
        at_ms: r.get(1),
        replica: r.get(2),
        revision: r.get(3),
        outcome: r.get(4),
        cause: r.get(5),
        diagnostics: r.get(6),
    }
}

impl Console for PgStore {
    fn tallies(&self, span_ms: i64, since_ms: i64) -> Result<Vec<TallyCount>, StoreError> {
        let pool = self.pool.clone();
        self.read(async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    "SELECT connection, subject, outcome, reason, source_loc, SUM(n)::BIGINT
                     FROM tallies WHERE span_ms = $1 AND bucket_ms >= $2
                     GROUP BY connection, subject, outcome, reason, source_loc
                     ORDER BY 6 DESC LIMIT 2000",
                    &[&span_ms, &since_ms],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| TallyCount {
                    connection: r.get(0),
                    subject: r.get(1),
                    outcome: r.get(2),
                    reason: r.get(3),
                    source_loc: r.get(4),
                    n: u64::try_from(r.get::<_, i64>(5)).unwrap_or(0),
                })
                .collect())
        })
    }

    fn dead_letters(&self, q: &DeadQuery) -> Result<Vec<Row>, StoreError> {
        let pool = self.pool.clone();
        let (before, n, kind) = (
            q.before.unwrap_or(i64::MAX),
            limit(q.limit),
            q.parked.clone(),
        );
        self.read(async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM outbox o JOIN events e ON e.id = o.event_id
                         WHERE o.state = 'dead' AND o.id < $1
                           AND ($3::TEXT IS NULL OR COALESCE(o.parked_for, o.parked_kind) = $3)
                         ORDER BY o.id DESC LIMIT $2"
                    ),
                    &[&before, &n, &kind],
                )
                .await?;
            Ok(rows.iter().map(row).collect())
        })
    }

    fn dead_groups(&self) -> Result<Vec<DeadGroup>, StoreError> {
        let pool = self.pool.clone();
        self.read(async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    "SELECT k, COUNT(*) FROM (
                       SELECT COALESCE(parked_for, parked_kind) AS k FROM outbox
                       WHERE state = 'dead' ORDER BY id DESC LIMIT $1) d
                     GROUP BY k ORDER BY 2 DESC",
                    &[&limit(DEAD_GROUPED)],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| DeadGroup {
                    parked: r.get(0),
                    n: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                })
                .collect())
        })
    }

    fn action(&self, id: i64) -> Result<Option<Row>, StoreError> {
        let pool = self.pool.clone();
        self.read(async move {
            let c = pool.get().await?;
            let r = c
                .query_opt(
                    &format!(
                        "SELECT {COLUMNS} FROM outbox o JOIN events e ON e.id = o.event_id
                         WHERE o.id = $1"
                    ),
                    &[&id],
                )
                .await?;
            Ok(r.as_ref().map(row))
        })
    }

    fn trail(&self, record: &str, n: usize) -> Result<Trail, StoreError> {
        let (pool, record) = (self.pool.clone(), record.to_string());
        self.read(async move {
            let c = pool.get().await?;
            let n1 = limit(n) + 1;
            let actions: Vec<Row> = c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM outbox o JOIN events e ON e.id = o.event_id
                         WHERE o.record = $1 ORDER BY o.id DESC LIMIT $2"
                    ),
                    &[&record, &n1],
                )
                .await?
                .iter()
                .map(row)
                .collect();
            let events: Vec<TrailEvent> = c
                .query(
                    "SELECT id, key, source, received_ms, revision, event, refused FROM events
                     WHERE id IN (
                       (SELECT id FROM events WHERE record = $1 ORDER BY id DESC LIMIT $2)
                       UNION
                       (SELECT event_id FROM outbox WHERE record = $1 ORDER BY id DESC LIMIT $2))
                     ORDER BY id DESC LIMIT $2",
                    &[&record, &n1],
                )
                .await?
                .iter()
                .map(|r| TrailEvent {
                    id: r.get(0),
                    key: r.get(1),
                    source: r.get(2),
                    received_ms: r.get(3),
                    revision: r.get(4),
                    event: r.get(5),
                    refused: r.get(6),
                })
                .collect();
            let more = actions.len() as i64 >= n1 || events.len() as i64 >= n1;
            let (mut actions, mut events) = (actions, events);
            actions.truncate(n);
            events.truncate(n);
            let ids: Vec<i64> = actions.iter().map(|a| a.id).collect();
            let attempts = c
                .query(
                    "SELECT a.action_id, a.attempt, a.at_ms, a.outcome, a.answer
                     FROM unnest($1::BIGINT[]) AS u(i)
                     CROSS JOIN LATERAL (
                       SELECT * FROM attempts WHERE action_id = u.i ORDER BY id LIMIT 100) a
                     ORDER BY a.id",
                    &[&ids],
                )
                .await?
                .iter()
                .map(|r| Attempt {
                    action_id: r.get(0),
                    attempt: u32::try_from(r.get::<_, i32>(1)).unwrap_or(0),
                    at_ms: r.get(2),
                    outcome: r.get(3),
                    answer: r.get(4),
                })
                .collect();
            Ok(Trail {
                events,
                actions,
                attempts,
                more,
            })
        })
    }

    fn record_reload(&self, r: &NewReload<'_>) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        let replica = self.replica.to_string();
        let (revision, live, cause) = (r.revision.to_string(), r.live, r.cause.to_string());
        let diagnostics = r.diagnostics.map(str::to_string);
        let bundle = r.bundle.map(str::to_string);
        self.write(move || {
            let (pool, replica, revision, cause, diagnostics, bundle) = (
                pool.clone(),
                replica.clone(),
                revision.clone(),
                cause.clone(),
                diagnostics.clone(),
                bundle.clone(),
            );
            async move {
                let mut c = pool.get().await?;
                let tx = c.transaction().await?;
                let now = now_ms();
                tx.execute(
                    "INSERT INTO reloads (at_ms, replica, revision, outcome, cause, diagnostics)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &now,
                        &replica,
                        &revision,
                        &if live { "live" } else { "refused" },
                        &cause,
                        &diagnostics,
                    ],
                )
                .await?;
                if let Some(bundle) = &bundle {
                    tx.execute(
                        "INSERT INTO reload_sources (revision, bundle, stored_ms) VALUES ($1, $2, $3)
                         ON CONFLICT (revision) DO NOTHING",
                        &[&revision, bundle, &now],
                    )
                    .await?;
                }
                tx.execute(
                    "DELETE FROM reloads WHERE id <= (SELECT MAX(id) FROM reloads) - $1",
                    &[&RELOADS_KEPT],
                )
                .await?;
                tx.execute(
                    "DELETE FROM reload_sources s
                     WHERE NOT EXISTS (SELECT 1 FROM reloads r WHERE r.revision = s.revision)",
                    &[],
                )
                .await?;
                tx.commit().await?;
                Ok::<(), PgError>(())
            }
        })
    }

    fn reloads(&self, before: Option<i64>, n: usize) -> Result<Vec<Reload>, StoreError> {
        let pool = self.pool.clone();
        let before = before.unwrap_or(i64::MAX);
        self.read(async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    "SELECT id, at_ms, replica, revision, outcome, cause, diagnostics FROM reloads
                     WHERE id < $1 ORDER BY id DESC LIMIT $2",
                    &[&before, &limit(n)],
                )
                .await?;
            Ok(rows.iter().map(reload).collect())
        })
    }

    fn reload_sources(&self, revision: &str) -> Result<Option<String>, StoreError> {
        let (pool, revision) = (self.pool.clone(), revision.to_string());
        self.read(async move {
            let c = pool.get().await?;
            let row = c
                .query_opt(
                    "SELECT bundle FROM reload_sources WHERE revision = $1
                     UNION ALL SELECT bundle FROM revisions WHERE revision = $1 LIMIT 1",
                    &[&revision],
                )
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
    }
}
