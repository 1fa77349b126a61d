//! Sealed OAuth grants, one row per connection (schema 5): the
//! compare-and-swap on `generation` that keeps two writers from both
//! storing a refresh, and the intent marker written before a refresh goes
//! out. Bytes in, bytes out: sealing is `runtime::seal`'s.

use super::{write, SqliteStore};
use crate::runtime::store::api::Credentials;
use crate::runtime::store::error::StoreError;
use crate::runtime::store::types::{now_ms, CredentialState, SealedCredential, StoredCredential};
use rusqlite::{params, OptionalExtension, Row};

const COLUMNS: &str = "connection, generation, flow, key_id, nonce, sealed, access_expires_ms, \
     refresh_expires_ms, updated_ms, refreshing_since_ms, state, last_error";

fn stored(r: &Row<'_>) -> rusqlite::Result<StoredCredential> {
    let state: String = r.get(10)?;
    Ok(StoredCredential {
        sealed: SealedCredential {
            connection: r.get(0)?,
            generation: r.get(1)?,
            flow: r.get(2)?,
            key_id: r.get(3)?,
            nonce: r.get(4)?,
            sealed: r.get(5)?,
            access_expires_ms: r.get(6)?,
            refresh_expires_ms: r.get(7)?,
        },
        updated_ms: r.get(8)?,
        refreshing_since_ms: r.get(9)?,
        // The CHECK constraint keeps anything else out.
        state: CredentialState::parse(&state).unwrap_or(CredentialState::Undecryptable),
        last_error: r.get(11)?,
    })
}

impl Credentials for SqliteStore {
    fn load_credential(&self, connection: &str) -> Result<Option<StoredCredential>, StoreError> {
        Ok(self
            .db()
            .query_row(
                &format!("SELECT {COLUMNS} FROM credentials WHERE connection = ?1"),
                params![connection],
                stored,
            )
            .optional()?)
    }

    fn begin_refresh(
        &self,
        connection: &str,
        generation: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        write(&mut self.db(), &self.health, |tx| {
            Ok(tx.execute(
                "UPDATE credentials SET refreshing_since_ms = ?3
                 WHERE connection = ?1 AND generation = ?2",
                params![connection, generation, now],
            )? == 1)
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
        let now = now_ms();
        write(&mut self.db(), &self.health, |tx| {
            let changed = match expected {
                None => tx.execute(
                    &format!(
                        "INSERT INTO credentials ({COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, 'ok', NULL)
                         ON CONFLICT(connection) DO NOTHING"
                    ),
                    params![
                        new.connection,
                        new.generation,
                        new.flow,
                        new.key_id,
                        new.nonce,
                        new.sealed,
                        new.access_expires_ms,
                        new.refresh_expires_ms,
                        now
                    ],
                )?,
                Some(old) => tx.execute(
                    "UPDATE credentials SET generation = ?2, flow = ?3, key_id = ?4, nonce = ?5,
                       sealed = ?6, access_expires_ms = ?7, refresh_expires_ms = ?8,
                       updated_ms = ?9, refreshing_since_ms = NULL, state = 'ok', last_error = NULL
                     WHERE connection = ?1 AND generation = ?10",
                    params![
                        new.connection,
                        new.generation,
                        new.flow,
                        new.key_id,
                        new.nonce,
                        new.sealed,
                        new.access_expires_ms,
                        new.refresh_expires_ms,
                        now,
                        old
                    ],
                )?,
            };
            Ok(changed == 1)
        })
    }

    fn mark_credential(
        &self,
        connection: &str,
        generation: i64,
        state: CredentialState,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        write(&mut self.db(), &self.health, |tx| {
            tx.execute(
                "UPDATE credentials SET state = ?3, last_error = ?4, updated_ms = ?5
                 WHERE connection = ?1 AND generation = ?2",
                params![connection, generation, state.as_str(), error, now_ms()],
            )?;
            Ok(())
        })
    }

    fn credentials(&self) -> Result<Vec<StoredCredential>, StoreError> {
        // On the reader: `/healthz` and `/metrics` list these on every
        // request and must not wait for a write.
        let db = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = db.prepare(&format!(
            "SELECT {COLUMNS} FROM credentials ORDER BY connection"
        ))?;
        let rows = stmt.query_map([], stored)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}
