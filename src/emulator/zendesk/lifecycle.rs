//! Zendesk's fixed ticket status rules, which no account can turn off
//! ("About native system ticket rules",
//! support.zendesk.com/hc/en-us/articles/4408894213018):
//!
//! * "After a ticket's status has been changed from New, it can never be
//!   set back to New."
//! * "Tickets with a status set to Closed can't be updated in most cases
//!   ... they can't reopen the closed ticket." Zendesk answers such an
//!   update 422 `RecordInvalid` with `details.status` "Status: closed
//!   prevents ticket update". (The admin-only "Modifying closed tickets"
//!   setting, support.zendesk.com/hc/en-us/articles/7335734335258, which
//!   lets tags, subject and priority change, is off here.)
//! * A ticket is closed by the account's automations after it is solved
//!   (support.zendesk.com/hc/en-us/articles/8263915942938, "Understanding
//!   how tickets are closed"); historical closed tickets come in through
//!   the Ticket Import API (developer.zendesk.com/api-reference/ticketing/
//!   tickets/ticket_import/), so a new ticket cannot start out `closed`.

use super::changes::Changes;
use super::errors::ZdErr;
use super::Ticket;
use serde_json::json;
use std::collections::BTreeMap;

/// Whether `c` may be applied to `before` (`None`: a ticket being
/// created); the 422 Zendesk answers when not.
pub(super) fn check(before: Option<&Ticket>, c: &Changes) -> Result<(), ZdErr> {
    let refused = |error: &str, description: &str| {
        let detail = json!({"description": description, "error": error});
        Err(ZdErr::invalid(BTreeMap::from([(
            "status".to_string(),
            vec![detail],
        )])))
    };
    let asked = c.status.as_deref();
    match before {
        Some(t) if t.status == "closed" => {
            refused("ClosedTicket", "Status: closed prevents ticket update")
        }
        Some(t) if t.status != "new" && asked == Some("new") => refused(
            "InvalidValue",
            "Status: new is not valid: a ticket whose status has changed from New can never be set back to New",
        ),
        None if asked == Some("closed") => refused(
            "InvalidValue",
            "Status: closed is not valid for a new ticket: tickets are closed after they are solved (import historical closed tickets with the Ticket Import API)",
        ),
        _ => Ok(()),
    }
}
