//! Ticket events (webhooks, the Zendesk export poller) carry their
//! linked records, as agent turns do: before an event about a ticket is
//! decided, the ticket's links are resolved from the ticket JSON the
//! source already read (the organization and requester side-loaded when a
//! link needs them) and the records found go into the event's `records`,
//! so `map desk -> crm { sla_tier -> Account.SLA_Tier__c }` knows which
//! Account to write and `Account.SLA_Tier__c` reads in conditions.
//!
//! The event's key is the ticket's state, whatever was linked: a
//! redelivery of an event already recorded is a duplicate before anything
//! is resolved. A failed Salesforce read is not decided around: the event
//! is refused (the webhook answers 503, the poller keeps its cursor) and
//! comes back, as in an outage.

use super::resolve::{Linked, Resolver};
use super::ticket_side::TicketSide;
use crate::connectors::salesforce::SalesforceClient;
use crate::eval::event::Event;
use crate::ir::Program;
use serde_json::Value as Json;
use std::sync::Arc;

/// What a source of ticket events needs to give them their linked
/// records: the runtime's one resolver (its caches shared with webhooks
/// and agent turns) and the Salesforce connection it reads.
#[derive(Clone)]
pub struct TicketLinks {
    pub resolver: Arc<Resolver>,
    pub salesforce: Option<(String, SalesforceClient)>,
}

/// One ticket of a page that side-loaded `users` and `organizations`, as a
/// single read answers it: `{"ticket", "organizations", "users"}` with
/// only its own organization and requester.
pub fn answer_of(ticket: &Json, users: &[Json], organizations: &[Json]) -> Json {
    let own = |list: &[Json], key: &str| -> Vec<Json> {
        let id = ticket.get(key).and_then(Json::as_u64);
        list.iter()
            .filter(|x| id.is_some() && x.get("id").and_then(Json::as_u64) == id)
            .cloned()
            .collect()
    };
    serde_json::json!({
        "ticket": ticket,
        "organizations": own(organizations, "organization_id"),
        "users": own(users, "requester_id"),
    })
}

/// Whether `desk` has links at all: no link, no resolution.
pub fn has_links(program: &Program, desk: &str) -> bool {
    Resolver::links(program, desk).next().is_some()
}

/// Whether `answer` carries what `desk`'s links compare: the sideloads
/// when a link needs the organization or requester. An answer kept from
/// l3map's own `PUT` has none.
pub fn answer_suffices(program: &Program, desk: &str, answer: &Json) -> bool {
    !Resolver::needs_parties(program, desk)
        || answer.get("organizations").is_some() && answer.get("users").is_some()
}

/// Only the ticket of an answer: what an event's state (and so its key)
/// is read from, so the same update keys alike with or without sideloads
/// (the poller's export and a webhook's read).
pub fn ticket_only(answer: &Json) -> Json {
    match answer.get("ticket") {
        Some(t) => serde_json::json!({ "ticket": t }),
        None => answer.clone(),
    }
}

/// Why an event cannot be decided yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Unresolved(pub String);

/// Resolves the links of the ticket in `answer` and puts the records
/// found into `ev.records` (a record the event already carries is kept).
/// `Err` when a link's read failed and may succeed later: the event must
/// come back rather than be decided without the record.
pub async fn attach(
    resolver: &Resolver,
    program: &Program,
    desk: &str,
    answer: &Json,
    sf: Option<(&str, &SalesforceClient)>,
    ev: &mut Event,
) -> Result<Option<Linked>, Unresolved> {
    if !has_links(program, desk) {
        return Ok(None);
    }
    let Some(side) = TicketSide::from_answer(answer) else {
        return Ok(None);
    };
    let linked = resolver.for_ticket(program, desk, &side, sf).await;
    if let Some(e) = linked.errors.iter().find(|e| e.transient) {
        return Err(Unresolved(format!(
            "the linked {} of ticket {} could not be read ({}): {}",
            e.object, side.id, e.link, e.message
        )));
    }
    for (object, rec) in &linked.records {
        ev.records
            .entry(object.clone())
            .or_insert_with(|| rec.clone());
    }
    Ok(Some(linked))
}
