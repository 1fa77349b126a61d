//! Settling what this replica claimed, fenced by the claim's epoch: a row
//! whose claim ran out and was taken by another replica carries another
//! epoch, and the late answer changes nothing.

use super::{PgError, PgStore};
use crate::runtime::store::api::Outbox;
use crate::runtime::store::error::StoreError;
use crate::runtime::store::types::{now_ms, Group};
use std::sync::Arc;

/// How a settle changes a row: its `SET` list, where `$2` is now (ms),
/// `$3` the epoch its claim got and `$4`.. the arguments.
struct Settle {
    set: &'static str,
    /// Only rows still `sending` (a retry, a park): a row a late `done`
    /// already finished stays finished.
    in_flight: bool,
}

const DONE: Settle = Settle {
    set: "state = 'done', not_before = 0, unconfirmed = FALSE, updated_ms = $2",
    in_flight: false,
};

impl PgStore {
    /// Applies `settle` to `ids` (each with the epoch this replica claimed
    /// it with, if it did), `args` as `$4`...
    fn settle(
        &self,
        ids: &[i64],
        settle: &'static Settle,
        args: Vec<Arg>,
    ) -> Result<(), StoreError> {
        // Read, not taken: a settle that fails is tried again (the
        // worker's record loop) and must be fenced the same way.
        let fenced: Vec<(i64, Option<i64>)> = {
            let fences = self.fences.lock().unwrap_or_else(|e| e.into_inner());
            ids.iter()
                .map(|id| (*id, fences.get(id).copied()))
                .collect()
        };
        let (pool, fenced, args) = (self.pool.clone(), Arc::new(fenced), Arc::new(args));
        self.write(move || {
            let (pool, fenced, args) = (pool.clone(), fenced.clone(), args.clone());
            async move {
                let mut c = pool.get().await?;
                let tx = c.transaction().await?;
                let sql = format!(
                    "UPDATE outbox SET {}, claimed_by = NULL, lease_until = NULL
                     WHERE id = $1 AND ($3::BIGINT IS NULL OR epoch = $3){}",
                    settle.set,
                    if settle.in_flight {
                        " AND state = 'sending'"
                    } else {
                        ""
                    }
                );
                let q = tx.prepare_cached(&sql).await?;
                let now = now_ms();
                for (id, epoch) in fenced.iter() {
                    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                        vec![id, &now, epoch];
                    params.extend(args.iter().map(Arg::sql));
                    tx.execute(&q, &params).await?;
                }
                tx.commit().await?;
                Ok(())
            }
        })?;
        self.let_go(ids);
        Ok(())
    }
}

/// A settle's argument beyond id, now and epoch.
#[derive(Debug, Clone)]
enum Arg {
    Text(Option<String>),
    Int(i64),
    Bool(bool),
}

impl Arg {
    fn sql(&self) -> &(dyn tokio_postgres::types::ToSql + Sync) {
        match self {
            Arg::Text(t) => t,
            Arg::Int(i) => i,
            Arg::Bool(b) => b,
        }
    }
}

impl PgStore {
    /// Forgets rows this replica held: their heartbeat stops (settled, or
    /// left for their lease to run out).
    fn let_go(&self, ids: &[i64]) {
        let mut fences = self.fences.lock().unwrap_or_else(|e| e.into_inner());
        let mut until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            fences.remove(id);
            until.remove(id);
        }
    }
}

