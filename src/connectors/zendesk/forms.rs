//! Ticket forms and the custom statuses each offers.
//!
//! - `GET /api/v2/ticket_forms`: the account's forms (`id`, `name`,
//!   `active`, `default`, ...), at most 300 of them, answered in one list
//!   under `ticket_forms`
//!   (<https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_forms/>).
//! - `GET /api/v2/ticket_form_statuses`: "Fetches all of the ticket form
//!   statuses for the account", one `{custom_status_id, id, ticket_form_id}`
//!   record per status a form offers (`id` is a string ULID), answered
//!   under `ticket_form_statuses`; allowed for admins and agents
//!   (<https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_form_statuses/>).
//!   Zendesk describes the records as what decides "which custom statuses
//!   are available in the Agent Workspace status picker based on the
//!   current form in use"; whether the API refuses a status a form does
//!   not offer is not documented, so l3map refuses it itself.
//! - `GET /api/v2/custom_statuses?default=true`: the default custom status
//!   of each category ("always active"; only `PUT /api/v2/custom_status/default`
//!   changes it, which l3map never calls)
//!   (<https://developer.zendesk.com/api-reference/ticketing/tickets/custom_ticket_statuses/>).
//!
//! Neither list is documented as paginated; a `next_page` in an answer is
//! followed all the same (at most [`MAX_PAGES`] pages), so a long list is
//! never silently cut.

use super::super::error::ApiError;
use super::config::SYSTEM;
use super::endpoints::field;
use super::ZendeskClient;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

/// 300 forms are Zendesk's limit; a form offers at most every status.
const MAX_PAGES: usize = 100;

/// A ticket form as `GET /api/v2/ticket_forms` answers it (the fields
/// l3map uses).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TicketForm {
    pub id: u64,
    pub name: String,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub default: bool,
}

fn yes() -> bool {
    true
}

/// One custom status a form offers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FormStatus {
    /// A string ULID, not a number.
    #[serde(default)]
    pub id: Option<String>,
    pub ticket_form_id: u64,
    pub custom_status_id: u64,
}

#[derive(Deserialize)]
struct Id {
    id: u64,
}

impl ZendeskClient {
    /// Every ticket form of the account, active or not.
    pub async fn ticket_forms(&self) -> Result<Vec<TicketForm>, ApiError> {
        self.every("/api/v2/ticket_forms.json", "ticket_forms")
            .await
    }

    /// Every (form, custom status) pair of the account.
    pub async fn ticket_form_statuses(&self) -> Result<Vec<FormStatus>, ApiError> {
        self.every("/api/v2/ticket_form_statuses.json", "ticket_form_statuses")
            .await
    }

    /// The ids of each category's default custom status.
    pub async fn default_custom_statuses(&self) -> Result<Vec<u64>, ApiError> {
        let ids: Vec<Id> = self
            .every(
                "/api/v2/custom_statuses.json?default=true",
                "custom_statuses",
            )
            .await?;
        Ok(ids.into_iter().map(|i| i.id).collect())
    }

    /// A list answered under `key`, following `next_page` if the answer
    /// has one.
    async fn every<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
    ) -> Result<Vec<T>, ApiError> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else {
                return Ok(out);
            };
            let mut v = self.call(Method::GET, &url, None, None).await?;
            next = match v.get_mut("next_page").map(Value::take) {
                Some(Value::String(n)) => Some(relative(&n)?),
                _ => None,
            };
            let mut items: Vec<T> = field(v, key)?;
            out.append(&mut items);
        }
        Err(ApiError::Protocol {
            system: SYSTEM,
            message: format!("{path}: more than {MAX_PAGES} pages"),
        })
    }
}

/// `next_page` is an absolute URL; the client calls paths.
fn relative(url: &str) -> Result<String, ApiError> {
    let at = url.find("/api/v2/").ok_or_else(|| ApiError::Protocol {
        system: SYSTEM,
        message: format!("next_page `{url}` is not an API URL"),
    })?;
    Ok(url[at..].to_string())
}

#[cfg(test)]
mod tests {
    use super::super::endpoints::decode;
    use super::*;

    #[test]
    fn shapes_of_the_documented_examples() {
        let s: FormStatus = decode(serde_json::json!({
            "custom_status_id": 7485541848574u64,
            "id": "01HFD81Y01D65FJ7EPNNM58GPK",
            "ticket_form_id": 7485506877054u64
        }))
        .unwrap();
        assert_eq!(s.ticket_form_id, 7485506877054);
        let f: TicketForm =
            decode(serde_json::json!({"id": 1, "name": "Billing", "active": false})).unwrap();
        assert!(!f.active && !f.default);
        assert_eq!(
            relative("https://x.zendesk.com/api/v2/ticket_forms.json?page=2").unwrap(),
            "/api/v2/ticket_forms.json?page=2"
        );
        assert!(relative("https://elsewhere/").is_err());
    }
}
