//! The one Zendesk read a ticket's resolution starts from: the ticket as
//! the Tickets API answers it (`{"ticket": {...}}`), with its organization
//! and requester sideloaded (`organizations`, `users`) when the links need
//! them, so [`TicketSide::from_answer`](super::ticket_side::TicketSide::from_answer)
//! reads everything from one answer.

use crate::connectors::error::ApiError;
use crate::connectors::zendesk::ZendeskClient;
use serde_json::Value as Json;

/// `GET /api/v2/tickets/{id}.json`, with `include=organizations,users`
/// when `parties`.
pub async fn ticket_answer(zd: &ZendeskClient, id: u64, parties: bool) -> Result<Json, ApiError> {
    // Until the connector's sideloading read is merged, the plain read:
    // links on ticket values and organization/requester ids resolve; those
    // on their external_id, email or fields report the record as not
    // returned.
    let _ = parties;
    zd.get_ticket_json(id).await
}
