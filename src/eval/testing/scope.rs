//! Whether `l3map run` would make a test's `record_changed` event at all.
//!
//! A Salesforce change of a linked record reaches only the tickets in the
//! link's `tickets` statuses (the fan-out searches those, and checks the
//! one ticket a `ticket.id ==` link names): a ticket outside them never
//! gets an event. A test event on such a ticket therefore decides nothing,
//! as the runtime would (docs/LANGUAGE.md, "Record links").

use crate::eval::event::{Event, EventKind};
use crate::ir::Program;
use crate::model::Kind;

/// Why the runtime would never decide `ev` for its ticket: the ticket's
/// status is outside the `tickets` of every link of the changed objects.
/// `None` when the event is decided as usual (not a record change, no
/// ticket status, an object changed that no link covers, or a link whose
/// scope holds the status).
pub fn out_of_scope(p: &Program, ev: &Event) -> Option<String> {
    if ev.kind != EventKind::RecordChanged {
        return None;
    }
    let ticket = ev.ticket.as_ref()?;
    let written = ticket.status.as_deref()?;
    let status = zendesk_status(p, written)?;
    // The changed objects: the prefixes of `changed`, else the records.
    let mut objects: Vec<&str> = ev
        .changed
        .iter()
        .filter_map(|c| c.split_once('.').map(|(o, _)| o))
        .collect();
    if objects.is_empty() {
        objects = ev.records.keys().map(String::as_str).collect();
    }
    objects.sort_unstable();
    objects.dedup();
    if objects.is_empty() {
        return None;
    }
    let mut reasons = Vec::new();
    for object in objects {
        let links: Vec<_> = p.links.iter().filter(|l| l.object == object).collect();
        // A record no link covers reaches its ticket another way (a field
        // holding the ticket id): the event is decided as before links.
        if links.is_empty() || links.iter().any(|l| l.tickets.iter().any(|s| s == status)) {
            return None;
        }
        for l in links {
            reasons.push(format!(
                "`{}` (tickets {})",
                l.describe(),
                l.tickets.join(", ")
            ));
        }
    }
    let shown = if written == status {
        format!("`{written}`")
    } else {
        format!("`{written}` (Zendesk's `{status}`)")
    };
    Some(format!(
        "the ticket is {shown}, outside the statuses the link reaches: {}; `l3map run` never decides this change for this ticket, so the event decides nothing",
        reasons.join("; ")
    ))
}

/// The Zendesk status (`new` ... `closed`) of a status as a test event
/// writes it: a status of the Zendesk connection's table stands for its
/// category; Zendesk's own names stand for themselves. `None`: unknown.
fn zendesk_status(p: &Program, written: &str) -> Option<&'static str> {
    let table = p
        .status_tables
        .iter()
        .find(|t| p.kind_of(&t.connection) == Some(Kind::Zendesk));
    if let Some(s) = table
        .into_iter()
        .flat_map(|t| &t.statuses)
        .find(|s| s.name == written)
    {
        return Some(s.category.as_str());
    }
    ["new", "open", "pending", "hold", "solved", "closed"]
        .into_iter()
        .find(|z| *z == written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::program_of;

    fn program() -> Program {
        program_of(
            r#"
connection desk: zendesk {
  subdomain "acme"
  token     env("ZENDESK_OAUTH_TOKEN")
  scopes    read, write
}
connection crm: salesforce {
  instance      "https://acme.my.salesforce.com"
  client_id     env("SF_CLIENT_ID")
  client_secret env("SF_CLIENT_SECRET")
  refresh_token env("SF_REFRESH_TOKEN")
  scopes        api, refresh_token
  objects       Account, Case
}
statuses desk {
  working   open     "Working"  initial
  waiting   pending  "Waiting"
  resolved  solved   "Resolved"
  working -> waiting, resolved
  waiting -> working
}
fields desk { tier #360001234 enum(enterprise, standard) }
fields crm { Account.SLA_Tier__c enum("Ent", "Std") }
link desk.organization <-> crm.Account {
  on organization.external_id == Account.Id
}
map crm -> desk {
  Account.SLA_Tier__c -> tier {
    "Ent" => enterprise
    _     => standard
  }
}
"#,
        )
    }

    fn event(status: &str, object: &str) -> Event {
        Event::from_json(&format!(
            r#"{{"id":"e","kind":"record_changed","at":"2026-01-01T00:00:00Z",
                "ticket":{{"id":1,"status":"{status}"}},
                "records":{{"{object}":{{"Id":"x","SLA_Tier__c":"Ent"}}}},
                "changed":["{object}.SLA_Tier__c"]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_table_status_counts_as_its_category() {
        let p = program();
        assert!(out_of_scope(&p, &event("resolved", "Account")).is_some());
        assert!(out_of_scope(&p, &event("solved", "Account")).is_some());
        assert!(out_of_scope(&p, &event("closed", "Account")).is_some());
        assert_eq!(out_of_scope(&p, &event("waiting", "Account")), None);
        assert_eq!(out_of_scope(&p, &event("pending", "Account")), None);
        // A status nobody knows, and an object no link names: decided.
        assert_eq!(out_of_scope(&p, &event("weird", "Account")), None);
        assert_eq!(out_of_scope(&p, &event("resolved", "Case")), None);
    }
}
