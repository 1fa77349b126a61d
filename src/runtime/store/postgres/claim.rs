//! Claiming a connection's due groups with several replicas claiming at
//! once: at most one group of a record in flight, a record's actions in
//! the order they were decided, no row claimed twice.
//!
//! One transaction, never held across an HTTP call:
//! 1. rows whose claim outlived its lease (the replica died or stalled)
//!    go back to `pending`, unconfirmed;
//! 2. each record's head (its oldest unfinished row) is found by a loose
//!    scan of the `outbox_open` index: one probe per record with work,
//!    however many rows a record has queued;
//! 3. the due heads are locked `FOR UPDATE SKIP LOCKED` (a head another
//!    replica is claiming is skipped, one it claimed a moment ago is no
//!    longer `pending` when re-read under the lock);
//! 4. each locked record's group is taken as on SQLite
//!    ([`crate::runtime::store::group`]) and marked `sending` with this
//!    replica's name, a lease and a new epoch.

use super::{PgError, PgStore};
use crate::runtime::store::error::StoreError;
use crate::runtime::store::group::{basis_of, take, OpenRow, Taken, OPEN_ROWS_SHIPPED, RECENT_MS};
use crate::runtime::store::types::{Claimed, Group};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The condition of `outbox_open`'s rows, written as the index is, so the
/// planner uses it.
const OPEN: &str = "(state IN ('pending', 'sending') OR parked_for = 'outage')";

impl PgStore {
    pub(super) fn claim_groups(
        &self,
        connection: &str,
        now: i64,
        max: usize,
    ) -> Result<Vec<Group>, StoreError> {
        let (pool, connection) = (self.pool.clone(), connection.to_string());
        let (replica, lease, fences) = (self.replica.clone(), self.lease_ms, self.fences.clone());
        let until = self.until.clone();
        self.write(move || {
            let (pool, connection, replica, fences, until) = (
                pool.clone(),
                connection.clone(),
                replica.clone(),
                fences.clone(),
                until.clone(),
            );
            async move {
                let asked = std::time::Instant::now();
                let claimed = claim(&pool, &connection, now, max, &replica, lease, &fences).await?;
                let safe = super::safe_until(asked, lease);
                let mut until = until.lock().unwrap_or_else(|e| e.into_inner());
                for g in &claimed.1 {
                    until.insert(*g, safe);
                }
                Ok(claimed.0)
            }
        })
    }
}

