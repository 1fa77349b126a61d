//! A Salesforce change reaches every ticket it governs: through the
//! project's links, the Zendesk records the changed record matches, then
//! the tickets of those records in the link's `tickets` statuses, each
//! decided as its own `record_changed` event (docs/RUNTIME.md, "Fan-out").
//!
//! `desk.rs`: the Zendesk reads (a trait, so the logic is tested against
//! fixed records); `zendesk.rs`: the connector behind it; `event.rs`: one
//! ticket's event; `value.rs`: the link's value of a changed record.

pub mod desk;
pub mod event;
mod value;
mod zendesk;

use super::change::{ChangeType, CrmChange};
use crate::connectors::salesforce::{SalesforceClient, CALL_OPTIONS_CLIENT};
use crate::ir::{Link, ZdKey, ZdObject};
use crate::runtime::apply::Client;
use crate::runtime::engine::Engine;
use crate::runtime::store::Accepted;
use desk::{Desk, Scope};
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

/// The event source a change's tickets are recorded under: a poll's key is
/// `OBJECT:ID:SYSTEMMODSTAMP`, a CDC event's is its transaction key.
pub fn source_of(change: &CrmChange) -> &'static str {
    let poll = change
        .key
        .strip_prefix(change.object.as_str())
        .is_some_and(|rest| rest.starts_with(':'));
    if poll {
        crate::runtime::poll::SALESFORCE_SOURCE
    } else {
        CDC_SOURCE
    }
}

/// The `source` of events from Change Data Capture.
pub const CDC_SOURCE: &str = "salesforce_cdc";

/// Whether `origin` (CDC's `changeOrigin`) says l3map made the change:
/// every l3map call carries `Sforce-Call-Options: client=l3map`.
pub fn is_own(origin: Option<&str>) -> bool {
    let own = format!("client={CALL_OPTIONS_CLIENT}");
    origin.is_some_and(|o| o.split([';', ',']).any(|part| part.trim() == own))
}

/// Shared by every source of changes (CDC streams, SOQL polls).
pub struct Fanout {
    engine: Arc<Engine>,
    clients: HashMap<String, Client>,
    /// The runtime's ticket -> record lookups: a change to a record makes
    /// what they keep of its object stale.
    resolver: Option<Arc<super::resolve::Resolver>>,
}

impl Fanout {
    pub fn new(engine: Arc<Engine>, clients: HashMap<String, Client>) -> Fanout {
        Fanout {
            engine,
            clients,
            resolver: None,
        }
    }

    /// Forgets the resolver's lookups of a changed object, so a ticket
    /// event decided after the change never carries the record as it was
    /// (and writes the old value back to the tickets the change reached).
    pub fn with_resolver(mut self, resolver: Arc<super::resolve::Resolver>) -> Fanout {
        self.resolver = Some(resolver);
        self
    }

    /// Decides `change` for every ticket it governs and returns once each
    /// ticket's event is recorded in the store (so a source may then move
    /// its cursor or replay id past it). A change already applied records
    /// nothing new.
    pub async fn apply(&self, change: &CrmChange) -> Result<Applied, FanoutError> {
        if let Some(r) = &self.resolver {
            // l3map's own changes too: the cached record predates them.
            r.forget(&change.connection, &change.object).await;
        }
        let metrics = &self.engine.metrics;
        if is_own(change.origin.as_deref()) {
            metrics.fanout_change("own");
            return Ok(Applied {
                own: true,
                ..Applied::default()
            });
        }
        let live = self.engine.live();
        let links: Vec<Link> = live
            .program
            .links
            .iter()
            .filter(|l| l.crm == change.connection && l.object == change.object)
            .cloned()
            .collect();
        drop(live);
        if links.is_empty() {
            // An unlinked object reaches no ticket.
            metrics.fanout_change("unlinked");
            return Ok(Applied::default());
        }
        if change.change_type == ChangeType::Delete {
            // A deleted record has no values to decide on.
            metrics.fanout_change("deleted");
            return Ok(Applied::default());
        }
        let crm = match self.clients.get(&change.connection) {
            Some(Client::Salesforce(s)) => Some(s),
            _ => None,
        };
        let mut total = Applied::default();
        for link in &links {
            let got = match self.clients.get(&link.desk) {
                Some(Client::Zendesk(z)) => fan_out(&self.engine, &**z, crm, link, change).await,
                _ => Err(FanoutError::Unavailable(format!(
                    "{}: no Zendesk connection `{}`",
                    link.describe(),
                    link.desk
                ))),
            };
            match got {
                Ok(a) => {
                    total.tickets += a.tickets;
                    total.new_events += a.new_events;
                }
                Err(e) => {
                    metrics.fanout_change("failed");
                    return Err(e);
                }
            }
        }
        metrics.fanout_change("applied");
        metrics.fanout_tickets(total.tickets as u64, total.new_events as u64);
        Ok(total)
    }
}

