//! Events in (each accepted once by its key, whichever replica it reached
//! first: the unique key decides, and a second replica inserting the same
//! key waits for the first one's commit and finds it) and the sources'
//! cursors, moved in the same transaction as the events they cover.
//! Transaction-level advisory locks only (released at commit), which
//! PgBouncer's transaction pooling keeps.

use super::{PgError, PgStore};
use crate::runtime::store::api::{Cursors, Inbox};
use crate::runtime::store::error::StoreError;
use crate::runtime::store::types::{now_ms, Accepted, NewAction, Submission, Tally};
use deadpool_postgres::GenericClient;

/// A submission owned, to move onto the store's runtime.
#[derive(Clone)]
struct Owned {
    key: String,
    source: String,
    revision: String,
    event: String,
    refused: String,
    record: Option<String>,
    tallies: Vec<Tally>,
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
                record: s.event.record.map(str::to_string),
                tallies: s.event.tallies.to_vec(),
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
                let results = record(&tx, &batch, &fence).await?;
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

/// Records `batch` in `tx` in a handful of statements, whatever its size
/// (a statement is a round trip): the record locks, one multi-row insert
/// of the events, one of their actions, and the cursors. What a batch
/// repeats is settled here as if its submissions came one at a time: a
/// key seen earlier in the batch is a duplicate, an action key queued
/// earlier in it is `already`.
async fn record(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &[Owned],
    fence: &Fence,
) -> Result<Vec<Accepted>, PgError> {
    let now = now_ms();
    // A record's actions must get ids in the order they commit (its head
    // is its lowest id): two replicas queueing for one record take turns,
    // each record's lock taken in one order (sorted) so that two batches
    // never wait on each other.
    let mut records: Vec<String> = batch
        .iter()
        .flat_map(|s| s.actions.iter())
        .map(|a| format!("{}\u{1f}{}", a.connection, a.record))
        .collect();
    records.sort_unstable();
    records.dedup();
    if !records.is_empty() {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(r, 0))
             FROM unnest($1::TEXT[]) WITH ORDINALITY AS u(r, n) ORDER BY n",
            &[&records],
        )
        .await?;
    }
    // The first submission of each key; the rest are duplicates.
    let mut firsts = std::collections::HashSet::new();
    let first: Vec<&Owned> = batch.iter().filter(|s| firsts.insert(&s.key)).collect();
    let column = |f: fn(&Owned) -> &str| -> Vec<&str> { first.iter().map(|s| f(s)).collect() };
    let rows = tx
        .query(
            "INSERT INTO events (key, source, received_ms, revision, event, refused, record)
             SELECT k, s, $6, r, e, f, c
             FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $7::TEXT[])
               WITH ORDINALITY AS u(k, s, r, e, f, c, n)
             ORDER BY n
             ON CONFLICT (key) DO NOTHING RETURNING key, id",
            &[
                &column(|s| &s.key),
                &column(|s| &s.source),
                &column(|s| &s.revision),
                &column(|s| &s.event),
                &column(|s| &s.refused),
                &now,
                &first
                    .iter()
                    .map(|s| s.record.as_deref())
                    .collect::<Vec<Option<&str>>>(),
            ],
        )
        .await?;
    let ids: std::collections::HashMap<String, i64> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    tally(
        tx,
        first
            .iter()
            .filter(|s| ids.contains_key(&s.key))
            .flat_map(|s| s.tallies.iter()),
        now,
    )
    .await?;
    // The actions of the new events, in batch order, each key once.
    let mut keys = std::collections::HashSet::new();
    let actions: Vec<(i64, &NewAction)> = first
        .iter()
        .filter_map(|s| Some((*ids.get(&s.key)?, s)))
        .flat_map(|(id, s)| s.actions.iter().map(move |a| (id, a)))
        .filter(|(_, a)| keys.insert(a.key.as_str()))
        .collect();
    let mut queued_keys = std::collections::HashSet::new();
    if !actions.is_empty() {
        let text = |f: fn(&NewAction) -> &str| -> Vec<&str> {
            actions.iter().map(|(_, a)| f(a)).collect()
        };
        let event_ids: Vec<i64> = actions.iter().map(|(id, _)| *id).collect();
        for r in tx
            .query(
                "INSERT INTO outbox (key, event_id, connection, record, kind, op, rule,
                   source_loc, revision, state, created_ms, updated_ms)
                 SELECT k, e, c, r, kd, o, ru, sl, rv, 'pending', $10, $10
                 FROM unnest($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                             $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[])
                   WITH ORDINALITY AS u(k, e, c, r, kd, o, ru, sl, rv, n)
                 ORDER BY n
                 ON CONFLICT (key) DO NOTHING RETURNING key",
                &[
                    &text(|a| &a.key),
                    &event_ids,
                    &text(|a| &a.connection),
                    &text(|a| &a.record),
                    &text(|a| &a.kind),
                    &text(|a| &a.op),
                    &text(|a| &a.rule),
                    &text(|a| &a.source_loc),
                    &text(|a| &a.revision),
                    &now,
                ],
            )
            .await?
        {
            queued_keys.insert(r.get::<_, String>(0));
        }
    }
    // Cursors move with their events: the last value of each source.
    let mut cursors: Vec<(&str, &str)> = Vec::new();
    for (source, value) in batch.iter().filter_map(|s| s.cursor.as_ref()) {
        cursors.retain(|(s, _)| *s != source.as_str());
        cursors.push((source, value));
    }
    for (source, value) in cursors {
        set_cursor(tx, source, value, now, fence).await?;
    }
    // Each submission's answer, in batch order; an action key counts as
    // queued for the first new event that carries it.
    let mut counted = std::collections::HashSet::new();
    let mut answered = std::collections::HashSet::new();
    Ok(batch
        .iter()
        .map(|s| match ids.get(&s.key) {
            Some(&event_id) if answered.insert(&s.key) => {
                let queued = s
                    .actions
                    .iter()
                    .filter(|a| queued_keys.contains(&a.key) && counted.insert(a.key.as_str()))
                    .count();
                Accepted::New {
                    event_id,
                    queued,
                    already: s.actions.len() - queued,
                }
            }
            _ => Accepted::Duplicate,
        })
        .collect())
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

