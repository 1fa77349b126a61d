//! Events in: each accepted once by its key, its actions queued once by
//! theirs, with its source's cursor, in one transaction per batch.

use super::cursors::set_cursor;
use super::SqliteStore;
use crate::runtime::store::api::Inbox;
use crate::runtime::store::error::StoreError;
use crate::runtime::store::types::{now_ms, Accepted, Submission, Tally};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

impl Inbox for SqliteStore {
    fn accept_all(&self, batch: &[Submission<'_>]) -> Result<Vec<Accepted>, StoreError> {
        self.tracked(|| self.accept_all_once(batch))
    }

    fn event(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .db()
            .query_row("SELECT event FROM events WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn events_with_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        // `>= prefix AND < prefix + U+FFFF` uses the key's index; LIKE
        // would need escaping and scan.
        let upper = format!("{prefix}\u{ffff}");
        Ok(self.db().query_row(
            "SELECT COUNT(*) FROM events WHERE key >= ?1 AND key < ?2",
            params![prefix, upper],
            |r| r.get(0),
        )?)
    }

    fn events_by_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        let upper = format!("{prefix}\u{ffff}");
        let db = self.db();
        let mut q = db.prepare(
            "SELECT event FROM events WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3",
        )?;
        let rows = q.query_map(params![prefix, upper, limit], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl SqliteStore {
    fn accept_all_once(&self, batch: &[Submission<'_>]) -> Result<Vec<Accepted>, StoreError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        let mut results = Vec::with_capacity(batch.len());
        {
            let mut insert_event = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (key, source, received_ms, revision, event, refused, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut insert_action = tx.prepare_cached(
                "INSERT OR IGNORE INTO outbox
                 (key, event_id, connection, record, kind, op, rule, source_loc, revision, state, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?10)",
            )?;
            let mut tally = tx.prepare_cached(
                "INSERT INTO tallies (span_ms, bucket_ms, connection, subject, outcome, reason, source_loc, n)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1)
                 ON CONFLICT DO UPDATE SET n = n + 1",
            )?;
            for Submission {
                event: ev,
                actions,
                cursor,
            } in batch
            {
                if let Some((source, value)) = cursor {
                    set_cursor(&tx, source, value, now)?;
                }
                let inserted = insert_event.execute(params![
                    ev.key,
                    ev.source,
                    now,
                    ev.revision,
                    ev.event,
                    ev.refused,
                    ev.record
                ])?;
                if inserted == 0 {
                    results.push(Accepted::Duplicate);
                    continue;
                }
                let event_id = tx.last_insert_rowid();
                for t in ev.tallies {
                    for span in Tally::SPANS {
                        tally.execute(params![
                            span,
                            now - now.rem_euclid(span),
                            t.connection,
                            t.subject,
                            t.outcome,
                            t.reason,
                            t.source_loc
                        ])?;
                    }
                }
                let mut queued = 0;
                for a in *actions {
                    queued += insert_action.execute(params![
                        a.key,
                        event_id,
                        a.connection,
                        a.record,
                        a.kind,
                        a.op,
                        a.rule,
                        a.source_loc,
                        a.revision,
                        now
                    ])?;
                }
                results.push(Accepted::New {
                    event_id,
                    queued,
                    already: actions.len() - queued,
                });
            }
        }
        tx.commit()?;
        Ok(results)
    }
}