/// One link: every changed record's value, the Zendesk records it
/// matches, their tickets page by page, each page's events recorded
/// together (the engine commits them in one transaction) before the next
/// page is read, so memory holds one page whatever the count.
pub async fn fan_out<D: Desk>(
    engine: &Engine,
    desk: &D,
    crm: Option<&SalesforceClient>,
    link: &Link,
    change: &CrmChange,
) -> Result<Applied, FanoutError> {
    let source = source_of(change);
    let mut out = Applied::default();
    let mut unique = super::unique::UniqueCheck::new(crm, link, &engine.metrics);
    for id in &change.ids {
        let record = event::record(change, id);
        let Some(value) = value::link_value(link, id, &record, crm).await? else {
            continue;
        };
        if unique.refuses(id, &value).await? {
            continue;
        }
        for scope in scopes(desk, link, &value).await? {
            let mut cursor: Option<String> = None;
            loop {
                let page = match &scope {
                    Reach::Ticket(tid) => desk::Page {
                        tickets: desk
                            .ticket(*tid)
                            .await?
                            .into_iter()
                            .filter(|t| link.tickets.contains(&t.status))
                            .collect(),
                        next: None,
                    },
                    Reach::Scope(s) => desk.tickets_page(s, cursor.as_deref()).await?,
                };
                let live = engine.live();
                let events = page
                    .tickets
                    .iter()
                    .map(|t| {
                        event::build(change, &record, t, &live.convert.statuses, &live.program)
                    })
                    .collect();
                // One transaction for the page: its actions reach the
                // outbox together and go out in as few jobs as can be.
                let results = engine.ingest_group(source, events).await;
                for r in results {
                    let got = r.map_err(|e| FanoutError::Store(e.to_string()))?;
                    out.tickets += 1;
                    if matches!(got.accepted, Accepted::New { .. }) {
                        out.new_events += 1;
                    }
                }
                match page.next {
                    Some(n) if !page.tickets.is_empty() && cursor.as_deref() != Some(&n) => {
                        cursor = Some(n)
                    }
                    _ => break,
                }
            }
        }
    }
    Ok(out)
}

/// Where a link value leads: one ticket by id, or a search for tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reach {
    Ticket(u64),
    Scope(Scope),
}

/// The ticket searches for one link value: the tickets of each matching
/// organization or requester, or the tickets holding the value.
async fn scopes<D: Desk>(desk: &D, link: &Link, value: &str) -> Result<Vec<Reach>, FanoutError> {
    let base = Scope::new(&link.tickets);
    Ok(match link.zendesk {
        ZdObject::Organization => desk
            .organizations(&link.zendesk_key, value)
            .await?
            .into_iter()
            .map(|o| {
                Reach::Scope(Scope {
                    organization: Some(o),
                    ..base.clone()
                })
            })
            .collect(),
        ZdObject::User => desk
            .users(&link.zendesk_key, value)
            .await?
            .into_iter()
            .map(|u| {
                Reach::Scope(Scope {
                    requester: Some(u),
                    ..base.clone()
                })
            })
            .collect(),
        ZdObject::Ticket => match &link.zendesk_key {
            // `ticket.id == Case.X`: the value names the ticket.
            ZdKey::Id => value
                .trim()
                .parse::<u64>()
                .ok()
                .map(Reach::Ticket)
                .into_iter()
                .collect(),
            ZdKey::ExternalId => vec![Reach::Scope(Scope {
                external_id: Some(value.to_string()),
                ..base
            })],
            ZdKey::TicketField { id, .. } => vec![Reach::Scope(Scope {
                field: Some((*id, value.to_string())),
                ..base
            })],
            ZdKey::Email | ZdKey::Field { .. } => vec![],
        },
    })
}

#[cfg(test)]
mod tests;