impl Outbox for PgStore {
    fn applied_since(
        &self,
        connection: &str,
        record: &str,
        since_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let (pool, connection, record) = (
            self.pool.clone(),
            connection.to_string(),
            record.to_string(),
        );
        self.read(async move {
            let c = pool.get().await?;
            Ok(c.query(
                "SELECT op FROM outbox WHERE connection = $1 AND record = $2 AND state = 'done'
                   AND updated_ms >= $3 ORDER BY id",
                &[&connection, &record, &since_ms],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    fn held_until(&self, ids: &[i64]) -> Option<std::time::Instant> {
        let until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        // A row this process does not hold (settled meanwhile) is held by
        // no one here: now.
        Some(
            ids.iter()
                .map(|id| {
                    until
                        .get(id)
                        .copied()
                        .unwrap_or_else(std::time::Instant::now)
                })
                .min()
                .unwrap_or_else(std::time::Instant::now),
        )
    }

    fn abandon(&self, ids: &[i64]) {
        self.let_go(ids);
    }

    fn claim(&self, connection: &str, now: i64, max: usize) -> Result<Vec<Group>, StoreError> {
        self.claim_groups(connection, now, max)
    }

    fn done(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.settle(ids, &DONE, Vec::new())
    }

    fn done_noted(&self, ids: &[i64], note: &str) -> Result<(), StoreError> {
        const NOTED: Settle = Settle {
            set: "state = 'done', not_before = 0, unconfirmed = FALSE, updated_ms = $2,
                  last_error = $4",
            in_flight: false,
        };
        self.settle(ids, &NOTED, vec![Arg::Text(Some(note.into()))])
    }

    fn done_rearmed(&self, ids: &[i64], note: &str) -> Result<(), StoreError> {
        const REARMED: Settle = Settle {
            set: "state = 'done', not_before = 0, unconfirmed = FALSE, updated_ms = $2,
                  last_error = $4, key = key || '~withdrawn-' || id",
            in_flight: false,
        };
        self.settle(ids, &REARMED, vec![Arg::Text(Some(note.into()))])
    }

    fn retry_later(
        &self,
        ids: &[i64],
        error: &str,
        not_before: i64,
        unconfirmed: bool,
        transient: bool,
    ) -> Result<(), StoreError> {
        const RETRY: Settle = Settle {
            set: "state = 'pending', last_error = $4, not_before = $5, unconfirmed = $6,
                  updated_ms = $2, outage_tries = outage_tries + $7::BIGINT,
                  failing_since = CASE WHEN $7::BIGINT = 1 THEN COALESCE(failing_since, $2)
                                       ELSE failing_since END",
            in_flight: true,
        };
        self.settle(
            ids,
            &RETRY,
            vec![
                Arg::Text(Some(error.into())),
                Arg::Int(not_before),
                Arg::Bool(unconfirmed),
                Arg::Int(i64::from(transient)),
            ],
        )
    }

    fn park(&self, ids: &[i64], reason: &str, kind: &str, outage: bool) -> Result<(), StoreError> {
        const PARK: Settle = Settle {
            set: "state = 'dead', last_error = $4, not_before = 0, unconfirmed = FALSE,
                  parked_for = $5, parked_kind = $6, updated_ms = $2",
            in_flight: true,
        };
        self.settle(
            ids,
            &PARK,
            vec![
                Arg::Text(Some(reason.into())),
                Arg::Text(outage.then(|| "outage".to_string())),
                Arg::Text(Some(kind.to_string())),
            ],
        )
    }

    fn requeue_outage(&self, connection: &str) -> Result<Vec<String>, StoreError> {
        let (pool, connection) = (self.pool.clone(), connection.to_string());
        self.write(move || {
            let (pool, connection) = (pool.clone(), connection.clone());
            async move {
                let c = pool.get().await?;
                let rows = c
                    .query(
                        "UPDATE outbox SET state = 'pending', unconfirmed = TRUE, not_before = 0,
                           failing_since = NULL, parked_for = NULL, updated_ms = $2
                         WHERE connection = $1 AND state = 'dead' AND parked_for = 'outage'
                         RETURNING kind",
                        &[&connection, &now_ms()],
                    )
                    .await?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            }
        })
    }

    fn probe_outage(&self, connection: &str) -> Result<Vec<String>, StoreError> {
        let (pool, connection) = (self.pool.clone(), connection.to_string());
        self.write(move || {
            let (pool, connection) = (pool.clone(), connection.clone());
            async move {
                let c = pool.get().await?;
                // The oldest parked event's rows, one statement (the
                // subquery's row is locked, so two replicas probing at
                // once requeue it once).
                let rows = c
                    .query(
                        "WITH h AS (
                           SELECT record, event_id FROM outbox
                           WHERE connection = $1 AND state = 'dead' AND parked_for = 'outage'
                           ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                         UPDATE outbox o SET state = 'pending', unconfirmed = TRUE, not_before = 0,
                           parked_for = NULL, updated_ms = $2
                         FROM h
                         WHERE o.connection = $1 AND o.record = h.record AND o.event_id = h.event_id
                           AND o.state = 'dead' AND o.parked_for = 'outage'
                         RETURNING o.kind",
                        &[&connection, &now_ms()],
                    )
                    .await?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            }
        })
    }

    /// Registers this replica and starts its heartbeat (which keeps its
    /// claims' leases). Nothing is taken back: rows `sending` are another
    /// replica's until their lease runs out, and a claim takes them then.
    fn recover_in_flight(&self) -> Result<usize, StoreError> {
        self.start_heartbeat()?;
        Ok(0)
    }
}

impl From<String> for PgError {
    fn from(m: String) -> PgError {
        PgError::Other(m)
    }
}
