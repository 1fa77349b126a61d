//! Where a session keeps its grant across restarts (the runtime's sealed
//! store, `runtime::keeper`), as the session sees it: what a kept grant is
//! made of, and the calls a refresh makes on the store.

use super::super::error::ApiError;
use super::super::secret::Secret;
use std::sync::Arc;
use std::time::Duration;

/// A grant as it is kept across restarts: what a vendor's token is made of.
#[derive(Clone, Debug)]
pub struct Kept {
    pub access: Secret,
    pub refresh: Option<Secret>,
    /// The access token's lifetime as the token endpoint said
    /// (`expires_in`), or what is left of it for a loaded grant.
    pub expires_in: Option<Duration>,
    pub refresh_expires_in: Option<Duration>,
    pub instance_url: Option<String>,
}

/// Where a session keeps its grant across restarts. Calls are synchronous
/// and durable before they return (the session runs them on the blocking
/// pool). `generation` is the store's, not the session's.
pub trait Keeper: Send + Sync + 'static {
    /// The stored grant and its generation.
    fn load(&self) -> Result<Option<(i64, Kept)>, ApiError>;
    /// The durable intent before a refresh of `generation` is sent, held
    /// as a lease of `lease` so that two processes never send one refresh
    /// token at once; `mine`: the stamp of this session's own earlier
    /// intent on it (a refresh that failed in transit).
    fn begin(&self, generation: i64, mine: Option<i64>, lease: Duration)
        -> Result<Begin, ApiError>;
    /// Stores `grant` as `expected + 1` if the store is still at
    /// `expected`; `false` when another writer got there first.
    fn commit(&self, expected: Option<i64>, grant: &Kept) -> Result<bool, ApiError>;
    /// The vendor refused `generation`'s grant (`invalid_grant`).
    fn refused(&self, generation: i64, error: &ApiError);

    /// The stored grant's standby refresh token (an independent lineage,
    /// docs/RUNTIME.md "The standby"), and whether the store shows a
    /// refresh intent no commit followed (`refreshing_since_ms`): the
    /// vendor may have applied that refresh and its answer been lost.
    fn standby(&self) -> Result<Standby, ApiError> {
        Ok(Standby::default())
    }

    /// [`Keeper::commit`], sealing `standby` with the grant (`None`: none).
    fn commit_standby(
        &self,
        expected: Option<i64>,
        grant: &Kept,
        _standby: Option<&Secret>,
    ) -> Result<bool, ApiError> {
        self.commit(expected, grant)
    }

    /// A refresh ended: `ok`, `transient`, `invalid_grant` or `recovered`
    /// (by the standby). For the runtime's metrics.
    fn counted(&self, _result: &'static str) {}

    /// The connection whose grant this is, for the log.
    fn connection(&self) -> &str {
        ""
    }
}

/// What [`Keeper::begin`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Begin {
    /// The intent is this session's, written with this stamp: send.
    Go(i64),
    /// Another process refreshed: its grant is in the store.
    MovedOn,
    /// Another process's refresh of this generation is on the wire.
    Held,
}

/// What [`Keeper::standby`] finds in the store.
#[derive(Clone, Debug, Default)]
pub struct Standby {
    pub refresh: Option<Secret>,
    /// A refresh of the stored generation was sent and never committed.
    pub unanswered: bool,
}

/// A [`Keeper`] in a client's configuration: cloned with it, and shown in
/// `Debug` as what it is, never what it holds.
#[derive(Clone)]
pub struct KeeperHandle(pub Arc<dyn Keeper>);

impl std::fmt::Debug for KeeperHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keeper")
    }
}
