//! Events in (each accepted once by its key, whichever replica it reached
//! first: the unique key decides, and a second replica inserting the same
//! key waits for the first one's commit and finds it) and the sources'
//! cursors, moved in the same transaction as the events they cover.
//! Transaction-level advisory locks only (released at commit), which
//! PgBouncer's transaction pooling keeps.

use super::{PgError, PgStore};
use crate::runtime::store::api::{Cursors, Inbox};
use crate::runtime::store::error::StoreError;
use crate::runtime::store::types::{now_ms, Accepted, NewAction, Submission};
use deadpool_postgres::GenericClient;

/// A submission owned, to move onto the store's runtime.
#[derive(Clone)]
struct Owned {
    key: String,
    source: String,
    revision: String,
    event: String,
    refused: String,
    actions: Vec<NewAction>,
    cursor: Option<(String, String)>,
}

impl Inbox for PgStore {
    fn accept_all(&self, batch: &[Submission<'_>]) -> Result<Vec<Accepted>, StoreError> {
        let owned: Vec<Owned> = batch
            .iter()
            .map(|s| Owned {
                key: s.event.key.into(),
                source: s.event.source.into(),
                revision: s.event.revision.into(),
                event: s.event.event.into(),
                refused: s.event.refused.into(),
                actions: s.actions.to_vec(),
                cursor: s.cursor.map(|(a, b)| (a.to_string(), b.to_string())),
            })
            .collect();
        let owned = std::sync::Arc::new(owned);
        let pool = self.pool.clone();
        let fence = self.fence();
        self.write(move || {
            let (pool, batch, fence) = (pool.clone(), owned.clone(), fence.clone());
            async move {
                let mut c = pool.get().await?;
                let tx = c.transaction().await?;
                super::revisions::check_decided_by(&tx, batch.iter().map(|s| s.revision.as_str()))
                    .await?;
                let now = now_ms();
                let insert_event = tx
                    .prepare_cached(
                        "INSERT INTO events (key, source, received_ms, revision, event, refused)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (key) DO NOTHING RETURNING id",
                    )
                    .await?;
                let insert_action = tx
                    .prepare_cached(
                        "INSERT INTO outbox (key, event_id, connection, record, kind, op, rule,
                           source_loc, revision, state, created_ms, updated_ms)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $10)
                         ON CONFLICT (key) DO NOTHING",
                    )
                    .await?;
                // A record's actions must get ids in the order they
                // commit (its head is its lowest id): two replicas queueing
                // for one record take turns, each record's lock taken in
                // one order so that two batches never wait on each other.
                let mut records: Vec<String> = batch
                    .iter()
                    .flat_map(|s| s.actions.iter())
                    .map(|a| format!("{}\u{1f}{}", a.connection, a.record))
                    .collect();
                records.sort_unstable();
                records.dedup();
                for r in &records {
                    tx.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                        &[r],
                    )
                    .await?;
                }
                let mut results = Vec::with_capacity(batch.len());
                for s in batch.iter() {
                    if let Some((source, value)) = &s.cursor {
                        set_cursor(&tx, source, value, now, &fence).await?;
                    }
                    let id = tx
                        .query_opt(
                            &insert_event,
                            &[&s.key, &s.source, &now, &s.revision, &s.event, &s.refused],
                        )
                        .await?;
                    let Some(id) = id else {
                        results.push(Accepted::Duplicate);
                        continue;
                    };
                    let event_id: i64 = id.get(0);
                    let mut queued = 0;
                    for a in &s.actions {
                        queued += tx
                            .execute(
                                &insert_action,
                                &[
                                    &a.key,
                                    &event_id,
                                    &a.connection,
                                    &a.record,
                                    &a.kind,
                                    &a.op,
                                    &a.rule,
                                    &a.source_loc,
                                    &a.revision,
                                    &now,
                                ],
                            )
                            .await? as usize;
                    }
                    results.push(Accepted::New {
                        event_id,
                        queued,
                        already: s.actions.len() - queued,
                    });
                }
                tx.commit().await?;
                Ok(results)
            }
        })
    }

    fn event(&self, key: &str) -> Result<Option<String>, StoreError> {
        let (pool, key) = (self.pool.clone(), key.to_string());
        self.read(async move {
            let c = pool.get().await?;
            let row = c
                .query_opt("SELECT event FROM events WHERE key = $1", &[&key])
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn events_with_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let (pool, prefix) = (self.pool.clone(), prefix.to_string());
        self.read(async move {
            let c = pool.get().await?;
            // A range of the key's unique index (the column is COLLATE
            // "C": byte order, as SQLite compares).
            let upper = format!("{prefix}\u{ffff}");
            let n: i64 = c
                .query_one(
                    "SELECT COUNT(*) FROM events
                     WHERE key >= $1 AND key < $2",
                    &[&prefix, &upper],
                )
                .await?
                .get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn events_by_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        let (pool, prefix) = (self.pool.clone(), prefix.to_string());
        self.read(async move {
            let c = pool.get().await?;
            let upper = format!("{prefix}\u{ffff}");
            let rows = c
                .query(
                    "SELECT event FROM events
                     WHERE key >= $1 AND key < $2
                     ORDER BY key LIMIT $3",
                    &[&prefix, &upper, &i64::from(limit)],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }
}

impl Cursors for PgStore {
    fn cursor(&self, source: &str) -> Result<Option<String>, StoreError> {
        let (pool, source) = (self.pool.clone(), source.to_string());
        self.read(async move {
            let c = pool.get().await?;
            let row = c
                .query_opt("SELECT value FROM cursors WHERE source = $1", &[&source])
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn set_cursor(&self, source: &str, value: &str) -> Result<(), StoreError> {
        let (pool, source, value) = (self.pool.clone(), source.to_string(), value.to_string());
        let fence = self.fence();
        self.write(move || {
            let (pool, source, value, fence) =
                (pool.clone(), source.clone(), value.clone(), fence.clone());
            async move {
                let c = pool.get().await?;
                set_cursor(&c, &source, &value, now_ms(), &fence).await
            }
        })
    }
}

/// The singleton leases this replica holds, for fencing cursor writes.
#[derive(Clone)]
struct Fence {
    holder: std::sync::Arc<str>,
    held: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
}

impl PgStore {
    fn fence(&self) -> Fence {
        Fence {
            holder: self.replica.clone(),
            held: self.held.clone(),
        }
    }
}

/// Moves `source`'s cursor, inside whatever transaction `c` is. A cursor
/// whose singleton lease this replica holds is written with the lease's
/// epoch, and only while the lease is still this replica's: a holder that
/// stalled past its lease and woke up cannot move a cursor its successor
/// moved on (an older epoch never overwrites a newer one).
async fn set_cursor(
    c: &impl GenericClient,
    source: &str,
    value: &str,
    now: i64,
    fence: &Fence,
) -> Result<(), PgError> {
    let epoch: i64 = fence
        .held
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(source)
        .copied()
        .unwrap_or(0);
    c.execute(
        "INSERT INTO cursors (source, value, updated_ms, epoch)
         SELECT $1::TEXT, $2::TEXT, $3::BIGINT, $4::BIGINT
         WHERE $4::BIGINT = 0 OR EXISTS (
           SELECT 1 FROM leases WHERE name = $1::TEXT AND holder = $5::TEXT AND epoch = $4::BIGINT)
         ON CONFLICT (source) DO UPDATE SET value = EXCLUDED.value,
           updated_ms = EXCLUDED.updated_ms, epoch = EXCLUDED.epoch
         WHERE cursors.epoch <= EXCLUDED.epoch",
        &[&source, &value, &now, &epoch, &&*fence.holder],
    )
    .await?;
    Ok(())
}
