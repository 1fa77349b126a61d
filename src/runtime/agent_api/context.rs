//! `GET /v1/context/{ticket}`: the ticket and its Salesforce Account, as
//! the agent decides on them. Nothing is recorded.

use super::answer::{Cached, ContextAnswer, ContextTicket};
use super::fail::{bad, Fail};
use super::reads::{convert_ticket, read_account, read_linked, read_ticket, resolve_links};
use crate::connectors::salesforce::Record as SfRecord;
use crate::connectors::salesforce_id;
use crate::connectors::zendesk::Ticket as ZdTicket;
use crate::eval::convert::id_value;
use crate::eval::decide::{decide, ActionKind, Record, Rule};
use crate::eval::event::{Event, EventKind, Ticket};
use crate::ir::{FieldRef, Program};
use crate::runtime::app::App;
use crate::runtime::ops::json_value;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use serde::Deserialize;
use serde_json::{Map, Value as JsonValue};
use std::collections::{BTreeMap, HashMap};

/// Ticket fields (l3map names) that may hold the Salesforce Account id.
const ACCOUNT_FIELDS: [&str; 2] = ["salesforce_account_id", "account_id"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ContextQuery {
    #[serde(default)]
    account: Option<String>,
}

pub(super) async fn context(
    app: &App,
    ticket: Result<Path<String>, PathRejection>,
    query: Result<Query<ContextQuery>, QueryRejection>,
) -> Result<ContextAnswer, Fail> {
    let Path(ticket) = ticket.map_err(|e| bad(e.body_text()))?;
    let id = id_value(&JsonValue::String(ticket), "ticket").map_err(|e| bad(e.message))?;
    let Query(mut q) = query.map_err(|e| bad(e.body_text()))?;
    if let Some(a) = &mut q.account {
        match salesforce_id::canonical(a) {
            Some(id) => *a = id,
            None => {
                return Err(bad(format!(
                    "account: {a:?} is not a Salesforce Id (15 or 18 letters and digits, the last 3 matching the first 15)"
                )))
            }
        }
    }
    let live = app.engine.live();
    let names = live.program.index().ticket_field_ids();
    // With the Account named up front, both systems are asked at once;
    // otherwise the ticket's links find it (or, without links, a ticket
    // field naming it).
    let (raw, account, linked) = match q.account {
        Some(a) => {
            let (t, acc) = tokio::join!(read_ticket(app, id), read_account(app, &a));
            (t?, Some(acc?), None)
        }
        None => {
            let (t, side) = read_linked(app, id).await?;
            let linked = resolve_links(app, &side).await;
            let from_link = linked.as_ref().and_then(|l| {
                let rec = l.records.get("Account")?;
                let cached = l.via.iter().find(|v| v.object == "Account")?.cached;
                Some((std::sync::Arc::new(rec.clone()), cached))
            });
            let acc = match (from_link, linked_account(&t, names)) {
                (Some(found), _) => Some(found),
                (None, Some(a)) if app.salesforce.is_some() && linked.is_none() => {
                    Some(read_account(app, &a).await?)
                }
                _ => None,
            };
            (t, acc, linked)
        }
    };
    let seen = convert_ticket(&raw, &live.convert.statuses)?;
    let by_id: HashMap<u64, &str> = names.iter().map(|(n, i)| (*i, n.as_str())).collect();
    let mut fields = Map::new();
    for f in &raw.custom_fields {
        if let Some(name) = by_id.get(&f.id).filter(|_| !f.value.is_null()) {
            fields.insert((*name).to_string(), f.value.clone());
        }
    }
    let mut records: BTreeMap<String, SfRecord> = linked
        .as_ref()
        .map(|l| l.records.clone())
        .unwrap_or_default();
    if let Some((a, _)) = &account {
        records.insert("Account".to_string(), (**a).clone());
    }
    let account_as_ticket_fields = account
        .as_ref()
        .map(|_| mapped_fields(&live.program, &seen, records));
    let cached = Cached {
        account: account.as_ref().map(|(_, cached)| *cached),
        ticket: false,
    };
    let account = account.map(|(a, _)| {
        let mut a = (*a).clone();
        a.remove("attributes");
        a
    });
    Ok(ContextAnswer {
        account,
        account_as_ticket_fields,
        cached,
        linked,
        revision: live.program.revision.clone(),
        ticket: ContextTicket {
            fields,
            id: seen.id,
            priority: seen.priority,
            status: seen.status,
            tags: seen.tags,
        },
    })
}

/// The Account id a ticket field of the mappings carries, if any.
fn linked_account(t: &ZdTicket, names: &BTreeMap<String, u64>) -> Option<String> {
    ACCOUNT_FIELDS.iter().find_map(|n| {
        let id = names.get(*n)?;
        let v = t.field(*id)?.as_str()?.trim();
        salesforce_id::canonical(v)
    })
}

/// The Account's fields as the mappings translate them onto the ticket
/// (`map crm -> desk`): the tier in the desk's words (`enterprise`, not
/// `Ent`). Decided like any record change, and nothing is recorded.
fn mapped_fields(
    p: &Program,
    ticket: &Ticket,
    records: BTreeMap<String, SfRecord>,
) -> Map<String, JsonValue> {
    // A ticket without its fields: a mapping writes only what differs, and
    // here every translated value is wanted, even one the ticket has.
    let bare = Ticket {
        id: ticket.id,
        status: ticket.status.clone(),
        ..Ticket::default()
    };
    let ev = Event {
        id: "context".into(),
        kind: EventKind::RecordChanged,
        at: jiff::Timestamp::now().to_string(),
        ticket: Some(bare),
        comment: None,
        turn: None,
        records,
        changed: vec![],
    };
    let d = decide(p, &ev);
    let mut out = Map::new();
    for a in &d.actions {
        if let (
            ActionKind::SetField {
                field: FieldRef::Zendesk { field, .. },
                value,
            },
            Record::Ticket { .. },
            Rule::Map { .. },
        ) = (&a.kind, &a.record, &a.rule)
        {
            out.insert(field.clone(), json_value(value));
        }
    }
    out
}
