//! The ops console's reads (see [`Console`]), on the reader connection so
//! they never wait for a write, and the reloads it shows.

use super::audit::rows;
use super::SqliteStore;
use crate::runtime::store::api::Console;
use crate::runtime::store::error::StoreError;
use crate::runtime::store::types::{now_ms, Row};
use crate::runtime::store::views::{
    Attempt, DeadGroup, DeadQuery, NewReload, Reload, TallyCount, Trail, TrailEvent, DEAD_GROUPED,
    RELOADS_KEPT,
};
use rusqlite::{params, Connection, OptionalExtension};

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl SqliteStore {
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&self.reader.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Console for SqliteStore {
    fn tallies(&self, span_ms: i64, since_ms: i64) -> Result<Vec<TallyCount>, StoreError> {
        self.read(|db| {
            let mut q = db.prepare_cached(
                "SELECT connection, subject, outcome, reason, source_loc, SUM(n) FROM tallies
                 WHERE span_ms = ?1 AND bucket_ms >= ?2
                 GROUP BY connection, subject, outcome, reason, source_loc
                 ORDER BY 6 DESC LIMIT 2000",
            )?;
            let rows = q.query_map(params![span_ms, since_ms], |r| {
                Ok(TallyCount {
                    connection: r.get(0)?,
                    subject: r.get(1)?,
                    outcome: r.get(2)?,
                    reason: r.get(3)?,
                    source_loc: r.get(4)?,
                    n: r.get::<_, i64>(5)?.max(0) as u64,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn dead_letters(&self, q: &DeadQuery) -> Result<Vec<Row>, StoreError> {
        self.read(|db| {
            let before = q.before.unwrap_or(i64::MAX);
            match &q.parked {
                None => rows(
                    db,
                    "WHERE o.state = 'dead' AND o.id < ?1 ORDER BY o.id DESC LIMIT ?2",
                    params![before, limit(q.limit)],
                ),
                Some(kind) => rows(
                    db,
                    "WHERE o.state = 'dead' AND COALESCE(o.parked_for, o.parked_kind) = ?3
                       AND o.id < ?1 ORDER BY o.id DESC LIMIT ?2",
                    params![before, limit(q.limit), kind],
                ),
            }
        })
    }

    fn dead_groups(&self) -> Result<Vec<DeadGroup>, StoreError> {
        self.read(|db| {
            let mut q = db.prepare_cached(
                "SELECT k, COUNT(*) FROM (
                   SELECT COALESCE(parked_for, parked_kind) AS k FROM outbox
                   WHERE state = 'dead' ORDER BY id DESC LIMIT ?1)
                 GROUP BY k ORDER BY 2 DESC",
            )?;
            let rows = q.query_map(params![limit(DEAD_GROUPED)], |r| {
                Ok(DeadGroup {
                    parked: r.get(0)?,
                    n: r.get::<_, i64>(1)?.max(0) as u64,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn action(&self, id: i64) -> Result<Option<Row>, StoreError> {
        self.read(|db| Ok(rows(db, "WHERE o.id = ?1", params![id])?.pop()))
    }

    fn trail(&self, record: &str, n: usize) -> Result<Trail, StoreError> {
        self.read(|db| {
            let actions = rows(
                db,
                "WHERE o.record = ?1 ORDER BY o.id DESC LIMIT ?2",
                params![record, limit(n) + 1],
            )?;
            // Its own events, and those that decided its actions (a
            // Salesforce change reaching a ticket, events from before
            // schema 6).
            let mut q = db.prepare_cached(
                "SELECT id, key, source, received_ms, revision, event, refused FROM events
                 WHERE id IN (
                   SELECT id FROM (SELECT id FROM events WHERE record = ?1 ORDER BY id DESC LIMIT ?2)
                   UNION
                   SELECT event_id FROM (
                     SELECT event_id FROM outbox WHERE record = ?1 ORDER BY id DESC LIMIT ?2))
                 ORDER BY id DESC LIMIT ?2",
            )?;
            let events: Vec<TrailEvent> = q
                .query_map(params![record, limit(n) + 1], |r| {
                    Ok(TrailEvent {
                        id: r.get(0)?,
                        key: r.get(1)?,
                        source: r.get(2)?,
                        received_ms: r.get(3)?,
                        revision: r.get(4)?,
                        event: r.get(5)?,
                        refused: r.get(6)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let more = actions.len() > n || events.len() > n;
            let (mut actions, mut events) = (actions, events);
            actions.truncate(n);
            events.truncate(n);
            let mut attempts = Vec::new();
            let mut q = db.prepare_cached(
                "SELECT action_id, attempt, at_ms, outcome, answer FROM attempts
                 WHERE action_id = ?1 ORDER BY id LIMIT 100",
            )?;
            for a in &actions {
                let got = q.query_map(params![a.id], |r| {
                    Ok(Attempt {
                        action_id: r.get(0)?,
                        attempt: r.get(1)?,
                        at_ms: r.get(2)?,
                        outcome: r.get(3)?,
                        answer: r.get(4)?,
                    })
                })?;
                for x in got {
                    attempts.push(x?);
                }
            }
            Ok(Trail {
                events,
                actions,
                attempts,
                more,
            })
        })
    }

    fn record_reload(&self, r: &NewReload<'_>) -> Result<(), StoreError> {
        self.tracked(|| {
            let mut db = self.db();
            let tx = db.transaction()?;
            let now = now_ms();
            tx.execute(
                "INSERT INTO reloads (at_ms, replica, revision, outcome, cause, diagnostics)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    now,
                    "local",
                    r.revision,
                    if r.live { "live" } else { "refused" },
                    r.cause,
                    r.diagnostics
                ],
            )?;
            if let Some(bundle) = r.bundle {
                tx.execute(
                    "INSERT OR IGNORE INTO reload_sources (revision, bundle, stored_ms) VALUES (?1, ?2, ?3)",
                    params![r.revision, bundle, now],
                )?;
            }
            tx.execute(
                "DELETE FROM reloads WHERE id <= (SELECT MAX(id) FROM reloads) - ?1",
                params![RELOADS_KEPT],
            )?;
            tx.execute(
                "DELETE FROM reload_sources WHERE revision NOT IN (SELECT revision FROM reloads)",
                [],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn reloads(&self, before: Option<i64>, n: usize) -> Result<Vec<Reload>, StoreError> {
        self.read(|db| {
            let mut q = db.prepare_cached(
                "SELECT id, at_ms, replica, revision, outcome, cause, diagnostics FROM reloads
                 WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = q.query_map(params![before.unwrap_or(i64::MAX), limit(n)], |r| {
                Ok(Reload {
                    id: r.get(0)?,
                    at_ms: r.get(1)?,
                    replica: r.get(2)?,
                    revision: r.get(3)?,
                    outcome: r.get(4)?,
                    cause: r.get(5)?,
                    diagnostics: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn reload_sources(&self, revision: &str) -> Result<Option<String>, StoreError> {
        self.read(|db| {
            Ok(db
                .query_row(
                    "SELECT bundle FROM reload_sources WHERE revision = ?1",
                    [revision],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }
}
