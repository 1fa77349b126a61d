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
use desk::{Desk, Same, Scope};
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
    /// Why Zendesk (or Salesforce) refused a lookup the change needs, for
    /// good: the change was recorded as refused and passed over, so the
    /// changes after it flow (tickets it reached before the refusal keep
    /// their events).
    pub refused: Option<String>,
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
                    total.refused = total.refused.or(a.refused);
                }
                Err(e) => {
                    metrics.fanout_change("failed");
                    return Err(e);
                }
            }
        }
        metrics.fanout_change(if total.refused.is_some() {
            "refused"
        } else {
            "applied"
        });
        metrics.fanout_tickets(total.tickets as u64, total.new_events as u64);
        Ok(total)
    }
}

/// A refusal no retry changes: the API judged the request itself (HTTP
/// 400 or 422: a query it cannot run, a value it will not take). A 429,
/// a 5xx, an auth or permission error, a missing record, or a timeout may
/// pass, and keep the change being tried.
pub fn refused_for_good(e: &crate::connectors::error::ApiError) -> bool {
    use crate::connectors::error::ApiError;
    match e {
        ApiError::Validation { status, .. } => matches!(status, 400 | 422),
        ApiError::GaveUp { last, .. } => refused_for_good(last),
        _ => false,
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
        match fan_out_record(
            engine,
            desk,
            crm,
            link,
            change,
            id,
            source,
            &mut out,
            &mut unique,
        )
        .await
        {
            Ok(()) => {}
            Err(FanoutError::Api(e)) if refused_for_good(&e) => {
                // The same request would be refused on every try: trying
                // again would hold every later change of the channel
                // behind this one.
                tracing::warn!(
                    connection = %change.connection, object = %change.object,
                    record = %id, key = %change.key, link = %link.describe(), error = %e,
                    "a lookup for this record was refused for good; the change is recorded as refused and passed over (the record reaches no ticket through this link until it changes again)"
                );
                out.refused = Some(format!("{} {id}: {e}", change.object));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// One changed record through one link: its value, the Zendesk records
/// it matches, their tickets page by page.
#[allow(clippy::too_many_arguments)]
async fn fan_out_record<D: Desk>(
    engine: &Engine,
    desk: &D,
    crm: Option<&SalesforceClient>,
    link: &Link,
    change: &CrmChange,
    id: &str,
    source: &'static str,
    out: &mut Applied,
    unique: &mut super::unique::UniqueCheck<'_>,
) -> Result<(), FanoutError> {
    let record = event::record(change, id);
    let Some(value) = value::link_value(link, id, &record, crm).await? else {
        return Ok(());
    };
    if unique.refuses(id, &value).await? {
        return Ok(());
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
                .map(|t| event::build(change, &record, t, &live.convert.statuses, &live.program))
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
    Ok(())
}

/// The values to look a link value up by, and how a record's key must
/// equal it. A Salesforce record Id in an `external_id` is written the
/// way whoever set it up copied it: the 18-character form the API gives,
/// the 15-character one Salesforce shows in URLs and reports, or the 18
/// in another case. The agent's turn finds the Account from any of them
/// (SOQL takes either length); the fan-out looks up the 18- and the
/// 15-character form (a lookup by external id matches the whole value;
/// Zendesk's does so without regard to case, which finds the 18 in
/// another case) and keeps the records holding one spelling of the same
/// Id. Two lookups instead of one per changed record: nothing next to
/// the tickets' pages and writes.
fn lookups(link: &Link, value: &str) -> (Same, Vec<String>) {
    use crate::connectors::salesforce::id::canonical;
    let by_id = link.field == "Id" && link.zendesk_key == ZdKey::ExternalId;
    match canonical(value).filter(|_| by_id) {
        Some(id18) => {
            let id15 = id18[..15].to_string();
            (Same::RecordId, vec![id18, id15])
        }
        None => (Same::Exactly, vec![value.to_string()]),
    }
}

/// `ids` without repeats, in their first order.
fn dedup(ids: Vec<u64>) -> Vec<u64> {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter().filter(|i| seen.insert(*i)).collect()
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
    let (same, forms) = lookups(link, value);
    Ok(match link.zendesk {
        ZdObject::Organization => {
            let mut found = Vec::new();
            for v in &forms {
                found.extend(desk.organizations(&link.zendesk_key, v, same).await?);
            }
            dedup(found)
                .into_iter()
                .map(|o| {
                    Reach::Scope(Scope {
                        organization: Some(o),
                        ..base.clone()
                    })
                })
                .collect()
        }
        ZdObject::User => {
            let mut found = Vec::new();
            for v in &forms {
                found.extend(desk.users(&link.zendesk_key, v, same).await?);
            }
            dedup(found)
                .into_iter()
                .map(|u| {
                    Reach::Scope(Scope {
                        requester: Some(u),
                        ..base.clone()
                    })
                })
                .collect()
        }
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