async fn claim(
    pool: &deadpool_postgres::Pool,
    connection: &str,
    now: i64,
    max: usize,
    replica: &str,
    lease: i64,
    fences: &Arc<Mutex<HashMap<i64, i64>>>,
) -> Result<(Vec<Group>, Vec<i64>), PgError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    tx.execute(
        "UPDATE outbox SET state = 'pending', unconfirmed = TRUE, claimed_by = NULL,
           lease_until = NULL
         WHERE connection = $1 AND state = 'sending' AND lease_until < l3map_now_ms()",
        &[&connection],
    )
    .await?;
    let heads = tx
        .query(
            &format!(
                "WITH RECURSIVE recs(record) AS (
                   (SELECT record FROM outbox WHERE connection = $1 AND {OPEN}
                    ORDER BY record LIMIT 1)
                   UNION ALL
                   SELECT (SELECT o.record FROM outbox o
                           WHERE o.connection = $1 AND o.record > recs.record
                             AND (o.state IN ('pending', 'sending') OR o.parked_for = 'outage')
                           ORDER BY o.record LIMIT 1)
                   FROM recs WHERE recs.record IS NOT NULL)
                 SELECT h.id FROM recs CROSS JOIN LATERAL (
                   SELECT id, state, not_before FROM outbox o
                   WHERE o.connection = $1 AND o.record = recs.record
                     AND (o.state IN ('pending', 'sending') OR o.parked_for = 'outage')
                   ORDER BY o.id LIMIT 1) h
                 WHERE recs.record IS NOT NULL AND h.state = 'pending' AND h.not_before <= $2
                 ORDER BY h.id"
            ),
            &[&connection, &now],
        )
        .await?;
    let heads: Vec<i64> = heads.iter().map(|r| r.get(0)).collect();
    if heads.is_empty() {
        tx.commit().await?;
        return Ok((Vec::new(), Vec::new()));
    }
    let locked = tx
        .query(
            "SELECT id, record, event_id FROM outbox
             WHERE id = ANY($1) AND state = 'pending' AND not_before <= $2
             ORDER BY id LIMIT $3
             FOR UPDATE SKIP LOCKED",
            &[&heads, &now, &i64::try_from(max).unwrap_or(i64::MAX)],
        )
        .await?;
    let mut groups = Vec::new();
    let mut claimed: Vec<(i64, i64)> = Vec::new();
    for head in &locked {
        let (record, event_id): (String, i64) = (head.get(1), head.get(2));
        let rows = open_rows(&tx, connection, &record).await?;
        // The locked row is still its record's head? (A row of an older
        // event committed after the heads were read would come first.)
        if rows.first().map(|r| r.claimed.id) != Some(head.get::<_, i64>(0)) {
            continue;
        }
        let coalesce = record.parse::<u64>().is_ok();
        let Taken {
            items,
            unconfirmed,
            events,
        } = take(&rows, event_id, coalesce, now);
        let mut bases = Vec::new();
        let mut whole = Vec::new();
        for ev in &events {
            let row = tx
                .query_opt("SELECT event FROM events WHERE id = $1", &[ev])
                .await?;
            if let Some(event) = row.map(|r| r.get::<_, String>(0)) {
                if let Some(b) = basis_of(&event) {
                    bases.push((*ev, b));
                }
                // Every event whole (an agent turn's too): what a retry
                // without a basis is decided again against.
                whole.push((*ev, event));
            }
        }
        let basis = bases.last().map(|(_, b)| b.clone());
        let recent_updates: Vec<i64> = if coalesce {
            tx.query(
                "SELECT DISTINCT updated_ms FROM outbox
                 WHERE connection = $1 AND record = $2 AND state = 'done' AND updated_ms >= $3
                 ORDER BY updated_ms",
                &[&connection, &record, &(now - RECENT_MS)],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect()
        } else {
            Vec::new()
        };
        let ids: Vec<i64> = items.iter().map(|c| c.id).collect();
        let epoch: i64 = tx.query_one("SELECT nextval('epochs')", &[]).await?.get(0);
        tx.execute(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_ms = $2,
               claimed_by = $3, lease_until = l3map_now_ms() + $4, epoch = $5
             WHERE id = ANY($1)",
            &[&ids, &now, &replica, &lease, &epoch],
        )
        .await?;
        claimed.extend(ids.iter().map(|id| (*id, epoch)));
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
    tx.commit().await?;
    let ids = claimed.iter().map(|(id, _)| *id).collect();
    fences
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(claimed);
    Ok((groups, ids))
}

/// The record's unfinished rows (pending, sending, parked for an outage),
/// oldest first.
async fn open_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    connection: &str,
    record: &str,
) -> Result<Vec<OpenRow>, PgError> {
    let rows = tx
        .query(
            &format!(
                "SELECT id, key, kind, op, rule, source_loc, revision, attempts, created_ms,
                        unconfirmed, outage_tries, failing_since, event_id, state, not_before
                 FROM outbox
                 WHERE connection = $1 AND record = $2 AND {OPEN}
                 ORDER BY id LIMIT $3"
            ),
            &[&connection, &record, &OPEN_ROWS_SHIPPED],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let attempts = u32::try_from(r.get::<_, i32>(7))
                .unwrap_or(0)
                .saturating_add(1);
            let outage = u32::try_from(r.get::<_, i32>(10)).unwrap_or(0);
            OpenRow {
                event: r.get(12),
                state: r.get(13),
                not_before: r.get(14),
                unconfirmed: r.get(9),
                claimed: Claimed {
                    id: r.get(0),
                    key: r.get(1),
                    kind: r.get(2),
                    op: r.get(3),
                    rule: r.get(4),
                    source_loc: r.get(5),
                    revision: r.get(6),
                    attempts,
                    counted: attempts.saturating_sub(outage).max(1),
                    failing_since: r.get(11),
                    created_ms: r.get(8),
                    event_id: r.get(12),
                },
            }
        })
        .collect())
}
