//! The upstream reads a turn or a context read makes: the ticket from
//! Zendesk, the Account from Salesforce (through its client's cache).

use super::fail::{fail, not_found, upstream, Fail};
use crate::connectors::error::ApiError;
use crate::connectors::salesforce::Record as SfRecord;
use crate::connectors::zendesk::Ticket as ZdTicket;
use crate::eval::convert::{zendesk::from_ticket, StatusIndex};
use crate::eval::event::Ticket;
use crate::runtime::app::App;
use crate::runtime::links::resolve::{LinkError, Linked, Resolver};
use crate::runtime::links::ticket_side::TicketSide;
use axum::http::StatusCode;
use serde_json::json;
use std::sync::Arc;

/// The target its log lines had before the module was split, so operators'
/// filters (`RUST_LOG`, alerts on the JSON `target`) keep matching.
const LOG_TARGET: &str = "l3map::runtime::agent_api";

pub(super) async fn read_ticket(app: &App, id: u64) -> Result<ZdTicket, Fail> {
    let Some((_, zd)) = &app.zendesk else {
        return Err(not_configured(
            "the mappings declare no Zendesk connection, so no ticket can be read",
        ));
    };
    // Interactive: the agent is waiting, the outbox's writes are not.
    zd.interactive().get_ticket(id).await.map_err(|e| {
        read_failed(
            &e,
            "no_ticket",
            format!("no ticket {id}"),
            &format!("ticket {id}"),
        )
    })
}

/// The Account, and whether it came from the client's cache without a
/// Salesforce request (the context's `cached.account`).
pub(super) async fn read_account(app: &App, id: &str) -> Result<(Arc<SfRecord>, bool), Fail> {
    let Some((_, sf)) = &app.salesforce else {
        return Err(not_configured(
            "the mappings declare no Salesforce connection, so no Account can be read",
        ));
    };
    sf.account_cached(id).await.map_err(|e| {
        read_failed(
            &e,
            "no_account",
            format!("no Salesforce Account {id}"),
            &format!("Account {id}"),
        )
    })
}

/// 422: the read needs a connection the mappings do not declare.
fn not_configured(message: &'static str) -> Fail {
    fail(StatusCode::UNPROCESSABLE_ENTITY, "not_configured", message)
}

/// Why the read of `what` failed: 404 `code` (saying `missing`) when the
/// upstream has no such record, else the upstream's own failure.
fn read_failed(e: &ApiError, code: &'static str, missing: String, what: &str) -> Fail {
    if not_found(e) {
        fail(StatusCode::NOT_FOUND, code, missing)
    } else {
        upstream(e, what)
    }
}

/// The ticket as the converters read a Tickets API answer, so a turn sees
/// the same `ticket` a webhook or a poll of it would.
pub(super) fn convert_ticket(t: &ZdTicket, statuses: &StatusIndex) -> Result<Ticket, Fail> {
    let payload = json!({"ticket": {
        "id": t.id,
        "subject": t.subject,
        "description": t.description,
        "status": t.status,
        "custom_status_id": t.custom_status_id,
        "priority": t.priority,
        "tags": t.tags,
        "custom_fields": t.custom_fields,
        // Which custom statuses the ticket may take (its form's).
        "ticket_form_id": t.ticket_form_id,
        // Only the event's id and time come from it, and a turn has both.
        "updated_at": t.updated_at.clone().unwrap_or_else(|| jiff::Timestamp::now().to_string()),
    }});
    let unreadable = |message: String| {
        tracing::warn!(target: LOG_TARGET, ticket = t.id, error = %message, "agent API: unreadable ticket");
        fail(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!(
                "Zendesk answered ticket {} in a shape l3map cannot read",
                t.id
            ),
        )
    };
    let events = from_ticket(&payload, statuses).map_err(|e| unreadable(e.message))?;
    events
        .into_iter()
        .next()
        .and_then(|e| e.ticket)
        .ok_or_else(|| unreadable("no ticket in the answer".into()))
}

/// The ticket and what its links compare, from one Zendesk read: with
/// the organization and requester sideloaded when a link needs more of
/// them than their ids.
pub(super) async fn read_linked(app: &App, id: u64) -> Result<(ZdTicket, TicketSide), Fail> {
    let Some((desk, zd)) = &app.zendesk else {
        return Err(not_configured(
            "the mappings declare no Zendesk connection, so no ticket can be read",
        ));
    };
    let parties = Resolver::needs_parties(&app.engine.live().program, desk);
    let zd = zd.interactive();
    let answer = crate::runtime::links::ticket_read::ticket_answer(&zd, id, parties)
        .await
        .map_err(|e| {
            read_failed(
                &e,
                "no_ticket",
                format!("no ticket {id}"),
                &format!("ticket {id}"),
            )
        })?;
    let unreadable = || {
        fail(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!("Zendesk answered ticket {id} in a shape l3map cannot read"),
        )
    };
    let ticket: ZdTicket = answer
        .get("ticket")
        .cloned()
        .and_then(|t| serde_json::from_value(t).ok())
        .ok_or_else(unreadable)?;
    let side = TicketSide::from_answer(&answer).ok_or_else(unreadable)?;
    Ok((ticket, side))
}

/// How long an agent waits for a ticket's linked records: the connector
/// retries an unreachable Salesforce for up to 30 s, longer than an agent
/// mid-conversation should hang.
const LINKS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The ticket's linked records, when the mappings declare links for its
/// Zendesk connection. Past [`LINKS_WAIT`], every link is an error that
/// asking again may heal.
pub(super) async fn resolve_links(app: &App, side: &TicketSide) -> Option<Linked> {
    let (desk, _) = app.zendesk.as_ref()?;
    let live = app.engine.live();
    Resolver::links(&live.program, desk).next()?;
    let sf = app.salesforce.as_ref().map(|(n, c)| (n.as_str(), c));
    let resolving = app.resolver.for_ticket(&live.program, desk, side, sf);
    Some(match tokio::time::timeout(LINKS_WAIT, resolving).await {
        Ok(linked) => linked,
        Err(_) => Linked {
            errors: Resolver::links(&live.program, desk)
                .map(|l| LinkError {
                    object: l.object.clone(),
                    link: l.describe(),
                    message: format!(
                        "Salesforce did not answer within {} s",
                        LINKS_WAIT.as_secs()
                    ),
                    source: None,
                    transient: true,
                })
                .collect(),
            ..Linked::default()
        },
    })
}
