//! Actions out: claimed a record at a time in the order they were decided,
//! marked `sending` before the request goes out, then settled (done, retry
//! later, parked), and taken back after a crash.

use super::SqliteStore;
use crate::runtime::store::api::Outbox;
use crate::runtime::store::error::StoreError;
use crate::runtime::store::group::{take, OpenRow, Taken, OPEN_ROWS, RECENT_MS};
use crate::runtime::store::types::{now_ms, Claimed, Group};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

impl Outbox for SqliteStore {
    fn applied_since(
        &self,
        connection: &str,
        record: &str,
        since_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let db = self.db();
        let mut q = db.prepare_cached(
            "SELECT op FROM outbox WHERE connection = ?1 AND record = ?2 AND state = 'done'
               AND updated_ms >= ?3 ORDER BY id",
        )?;
        let ops = q.query_map(params![connection, record, since_ms], |r| {
            r.get::<_, String>(0)
        })?;
        Ok(ops.collect::<Result<Vec<_>, _>>()?)
    }

    fn claim(&self, connection: &str, now: i64, max: usize) -> Result<Vec<Group>, StoreError> {
        self.tracked(|| self.claim_once(connection, now, max))
    }

    fn done(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.tracked(|| {
            self.update_each(
                "UPDATE outbox SET state = 'done', not_before = 0, unconfirmed = 0, updated_ms = ?2
                 WHERE id = ?1",
                ids,
                |id, now| vec![Box::new(id), Box::new(now)],
            )
        })
    }

    fn done_noted(&self, ids: &[i64], note: &str) -> Result<(), StoreError> {
        let note = note.to_string();
        self.tracked(|| {
            self.update_each(
                "UPDATE outbox SET state = 'done', not_before = 0, unconfirmed = 0, last_error = ?3,
                   updated_ms = ?2 WHERE id = ?1",
                ids,
                |id, now| vec![Box::new(id), Box::new(now), Box::new(note.clone())],
            )
        })
    }

    fn done_rearmed(&self, ids: &[i64], note: &str) -> Result<(), StoreError> {
        let note = note.to_string();
        self.tracked(|| {
            self.update_each(
                "UPDATE outbox SET state = 'done', not_before = 0, unconfirmed = 0, last_error = ?3,
                   updated_ms = ?2, key = key || '~withdrawn-' || id WHERE id = ?1",
                ids,
                |id, now| vec![Box::new(id), Box::new(now), Box::new(note.clone())],
            )
        })
    }

    fn retry_later(
        &self,
        ids: &[i64],
        error: &str,
        not_before: i64,
        unconfirmed: bool,
        transient: bool,
    ) -> Result<(), StoreError> {
        let error = error.to_string();
        self.tracked(|| {
            self.update_each(
                "UPDATE outbox SET state = 'pending', last_error = ?3, not_before = ?4,
                   unconfirmed = ?5, updated_ms = ?2,
                   outage_tries = outage_tries + ?6,
                   failing_since = CASE WHEN ?6 = 1 THEN COALESCE(failing_since, ?2) ELSE failing_since END
                 WHERE id = ?1 AND state = 'sending'",
                ids,
                |id, now| {
                    vec![
                        Box::new(id),
                        Box::new(now),
                        Box::new(error.clone()),
                        Box::new(not_before),
                        Box::new(unconfirmed),
                        Box::new(i64::from(transient)),
                    ]
                },
            )
        })
    }

    fn park(&self, ids: &[i64], reason: &str, kind: &str, outage: bool) -> Result<(), StoreError> {
        let (reason, kind) = (reason.to_string(), kind.to_string());
        let why = outage.then_some("outage");
        self.tracked(|| {
            self.update_each(
                "UPDATE outbox SET state = 'dead', last_error = ?3, not_before = 0, unconfirmed = 0,
                   parked_for = ?4, parked_kind = ?5, updated_ms = ?2
                 WHERE id = ?1 AND state = 'sending'",
                ids,
                |id, now| {
                    vec![
                        Box::new(id),
                        Box::new(now),
                        Box::new(reason.clone()),
                        Box::new(why),
                        Box::new(kind.clone()),
                    ]
                },
            )
        })
    }

