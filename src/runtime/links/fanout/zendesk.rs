//! The fan-out's Zendesk reads through the connector: lookups by
//! external id, email or field, and the search export for tickets.

use super::desk::{Desk, Page, Scope};
use crate::connectors::error::{ApiError, System};
use crate::connectors::zendesk::{Ticket, ZendeskClient};
use crate::ir::ZdKey;

fn not_yet(what: &str) -> ApiError {
    ApiError::Protocol {
        system: System::Zendesk,
        message: format!("the Zendesk connector cannot {what} yet"),
    }
}

impl Desk for ZendeskClient {
    async fn organizations(&self, key: &ZdKey, _value: &str) -> Result<Vec<u64>, ApiError> {
        Err(not_yet(&format!("find organizations by {key:?}")))
    }

    async fn users(&self, key: &ZdKey, _value: &str) -> Result<Vec<u64>, ApiError> {
        Err(not_yet(&format!("find users by {key:?}")))
    }

    async fn ticket(&self, id: u64) -> Result<Option<Ticket>, ApiError> {
        match self.get_ticket(id).await {
            Ok(t) => Ok(Some(t)),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn tickets_page(&self, _scope: &Scope, _cursor: Option<&str>) -> Result<Page, ApiError> {
        Err(not_yet("page through tickets"))
    }
}
