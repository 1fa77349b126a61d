//! What the ops console reads from a store, as rows: tallies summed over a
//! window, dead letters grouped by why they were parked, a record's audit
//! trail, and the reloads. Every read is an index range with a limit
//! (docs/CONSOLE.md, "Reading a large store").

use super::types::Row;
use serde::Serialize;

/// A [`super::Tally`] summed over a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TallyCount {
    pub connection: String,
    pub subject: String,
    pub outcome: String,
    pub reason: String,
    pub source_loc: String,
    pub n: u64,
}

/// Dead letters of one reason class (`None`: parked before schema 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadGroup {
    pub parked: Option<String>,
    pub n: u64,
}

/// The newest dead letters grouped are at most this many: the groups of a
/// store with more say "at least".
pub const DEAD_GROUPED: usize = 10_000;

/// A page of dead letters, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadQuery {
    /// Only this reason class.
    pub parked: Option<String>,
    /// Only ids below this one (the last id of the previous page).
    pub before: Option<i64>,
    pub limit: usize,
}

/// An event as its record's audit trail shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrailEvent {
    pub id: i64,
    pub key: String,
    pub source: String,
    pub received_ms: i64,
    pub revision: String,
    /// The normalised event, JSON text.
    pub event: String,
    /// Its refusals, JSON text.
    pub refused: String,
}

/// One settle of a send, or a person's requeue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub action_id: i64,
    pub attempt: u32,
    pub at_ms: i64,
    /// `applied`, `superseded` (settled unsent: a person's change or the
    /// rules decided again no longer write it), `retry`, `parked` or
    /// `requeued`.
    pub outcome: String,
    /// What the API answered (an error, a note); none for a plain success.
    pub answer: Option<String>,
}

/// A record's audit trail, newest first, each list at most its limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Trail {
    pub events: Vec<TrailEvent>,
    pub actions: Vec<Row>,
    pub attempts: Vec<Attempt>,
    /// Whether older events or actions than those listed exist.
    pub more: bool,
}

/// A revision put forward, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reload {
    pub id: i64,
    pub at_ms: i64,
    /// Which process: its replica id on PostgreSQL, `local` on SQLite
    /// (one process runs on a SQLite store).
    pub replica: String,
    pub revision: String,
    /// `live` or `refused`.
    pub outcome: String,
    /// `start`, `save`, `sighup`, `fleet`.
    pub cause: String,
    /// The diagnostics when refused, as `l3map check` prints them
    /// (without colour).
    pub diagnostics: Option<String>,
}

/// A reload to record; `bundle`: the revision's files (JSON), kept when it
/// went live so two revisions can be compared.
#[derive(Debug, Clone)]
pub struct NewReload<'a> {
    pub revision: &'a str,
    pub live: bool,
    pub cause: &'a str,
    pub diagnostics: Option<&'a str>,
    pub bundle: Option<&'a str>,
}

/// Reloads kept: the oldest beyond this many are deleted as new ones come.
pub const RELOADS_KEPT: i64 = 1_000;
