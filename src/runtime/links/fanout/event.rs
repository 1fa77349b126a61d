//! One ticket's `record_changed` event for a Salesforce change (docs/EVENTS.md,
//! "Salesforce changes that reach tickets through links").

use crate::connectors::zendesk::Ticket as ZdTicket;
use crate::eval::convert::StatusIndex;
use crate::eval::event::{Event, EventKind, Ticket};
use crate::ir::{FieldRef, Program};
use crate::runtime::links::CrmChange;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// The event id: the change's key and the ticket, so a change delivered
/// again (a CDC replay, a poll re-reading a page) records nothing new,
/// and each ticket of one change is its own event.
pub fn event_id(change: &CrmChange, ticket: u64) -> String {
    format!("sf:{}:{}:t{ticket}", change.connection, change.key)
}

/// The changed record as the event carries it: the change's fields and
/// the record's `Id`.
pub fn record(change: &CrmChange, id: &str) -> Map<String, Json> {
    let mut fields = change.fields.clone();
    fields.insert("Id".into(), Json::String(id.to_string()));
    fields
}

/// The ticket as the page showed it (conditions read it; the fields the
/// change's mappings write are then forgotten: [`forget_targets`]).
pub fn ticket(t: &ZdTicket, statuses: &StatusIndex) -> Ticket {
    Ticket {
        id: t.id,
        subject: t.subject.clone(),
        description: t.description.clone(),
        status: statuses.resolve(Some(&t.status), t.custom_status_id),
        custom_status_id: t.custom_status_id,
        ticket_form_id: t.ticket_form_id,
        priority: t.priority.clone(),
        tags: t.tags.clone(),
        updated_at: t.updated_at.clone(),
        custom_fields: t
            .custom_fields
            .iter()
            .filter(|f| !f.value.is_null())
            .map(|f| (f.id.to_string(), f.value.clone()))
            .collect(),
        ..Ticket::default()
    }
}

/// Forgets the ticket's values of the fields the change's mappings write
/// (`map CRM -> desk` rules from the changed object), so each is written
/// even when the page shows the value already: the page may predate a
/// write of an earlier change still in the outbox (an Account changed
/// twice in a second), and judging by it would leave the ticket on the
/// earlier value. Writes go out 100 tickets to a call, so an equal value
/// costs a hundredth of a request.
fn forget_targets(t: &mut Ticket, program: &Program, change: &CrmChange) {
    let prefix = format!("{}.", change.object);
    for m in program
        .mappings
        .iter()
        .filter(|m| m.from == change.connection)
    {
        for r in &m.rules {
            let FieldRef::Salesforce { path, .. } = &r.source else {
                continue;
            };
            if !path.starts_with(&prefix) {
                continue;
            }
            match &r.target {
                FieldRef::Zendesk { id: Some(id), .. } => {
                    t.custom_fields.remove(&id.to_string());
                }
                FieldRef::Zendesk {
                    field, id: None, ..
                } => match field.as_str() {
                    "priority" => t.priority = None,
                    "type" => t.kind = None,
                    "subject" => t.subject = None,
                    _ => {}
                },
                FieldRef::Salesforce { .. } => {}
            }
        }
    }
}

/// The event for one ticket reached by `change` through `record`.
pub fn build(
    change: &CrmChange,
    record: &Map<String, Json>,
    t: &ZdTicket,
    statuses: &StatusIndex,
    program: &Program,
) -> Event {
    let mut ticket = ticket(t, statuses);
    forget_targets(&mut ticket, program, change);
    Event {
        id: event_id(change, t.id),
        kind: EventKind::RecordChanged,
        at: change.at.clone(),
        ticket: Some(ticket),
        comment: None,
        turn: None,
        records: BTreeMap::from([(change.object.clone(), record.clone())]),
        changed: change
            .changed
            .iter()
            .map(|f| format!("{}.{f}", change.object))
            .collect(),
    }
}
