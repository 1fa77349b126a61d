//! The one Zendesk read a ticket's resolution starts from: the ticket as
//! the Tickets API answers it (`{"ticket": {...}}`), with its organization
//! and requester side-loaded (`organizations`, `users`) when the links need
//! them, so [`TicketSide::from_answer`](super::ticket_side::TicketSide::from_answer)
//! reads everything from one answer.

use crate::connectors::error::{ApiError, System};
use crate::connectors::zendesk::ZendeskClient;
use serde_json::{json, Value as Json};

/// `GET /api/v2/tickets/{id}.json`, with `include=organizations,users`
/// (the connector's `ticket_with_parties`) when `parties`. A missing
/// ticket is `ApiError::NotFound`, as the plain read answers it.
pub async fn ticket_answer(zd: &ZendeskClient, id: u64, parties: bool) -> Result<Json, ApiError> {
    tracing::debug!(ticket = id, parties, "reading a ticket for its event");
    if !parties {
        return zd.get_ticket_json(id).await;
    }
    let Some(tp) = zd.ticket_with_parties(id).await? else {
        return Err(ApiError::NotFound {
            system: System::Zendesk,
            message: format!("no ticket {id}"),
        });
    };
    let organizations: Vec<Json> = tp
        .organization
        .iter()
        .map(|o| {
            json!({"id": o.id, "external_id": o.external_id,
                   "organization_fields": o.organization_fields})
        })
        .collect();
    let users: Vec<Json> = tp
        .requester
        .iter()
        .map(|u| {
            json!({"id": u.id, "email": u.email, "external_id": u.external_id,
                   "user_fields": u.user_fields})
        })
        .collect();
    Ok(json!({"ticket": tp.raw, "organizations": organizations, "users": users}))
}
