//! Where an action goes: the record a field or a status belongs to, as
//! far as the event names it.

use super::action::{ActionKind, Record};
use crate::eval::event::Event;
use crate::ir::{FieldRef, Program, StatusTable};
use crate::model::Kind;

pub(super) fn record_of<'a>(ev: &'a Event, object: &'a str) -> Option<Record<'a>> {
    ev.records
        .get(object)
        .and_then(|r| r.get("Id"))
        .and_then(|v| v.as_str())
        .map(|id| Record::Salesforce { object, id })
}

pub(super) fn field_name(f: &FieldRef) -> &str {
    match f {
        FieldRef::Zendesk { field, .. } => field,
        FieldRef::Salesforce { path, .. } => path,
    }
}

/// The record a field belongs to, as far as the event names it.
pub(super) fn record_for<'a>(f: &'a FieldRef, ev: &'a Event) -> Option<Record<'a>> {
    match f {
        FieldRef::Zendesk { .. } => ev.ticket.as_ref().map(|t| Record::Ticket { id: t.id }),
        FieldRef::Salesforce { object, .. } => record_of(ev, object),
    }
}

/// Why a write has nowhere to go, and how to give it somewhere.
pub(super) fn no_record(target: &FieldRef) -> String {
    match target {
        FieldRef::Zendesk { .. } => "the event names no Zendesk ticket to write to; a Salesforce change reaches its ticket through the field that links them (docs/EVENTS.md, \"Linking a Salesforce record to its Zendesk ticket\")".into(),
        FieldRef::Salesforce { object, .. } => format!(
            "the event carries no {object} record (with its `Id`) to write to"
        ),
    }
}

/// The record a status table governs and its current status: the ticket
/// for Zendesk, the Case for Salesforce (whose `Status` holds the picklist
/// value: the status's label, or its name).
pub(crate) fn current_status<'a>(
    p: &'a Program,
    table: &'a StatusTable,
    ev: &'a Event,
) -> Option<(Record<'a>, &'a str)> {
    match p.kind_of(&table.connection)? {
        Kind::Zendesk => {
            let t = ev.ticket.as_ref()?;
            Some((Record::Ticket { id: t.id }, t.status.as_deref()?))
        }
        Kind::Salesforce => {
            let value = ev.records.get("Case")?.get("Status")?.as_str()?;
            let name = table
                .statuses
                .iter()
                .find(|s| s.name == value || s.label.as_deref() == Some(value))
                .map_or(value, |s| s.name.as_str());
            Some((record_of(ev, "Case")?, name))
        }
    }
}

/// The table an agent's status request is decided against: the Zendesk
/// table when the event shows the ticket's status, else a Salesforce table
/// when it shows the Case's.
pub(super) fn requested_table<'a>(
    p: &'a Program,
    ev: &'a Event,
) -> Option<(&'a StatusTable, Record<'a>, &'a str)> {
    p.status_tables_zendesk_first()
        .find_map(|t| current_status(p, t, ev).map(|(r, s)| (t, r, s)))
}

/// The status `to` of `table` as an action: what the API takes for it.
pub(super) fn set_status<'a>(
    p: &'a Program,
    table: &'a StatusTable,
    from: &'a str,
    to: &'a str,
) -> ActionKind<'a> {
    let status = p.status(&table.connection, to);
    let zendesk = p.kind_of(&table.connection) == Some(Kind::Zendesk);
    let value = match status {
        Some(s) if zendesk => s.category.as_str(),
        Some(s) => s.label.as_deref().unwrap_or(&s.name),
        None => to,
    };
    ActionKind::SetStatus {
        connection: &table.connection,
        from,
        to,
        value,
        // A status by category only is written as the lockfile's default
        // for its category (`instance_status_id`), the custom status the
        // form checks used: a bare `status` would take whatever default
        // the instance has by then, which its form may not offer.
        custom_status_id: status
            .and_then(|s| s.custom_status_id.or(s.instance_status_id))
            .filter(|_| zendesk),
    }
}