/// Counts the new events' tallies into their minute and hour, summed here
/// first (one statement may not update a row twice), on one of 16 shards
/// by transaction id, as `counts` is.
async fn tally(
    tx: &deadpool_postgres::Transaction<'_>,
    tallies: impl Iterator<Item = &Tally>,
    now: i64,
) -> Result<(), PgError> {
    let mut sums: std::collections::BTreeMap<(i64, &Tally), i64> =
        std::collections::BTreeMap::new();
    for t in tallies {
        for span in Tally::SPANS {
            *sums.entry((span, t)).or_default() += 1;
        }
    }
    if sums.is_empty() {
        return Ok(());
    }
    let spans: Vec<i64> = sums.keys().map(|(s, _)| *s).collect();
    let buckets: Vec<i64> = spans.iter().map(|s| now - now.rem_euclid(*s)).collect();
    let text = |f: fn(&Tally) -> &str| -> Vec<&str> { sums.keys().map(|(_, t)| f(t)).collect() };
    let ns: Vec<i64> = sums.values().copied().collect();
    tx.execute(
        "INSERT INTO tallies (span_ms, bucket_ms, connection, subject, outcome, reason, source_loc, shard, n)
         SELECT sp, b, c, s, o, r, l, (txid_current() % 16)::INTEGER, n
         FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[],
                     $7::TEXT[], $8::BIGINT[]) AS u(sp, b, c, s, o, r, l, n)
         ON CONFLICT (span_ms, bucket_ms, connection, subject, outcome, reason, source_loc, shard)
         DO UPDATE SET n = tallies.n + EXCLUDED.n",
        &[
            &spans,
            &buckets,
            &text(|t| &t.connection),
            &text(|t| &t.subject),
            &text(|t| &t.outcome),
            &text(|t| &t.reason),
            &text(|t| &t.source_loc),
            &ns,
        ],
    )
    .await?;
    Ok(())
}