    fn requeue_outage(&self, connection: &str) -> Result<Vec<String>, StoreError> {
        self.tracked(|| self.requeue_outage_once(connection))
    }

    fn probe_outage(&self, connection: &str) -> Result<Vec<String>, StoreError> {
        self.tracked(|| self.probe_outage_once(connection))
    }

    fn recover_in_flight(&self) -> Result<usize, StoreError> {
        self.claim_sender()?;
        self.tracked(|| {
            Ok(self.db().execute(
                "UPDATE outbox SET state = 'pending', unconfirmed = 1 WHERE state = 'sending'",
                [],
            )?)
        })
    }
}

impl SqliteStore {
    /// The record's unfinished rows (pending, sending, parked for an
    /// outage), oldest first.
    fn claimable(
        tx: &rusqlite::Transaction<'_>,
        connection: &str,
        record: &str,
    ) -> Result<Vec<OpenRow>, StoreError> {
        let mut q = tx.prepare_cached(
            // Two searches, each on its own index (an OR would read
            // every row of the record, done ones included).
            "SELECT id, key, kind, op, rule, source_loc, revision, attempts, created_ms, unconfirmed,
                    outage_tries, failing_since, event_id, state, not_before
             FROM outbox
             WHERE connection = ?1 AND record = ?2 AND state IN ('pending', 'sending')
             UNION ALL
             SELECT id, key, kind, op, rule, source_loc, revision, attempts, created_ms, unconfirmed,
                    outage_tries, failing_since, event_id, state, not_before
             FROM outbox
             WHERE connection = ?1 AND record = ?2 AND parked_for = 'outage'
             ORDER BY id
             LIMIT ?3",
        )?;
        let rows = q.query_map(params![connection, record, OPEN_ROWS], |r| {
            let attempts = r.get::<_, u32>(7)?.saturating_add(1);
            Ok(OpenRow {
                event: r.get(12)?,
                state: r.get(13)?,
                not_before: r.get(14)?,
                unconfirmed: r.get(9)?,
                claimed: Claimed {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    kind: r.get(2)?,
                    op: r.get(3)?,
                    rule: r.get(4)?,
                    source_loc: r.get(5)?,
                    revision: r.get(6)?,
                    attempts,
                    counted: attempts.saturating_sub(r.get::<_, u32>(10)?).max(1),
                    failing_since: r.get(11)?,
                    created_ms: r.get(8)?,
                    event_id: r.get(12)?,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn claim_once(&self, connection: &str, now: i64, max: usize) -> Result<Vec<Group>, StoreError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Each record's oldest unfinished action; one still `sending` means
        // a request for the record is out, and nothing behind it may pass.
        let heads: Vec<(String, i64, i64, String)> = {
            let mut q = tx.prepare_cached(
                "SELECT o.record, o.event_id, o.not_before, o.state FROM outbox o
                 JOIN (SELECT record, MIN(id) AS first FROM (
                         SELECT record, id FROM outbox
                         WHERE connection = ?1 AND state IN ('pending', 'sending')
                         UNION ALL
                         -- Two searches, each on its own index: one OR
                         -- would scan every row of the connection, done
                         -- ones included.
                         SELECT record, id FROM outbox
                         WHERE connection = ?1 AND parked_for = 'outage')
                       GROUP BY record) h
                   ON o.id = h.first
                 ORDER BY o.id",
            )?;
            let rows = q.query_map(params![connection], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut groups = Vec::new();
        for (record, event_id, not_before, state) in heads {
            if groups.len() >= max {
                break;
            }
            if state != "pending" || not_before > now {
                continue;
            }
            let rows = Self::claimable(&tx, connection, &record)?;
            let coalesce = record.parse::<u64>().is_ok();
            let Taken {
                items,
                unconfirmed,
                events,
            } = take(&rows, event_id, coalesce, now);
            let mut bases = Vec::new();
            let mut whole = Vec::new();
            for ev in &events {
                let basis: Option<(Option<String>, String)> = tx
                    .prepare_cached(
                        // Only a Zendesk ticket event's ticket is the API's
                        // read of the state decided on; a Salesforce change
                        // fanned out to tickets, or an agent turn, has none.
                        // Every event is taken whole: what a retry without a
                        // basis is decided again against.
                        "SELECT CASE WHEN json_valid(event)
                                 AND json_extract(event, '$.kind')
                                     IN ('ticket_created', 'ticket_updated', 'comment_added')
                                THEN json_extract(event, '$.ticket') END, event
                         FROM events WHERE id = ?1",
                    )?
                    .query_row(params![ev], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((b, event)) = basis {
                    if let Some(b) = b {
                        bases.push((*ev, b));
                    }
                    whole.push((*ev, event));
                }
            }
            // The newest state any of the decisions was made on.
            let basis = bases.last().map(|(_, b)| b.clone());
            // When the ticket's recent updates were settled (a restart
            // forgets the per-ticket budget; the outbox does not).
            let recent_updates: Vec<i64> = {
                if coalesce {
                    let mut q = tx.prepare_cached(
                        "SELECT DISTINCT updated_ms FROM outbox
                         WHERE connection = ?1 AND record = ?2 AND state = 'done' AND updated_ms >= ?3
                         ORDER BY updated_ms",
                    )?;
                    let rows =
                        q.query_map(params![connection, record, now - RECENT_MS], |r| r.get(0))?;
                    rows.collect::<Result<_, _>>()?
                } else {
                    Vec::new()
                }
            };
            let mut mark = tx.prepare_cached(
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_ms = ?2 WHERE id = ?1",
            )?;
            for c in &items {
                mark.execute(params![c.id, now])?;
            }
            groups.push(Group {
                connection: connection.to_string(),
                record,
                event_id,
                unconfirmed,
                items,
                basis,
                bases,
                events: whole,
                recent_updates,
            });
        }
        tx.commit()?;
        Ok(groups)
    }

    /// Runs `sql` once per id in one immediate transaction; `?1` is the
    /// id and `?2` now (ms), the rest come from `args`.
    fn update_each(
        &self,
        sql: &str,
        ids: &[i64],
        args: impl Fn(i64, i64) -> Vec<Box<dyn rusqlite::ToSql>>,
    ) -> Result<(), StoreError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut q = tx.prepare_cached(sql)?;
            let now = now_ms();
            for id in ids {
                q.execute(rusqlite::params_from_iter(args(*id, now)))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn requeue_outage_once(&self, connection: &str) -> Result<Vec<String>, StoreError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let kinds = {
            let mut q = tx.prepare_cached(
                "SELECT kind FROM outbox WHERE connection = ?1 AND state = 'dead' AND parked_for = 'outage'",
            )?;
            let kinds = q.query_map(params![connection], |r| r.get::<_, String>(0))?;
            kinds.collect::<Result<Vec<_>, _>>()?
        };
        if !kinds.is_empty() {
            tx.execute(
                "UPDATE outbox SET state = 'pending', unconfirmed = 1, not_before = 0,
                   failing_since = NULL, parked_for = NULL, updated_ms = ?2
                 WHERE connection = ?1 AND state = 'dead' AND parked_for = 'outage'",
                params![connection, now_ms()],
            )?;
        }
        tx.commit()?;
        Ok(kinds)
    }

    fn probe_outage_once(&self, connection: &str) -> Result<Vec<String>, StoreError> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows: Vec<(i64, String)> = {
            let mut q = tx.prepare_cached(
                "SELECT o.id, o.kind FROM outbox o JOIN (
                   SELECT record, event_id FROM outbox
                   WHERE connection = ?1 AND state = 'dead' AND parked_for = 'outage'
                   ORDER BY id LIMIT 1) h
                 ON o.record = h.record AND o.event_id = h.event_id
                 WHERE o.connection = ?1 AND o.state = 'dead' AND o.parked_for = 'outage'",
            )?;
            let rows = q.query_map(params![connection], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        {
            let mut q = tx.prepare_cached(
                "UPDATE outbox SET state = 'pending', unconfirmed = 1, not_before = 0,
                   parked_for = NULL, updated_ms = ?2 WHERE id = ?1",
            )?;
            let now = now_ms();
            for (id, _) in &rows {
                q.execute(params![id, now])?;
            }
        }
        tx.commit()?;
        Ok(rows.into_iter().map(|(_, kind)| kind).collect())
    }
}
