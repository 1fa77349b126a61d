//! Where each source's polling stopped: one row per source, moved in the
//! same transaction as the events it covers (see [`super::inbox`]).

use super::SqliteStore;
use crate::runtime::store::api::Cursors;
use crate::runtime::store::error::StoreError;
use crate::runtime::store::types::now_ms;
use rusqlite::{params, Connection, OptionalExtension};

impl Cursors for SqliteStore {
    fn cursor(&self, source: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT value FROM cursors WHERE source = ?1",
                params![source],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn set_cursor(&self, source: &str, value: &str) -> Result<(), StoreError> {
        self.tracked(|| set_cursor(&self.db(), source, value, now_ms()))
    }
}

/// Moves `source`'s cursor on `db`, inside whatever transaction the
/// caller holds.
pub(super) fn set_cursor(
    db: &Connection,
    source: &str,
    value: &str,
    now: i64,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO cursors (source, value, updated_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(source) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
        params![source, value, now],
    )?;
    Ok(())
}
