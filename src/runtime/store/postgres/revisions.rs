//! The fleet's mapping revision: stored revisions with their sources, the
//! one row naming the active one, and the switch. The check that keeps an
//! event decided by another revision out is in `inbox.rs` (it reads the
//! row FOR SHARE in the event's own transaction, so a switch waits for
//! it).

use super::{PgError, PgStore};
use crate::runtime::store::error::StoreError;
use crate::runtime::store::types::{ActiveRevision, Bundle, Publish};

impl crate::runtime::store::api::Revisions for PgStore {
    fn publish(
        &self,
        bundle: &Bundle,
        how: Publish,
        by: &str,
    ) -> Result<Option<String>, StoreError> {
        let json = serde_json::to_string(bundle).map_err(|e| StoreError::Backend(e.to_string()))?;
        let revision = bundle.revision.clone();
        // An empty `by` is this replica.
        let by = if by.is_empty() {
            self.replica.to_string()
        } else {
            by.to_string()
        };
        let pool = self.pool.clone();
        self.write(move || {
            let (pool, json, revision, by) =
                (pool.clone(), json.clone(), revision.clone(), by.clone());
            async move {
                let mut c = pool.get().await?;
                let tx = c.transaction().await?;
                let new = tx
                    .execute(
                        "INSERT INTO revisions (revision, bundle, published_ms, published_by)
                         VALUES ($1, $2, l3map_now_ms(), $3) ON CONFLICT (revision) DO NOTHING",
                        &[&revision, &json, &by],
                    )
                    .await?
                    == 1;
                // The row's lock orders this switch after every event
                // transaction that read the row before it.
                let active: Option<String> = tx
                    .query_opt(
                        "SELECT revision FROM fleet_revision WHERE id = 1 FOR UPDATE",
                        &[],
                    )
                    .await?
                    .map(|r| r.get(0));
                let switch = match (&active, how) {
                    (Some(a), _) if *a == revision => false,
                    (None, _) | (_, Publish::Switch) => true,
                    (Some(_), Publish::IfNew) => new,
                };
                if switch {
                    tx.execute(
                        "INSERT INTO fleet_revision (id, revision, published_by, switched_ms)
                         VALUES (1, $1, $2, l3map_now_ms())
                         ON CONFLICT (id) DO UPDATE SET revision = $1, published_by = $2,
                           switched_ms = l3map_now_ms()",
                        &[&revision, &by],
                    )
                    .await?;
                }
                tx.commit().await?;
                Ok(Some(if switch {
                    revision
                } else {
                    active.unwrap_or(revision)
                }))
            }
        })
    }

    fn active_revision(&self) -> Result<Option<String>, StoreError> {
        let pool = self.pool.clone();
        self.read(async move {
            let c = pool.get().await?;
            Ok(
                c.query_opt("SELECT revision FROM fleet_revision WHERE id = 1", &[])
                    .await?
                    .map(|r| r.get(0)),
            )
        })
    }

    fn bundle(&self, revision: &str) -> Result<Option<Bundle>, StoreError> {
        let (pool, revision) = (self.pool.clone(), revision.to_string());
        self.read(async move {
            let c = pool.get().await?;
            let Some(row) = c
                .query_opt(
                    "SELECT bundle FROM revisions WHERE revision = $1",
                    &[&revision],
                )
                .await?
            else {
                return Ok(None);
            };
            let json: String = row.get(0);
            serde_json::from_str(&json).map(Some).map_err(|e| {
                PgError::Other(format!("stored revision {revision} is unreadable: {e}"))
            })
        })
    }
}

/// The active revision as `l3map status` shows it.
pub(super) async fn active(
    c: &deadpool_postgres::Object,
) -> Result<Option<ActiveRevision>, PgError> {
    Ok(c.query_opt(
        "SELECT revision, published_by, switched_ms FROM fleet_revision WHERE id = 1",
        &[],
    )
    .await?
    .map(|r| ActiveRevision {
        revision: r.get(0),
        published_by: r.get(1),
        switched_ms: r.get(2),
    }))
}

/// The check of an event transaction: the active revision, read FOR SHARE
/// (a switch waits for this transaction, and this one for a switch under
/// way), refused as [`PgError::Moved`] when an event of `decided_by` was
/// decided by another.
pub(super) async fn check_decided_by<'a>(
    tx: &tokio_postgres::Transaction<'_>,
    decided_by: impl Iterator<Item = &'a str>,
) -> Result<(), PgError> {
    let active: Option<String> = tx
        .query_opt(
            "SELECT revision FROM fleet_revision WHERE id = 1 FOR SHARE",
            &[],
        )
        .await?
        .map(|r| r.get(0));
    if let Some(active) = active {
        let mut decided_by = decided_by;
        if decided_by.any(|r| r != active) {
            return Err(PgError::Moved(active));
        }
    }
    Ok(())
}

impl crate::runtime::store::api::TurnAnswers for PgStore {
    fn keep_answer(&self, key: &str, answer: &str, digest: &str) -> Result<(), StoreError> {
        let (pool, key, answer, digest) = (
            self.pool.clone(),
            key.to_string(),
            answer.to_string(),
            digest.to_string(),
        );
        self.write(move || {
            let (pool, key, answer, digest) =
                (pool.clone(), key.clone(), answer.clone(), digest.clone());
            async move {
                let c = pool.get().await?;
                c.execute(
                    "INSERT INTO turn_answers (key, answer, digest, at_ms)
                     VALUES ($1, $2, $3, l3map_now_ms()) ON CONFLICT (key) DO NOTHING",
                    &[&key, &answer, &digest],
                )
                .await?;
                Ok(())
            }
        })
    }

    fn kept_answer(&self, key: &str) -> Result<Option<(String, String)>, StoreError> {
        let (pool, key) = (self.pool.clone(), key.to_string());
        self.read(async move {
            let c = pool.get().await?;
            Ok(c.query_opt(
                "SELECT answer, digest FROM turn_answers
                 WHERE key = $1 AND at_ms > l3map_now_ms() - 3600000",
                &[&key],
            )
            .await?
            .map(|r| (r.get(0), r.get(1))))
        })
    }
}
