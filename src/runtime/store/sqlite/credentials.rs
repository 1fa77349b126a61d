//! Sealed OAuth grants, one row per connection (schema 5): the
//! compare-and-swap on `generation` that keeps two writers from both
//! storing a refresh, and the intent marker written before a refresh goes
//! out. Bytes in, bytes out: sealing is `runtime::seal`'s.
//!
//! The intent is a lease (see [`RefreshLease`]): another writer's intent
//! younger than the lease holds a refresh off. Every process on one SQLite
//! file is on one machine, so whether the writer is alive is known for
//! certain: it holds an OS lock (flock) on `<state>.refresh-<connection>`
//! from its intent to its commit, which the OS drops when it dies. An
//! intent whose lock is free is taken over at once (a `l3map run` killed
//! in its refresh and restarted does not wait the lease out).

use super::{write, SqliteStore};
use crate::runtime::store::api::Credentials;
use crate::runtime::store::error::StoreError;
use crate::runtime::store::types::{
    now_ms, CredentialState, RefreshLease, SealedCredential, StoredCredential,
};
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
        mine: Option<i64>,
        stale_before: i64,
    ) -> Result<RefreshLease, StoreError> {
        // Whose is an intent already there? Ours (this process holds the
        // lock: another session of ours, or our own earlier try), a live
        // process's (its lock is held), or a dead one's (the lock was free
        // and is ours now).
        let mut held = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        let dead_writer = if held.contains_key(connection) {
            false
        } else {
            match self.refresh_lock(connection)? {
                Some(lock) => {
                    held.insert(connection.to_string(), lock);
                    true
                }
                None => false,
            }
        };
        let result = write(&mut self.db(), &self.health, |tx| {
            let taken = tx.execute(
                "UPDATE credentials SET refreshing_since_ms = ?3
                 WHERE connection = ?1 AND generation = ?2
                   AND (?6 OR refreshing_since_ms IS NULL OR refreshing_since_ms = ?4
                        OR refreshing_since_ms < ?5)",
                params![connection, generation, now, mine, stale_before, dead_writer],
            )? == 1;
            if taken {
                return Ok(RefreshLease::Taken(now));
            }
            let stored: Option<i64> = tx
                .query_row(
                    "SELECT generation FROM credentials WHERE connection = ?1",
                    params![connection],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(if stored == Some(generation) {
                RefreshLease::Held
            } else {
                RefreshLease::MovedOn
            })
        });
        // A lock taken for nothing is let go (one held before this call is
        // another session's of this process, or our own earlier try's).
        if dead_writer && !matches!(result, Ok(RefreshLease::Taken(_))) {
            held.remove(connection);
        }
        result
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
        let _released = self.release_refresh(&new.connection);
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
        let _released = self.release_refresh(connection);
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

impl SqliteStore {
    /// The OS lock on `connection`'s refresh, if no other process holds
    /// it: beside the store's real path, named after the connection
    /// (other characters than `[A-Za-z0-9_-]` are written in hex).
    fn refresh_lock(&self, connection: &str) -> Result<Option<std::fs::File>, StoreError> {
        let real = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let mut name = real.as_os_str().to_owned();
        name.push(".refresh-");
        for c in connection.chars() {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                name.push(c.to_string());
            } else {
                name.push(format!("%{:x}", u32::from(c)));
            }
        }
        name.push(".lock");
        let path = std::path::PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Backend(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }

    /// The refresh of `connection` ended here (stored, or refused): its
    /// lock is let go when what this returns is dropped (after the write).
    fn release_refresh(&self, connection: &str) -> Option<std::fs::File> {
        self.refreshing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(connection)
    }
}
