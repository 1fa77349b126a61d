//! A Salesforce change reaches every ticket it governs: through the
//! project's links, the Zendesk records the changed record matches, then
//! the tickets of those records in the link's `tickets` statuses, each
//! decided as its own `record_changed` event.
//!
//! (Contract placeholder: the fan-out itself lands with issue 16's
//! fan-out work; sources call [`Fanout::apply`] and nothing else.)

use super::change::CrmChange;
use crate::runtime::apply::Client;
use crate::runtime::engine::Engine;
use std::collections::HashMap;
use std::sync::Arc;

/// What one change came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Tickets the change reached (in the links' scopes).
    pub tickets: usize,
    /// Events recorded for the first time (a replayed change records none).
    pub new_events: usize,
    /// The change was l3map's own write, recognised by its origin, and
    /// skipped.
    pub own: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// Zendesk or Salesforce could not be read; the change is tried again.
    #[error("{0}")]
    Api(#[from] crate::connectors::error::ApiError),
    /// The store refused the events; the change is tried again.
    #[error("the store: {0}")]
    Store(String),
    #[error("the fan-out is not available: {0}")]
    Unavailable(String),
}

/// Shared by every source of changes (CDC streams, SOQL polls).
pub struct Fanout {
    #[allow(dead_code)]
    engine: Arc<Engine>,
    #[allow(dead_code)]
    clients: HashMap<String, Client>,
}

impl Fanout {
    pub fn new(engine: Arc<Engine>, clients: HashMap<String, Client>) -> Fanout {
        Fanout { engine, clients }
    }

    /// Decides `change` for every ticket it governs and returns once each
    /// ticket's event is recorded in the store (so a source may then move
    /// its cursor or replay id past it). A change already applied records
    /// nothing new.
    pub async fn apply(&self, change: &CrmChange) -> Result<Applied, FanoutError> {
        Err(FanoutError::Unavailable(format!(
            "{} {} not fanned out yet",
            change.object, change.key
        )))
    }
}
