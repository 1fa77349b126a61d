//! The fan-out's Zendesk reads through the connector (its budget, retries
//! and metrics): organizations and users by the link's key, one ticket by
//! id, and tickets a page at a time through the search export.

use super::desk::{Desk, Page, Same, Scope};
use crate::connectors::error::{ApiError, System};
use crate::connectors::zendesk::{Ticket, TicketFilter, ZendeskClient};
use crate::ir::ZdKey;

fn unsupported(what: &str, key: &ZdKey) -> ApiError {
    // The checker refuses such links; a program that got past it is a bug
    // worth a clear message, not a panic.
    ApiError::Protocol {
        system: System::Zendesk,
        message: format!("a link cannot find {what} by {key:?}"),
    }
}

impl Desk for ZendeskClient {
    async fn organizations(
        &self,
        key: &ZdKey,
        value: &str,
        same: Same,
    ) -> Result<Vec<u64>, ApiError> {
        let found = match key {
            ZdKey::ExternalId => {
                self.organizations_by_external_id_where(value, |x| same.holds(x, value))
                    .await?
            }
            ZdKey::Field { key } => self.organizations_by_field(key, value).await?,
            ZdKey::Id => match value.parse::<u64>() {
                Ok(id) => self.organization(id).await?.into_iter().collect(),
                Err(_) => vec![],
            },
            other => return Err(unsupported("organizations", other)),
        };
        Ok(found.into_iter().map(|o| o.id).collect())
    }

    async fn users(&self, key: &ZdKey, value: &str, same: Same) -> Result<Vec<u64>, ApiError> {
        let found = match key {
            ZdKey::Email => self.users_by_email(value).await?,
            ZdKey::ExternalId => {
                self.users_by_external_id_where(value, |x| same.holds(x, value))
                    .await?
            }
            ZdKey::Field { key } => self.users_by_field(key, value).await?,
            ZdKey::Id => match value.parse::<u64>() {
                Ok(id) => self.user(id).await?.into_iter().collect(),
                Err(_) => vec![],
            },
            other => return Err(unsupported("users", other)),
        };
        Ok(found.into_iter().map(|u| u.id).collect())
    }

    async fn ticket(&self, id: u64) -> Result<Option<Ticket>, ApiError> {
        match self.get_ticket(id).await {
            Ok(t) => Ok(Some(t)),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn tickets_page(&self, scope: &Scope, cursor: Option<&str>) -> Result<Page, ApiError> {
        let filter = TicketFilter {
            organization: scope.organization,
            requester: scope.requester,
            field: scope.field.clone(),
            external_id: scope.external_id.clone(),
            statuses: scope.statuses.clone(),
        };
        let page = ZendeskClient::tickets_page(self, &filter, cursor).await?;
        Ok(Page {
            tickets: page.tickets,
            next: page.next,
        })
    }
}
