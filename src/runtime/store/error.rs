//! The store layer's one error type, whichever backend is behind it.
//!
//! No backend's own error type appears here: a backend turns its errors
//! into [`StoreError::Backend`] with its message, so the engine, the CLI
//! and `/healthz` read the same thing from SQLite as from any later backend.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Returned when the store cannot be opened for a reason of the
    /// machine (a reader connection refused, a pragma failed).
    #[error("state store {path}: {message}")]
    Open { path: PathBuf, message: String },
    /// Not opened: one line naming the file and what to do.
    #[error("{0}")]
    Refused(String),
    /// Returned when a read or a write failed in the backend: its own
    /// message (SQLite's "database is locked", say), kept verbatim for the
    /// logs and `/healthz`.
    #[error("state store: {0}")]
    Backend(String),
    /// The transaction this event was committed in failed (every event of
    /// a group commit gets the same answer).
    #[error("state store: {0}")]
    Batch(String),
    /// Not recorded: the fleet switched to revision `active` while the
    /// event was decided by another. Decide it again by `active` (see
    /// [`api::Revisions`](super::api::Revisions)); nothing was written.
    #[error("the fleet serves mapping revision {active} now; the event is decided again by it")]
    RevisionMoved { active: String },
}
