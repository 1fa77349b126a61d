//! Sealed OAuth grants, as on SQLite (`sqlite/credentials.rs`): the
//! compare-and-swap on `generation`, and the refresh intent as a lease.
//! Replicas are on several machines, so a writer's liveness is not known:
//! another's intent holds a refresh off until the lease runs out.

use super::{PgError, PgStore};
use crate::runtime::store::api::Credentials;
use crate::runtime::store::error::StoreError;
use crate::runtime::store::types::{
    now_ms, CredentialState, RefreshLease, SealedCredential, StoredCredential,
};

const COLUMNS: &str = "connection, generation, flow, key_id, nonce, sealed, access_expires_ms, \
     refresh_expires_ms, updated_ms, refreshing_since_ms, state, last_error";

fn stored(r: &tokio_postgres::Row) -> StoredCredential {
    let state: String = r.get(10);
    StoredCredential {
        sealed: SealedCredential {
            connection: r.get(0),
            generation: r.get(1),
            flow: r.get(2),
            key_id: r.get(3),
            nonce: r.get(4),
            sealed: r.get(5),
            access_expires_ms: r.get(6),
            refresh_expires_ms: r.get(7),
        },
        updated_ms: r.get(8),
        refreshing_since_ms: r.get(9),
        // The CHECK constraint keeps anything else out.
        state: CredentialState::parse(&state).unwrap_or(CredentialState::Undecryptable),
        last_error: r.get(11),
    }
}

impl Credentials for PgStore {
    fn load_credential(&self, connection: &str) -> Result<Option<StoredCredential>, StoreError> {
        let (pool, connection) = (self.pool.clone(), connection.to_string());
        self.read(async move {
            let c = pool.get().await?;
            let row = c
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM credentials WHERE connection = $1"),
                    &[&connection],
                )
                .await?;
            Ok(row.as_ref().map(stored))
        })
    }

    fn begin_refresh(
        &self,
        connection: &str,
        generation: i64,
        now: i64,
        mine: Option<i64>,
        stale_before: i64,
    ) -> Result<RefreshLease, StoreError> {
        let (pool, connection) = (self.pool.clone(), connection.to_string());
        self.write(move || {
            let (pool, connection) = (pool.clone(), connection.clone());
            async move {
                let c = pool.get().await?;
                let taken = c
                    .execute(
                        "UPDATE credentials SET refreshing_since_ms = $3
                         WHERE connection = $1 AND generation = $2
                           AND (refreshing_since_ms IS NULL OR refreshing_since_ms = $4
                                OR refreshing_since_ms < $5)",
                        &[&connection, &generation, &now, &mine, &stale_before],
                    )
                    .await?
                    == 1;
                if taken {
                    return Ok(RefreshLease::Taken(now));
                }
                let stored: Option<i64> = c
                    .query_opt(
                        "SELECT generation FROM credentials WHERE connection = $1",
                        &[&connection],
                    )
                    .await?
                    .map(|r| r.get(0));
                Ok::<_, PgError>(if stored == Some(generation) {
                    RefreshLease::Held
                } else {
                    RefreshLease::MovedOn
                })
            }
        })
    }

    fn commit_credential(
        &self,
        expected: Option<i64>,
        new: &SealedCredential,
    ) -> Result<bool, StoreError> {
        if new.generation != expected.unwrap_or(0) + 1 {
            return Err(StoreError::Backend(format!(
                "credential of `{}`: generation {} cannot follow {:?}",
                new.connection, new.generation, expected
            )));
        }
        let (pool, new) = (self.pool.clone(), new.clone());
        self.write(move || {
            let (pool, n) = (pool.clone(), new.clone());
            async move {
                let c = pool.get().await?;
                let now = now_ms();
                let changed = match expected {
                    None => {
                        c.execute(
                            &format!(
                                "INSERT INTO credentials ({COLUMNS})
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, 'ok', NULL)
                                 ON CONFLICT (connection) DO NOTHING"
                            ),
                            &[
                                &n.connection,
                                &n.generation,
                                &n.flow,
                                &n.key_id,
                                &n.nonce,
                                &n.sealed,
                                &n.access_expires_ms,
                                &n.refresh_expires_ms,
                                &now,
                            ],
                        )
                        .await?
                    }
                    Some(old) => {
                        c.execute(
                            "UPDATE credentials SET generation = $2, flow = $3, key_id = $4,
                               nonce = $5, sealed = $6, access_expires_ms = $7,
                               refresh_expires_ms = $8, updated_ms = $9,
                               refreshing_since_ms = NULL, state = 'ok', last_error = NULL
                             WHERE connection = $1 AND generation = $10",
                            &[
                                &n.connection,
                                &n.generation,
                                &n.flow,
                                &n.key_id,
                                &n.nonce,
                                &n.sealed,
                                &n.access_expires_ms,
                                &n.refresh_expires_ms,
                                &now,
                                &old,
                            ],
                        )
                        .await?
                    }
                };
                Ok::<_, PgError>(changed == 1)
            }
        })
    }

    fn mark_credential(
        &self,
        connection: &str,
        generation: i64,
        state: CredentialState,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let (pool, connection) = (self.pool.clone(), connection.to_string());
        let error = error.map(str::to_string);
        self.write(move || {
            let (pool, connection, error) = (pool.clone(), connection.clone(), error.clone());
            async move {
                let c = pool.get().await?;
                c.execute(
                    "UPDATE credentials SET state = $3, last_error = $4, updated_ms = $5
                     WHERE connection = $1 AND generation = $2",
                    &[&connection, &generation, &state.as_str(), &error, &now_ms()],
                )
                .await?;
                Ok::<_, PgError>(())
            }
        })
    }

    fn credentials(&self) -> Result<Vec<StoredCredential>, StoreError> {
        let pool = self.pool.clone();
        self.read(async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    &format!("SELECT {COLUMNS} FROM credentials ORDER BY connection"),
                    &[],
                )
                .await?;
            Ok(rows.iter().map(stored).collect())
        })
    }
}
