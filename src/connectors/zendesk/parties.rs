//! The people and companies behind a ticket: organizations and users, read
//! by id, by `external_id`, by email or by a custom field, and a ticket
//! with its organization and requester side-loaded in one request.
//!
//! Zendesk's pages:
//! [Organizations](https://developer.zendesk.com/api-reference/ticketing/organizations/organizations/)
//! (`GET /api/v2/organizations/search?external_id=`),
//! [Users](https://developer.zendesk.com/api-reference/ticketing/users/users/)
//! (`GET /api/v2/users/search?query=` or `?external_id=`),
//! [Side-loading](https://developer.zendesk.com/documentation/ticketing/using-the-zendesk-api/side_loading/)
//! (`?include=users,organizations` adds top-level `users` and
//! `organizations` arrays).

use super::super::error::ApiError;
use super::endpoints::{decode, encode_query, field};
use super::search::quote;
use super::types::Ticket;
use super::ZendeskClient;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Organization {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub external_id: Option<String>,
    /// Custom organization fields by key (`{"sla_tier": "gold"}`).
    #[serde(default, deserialize_with = "map_or_null")]
    pub organization_fields: Map<String, Value>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct User {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub organization_id: Option<u64>,
    /// Custom user fields by key.
    #[serde(default, deserialize_with = "map_or_null")]
    pub user_fields: Map<String, Value>,
}

/// A ticket with the organization and requester it names, from one read.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketParties {
    pub ticket: Ticket,
    /// The ticket as the API sent it, every attribute kept, for the event
    /// converters.
    pub raw: Value,
    /// `None` when the ticket has no organization (or Zendesk did not
    /// side-load it).
    pub organization: Option<Organization>,
    pub requester: Option<User>,
}

fn map_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    Ok(Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default())
}

impl ZendeskClient {
    /// `GET /api/v2/tickets/{id}.json?include=users,organizations`: the
    /// ticket, its organization and its requester in one request. `None`
    /// when the ticket does not exist.
    pub async fn ticket_with_parties(&self, id: u64) -> Result<Option<TicketParties>, ApiError> {
        let path = format!("/api/v2/tickets/{id}.json?include=users%2Corganizations");
        let Some(mut v) = absent_as_none(self.call(Method::GET, &path, None, None).await)? else {
            return Ok(None);
        };
        let raw = v.get_mut("ticket").map(Value::take).unwrap_or(Value::Null);
        let ticket: Ticket = decode(raw.clone())?;
        let users: Vec<User> = list(&mut v, "users")?;
        let orgs: Vec<Organization> = list(&mut v, "organizations")?;
        let organization = ticket
            .organization_id
            .and_then(|o| orgs.into_iter().find(|x| x.id == o));
        let requester = ticket
            .requester_id
            .and_then(|r| users.into_iter().find(|u| u.id == r));
        Ok(Some(TicketParties {
            ticket,
            raw,
            organization,
            requester,
        }))
    }

    pub async fn organization(&self, id: u64) -> Result<Option<Organization>, ApiError> {
        let path = format!("/api/v2/organizations/{id}.json");
        absent_as_none(self.call(Method::GET, &path, None, None).await)?
            .map(|v| field(v, "organization"))
            .transpose()
    }

    /// `GET /api/v2/organizations/search.json?external_id=`: Zendesk
    /// matches the whole id; only exact matches are kept all the same.
    pub async fn organizations_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Vec<Organization>, ApiError> {
        self.organizations_by_external_id_where(external_id, |x| x == external_id)
            .await
    }

    /// As [`ZendeskClient::organizations_by_external_id`], keeping the
    /// organizations whose external id `keep` accepts (one Salesforce
    /// record id in another spelling, say).
    pub async fn organizations_by_external_id_where(
        &self,
        external_id: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<Organization>, ApiError> {
        let path = format!(
            "/api/v2/organizations/search.json?external_id={}",
            encode_query(external_id)
        );
        let v = self.call(Method::GET, &path, None, None).await?;
        let mut orgs: Vec<Organization> = field(v, "organizations")?;
        orgs.retain(|o| o.external_id.as_deref().is_some_and(&keep));
        Ok(orgs)
    }

    /// Organizations whose custom field `key` is `value`, through the
    /// search export (`type:organization key:"value"`). Search matches
    /// words, so the results are kept only when the field equals `value`.
    pub async fn organizations_by_field(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<Organization>, ApiError> {
        let query = format!("type:organization {key}:{}", quote(value)?);
        let mut orgs: Vec<Organization> = self.export_all(&query, "organization").await?;
        orgs.retain(|o| field_is(&o.organization_fields, key, value));
        Ok(orgs)
    }

    pub async fn user(&self, id: u64) -> Result<Option<User>, ApiError> {
        let path = format!("/api/v2/users/{id}.json");
        absent_as_none(self.call(Method::GET, &path, None, None).await)?
            .map(|v| field(v, "user"))
            .transpose()
    }

    /// `GET /api/v2/users/search.json?query=email:...`; emails compared
    /// without regard to case, as Zendesk does, and only whole matches kept.
    pub async fn users_by_email(&self, email: &str) -> Result<Vec<User>, ApiError> {
        let query = format!("email:{}", quote(email)?);
        let path = format!("/api/v2/users/search.json?query={}", encode_query(&query));
        let v = self.call(Method::GET, &path, None, None).await?;
        let mut users: Vec<User> = field(v, "users")?;
        users.retain(|u| {
            u.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        });
        Ok(users)
    }

    /// `GET /api/v2/users/search.json?external_id=` ("does not support the
    /// search syntax. It only accepts ids").
    pub async fn users_by_external_id(&self, external_id: &str) -> Result<Vec<User>, ApiError> {
        self.users_by_external_id_where(external_id, |x| x == external_id)
            .await
    }

    /// As [`ZendeskClient::users_by_external_id`], keeping the users whose
    /// external id `keep` accepts.
    pub async fn users_by_external_id_where(
        &self,
        external_id: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<User>, ApiError> {
        let path = format!(
            "/api/v2/users/search.json?external_id={}",
            encode_query(external_id)
        );
        let v = self.call(Method::GET, &path, None, None).await?;
        let mut users: Vec<User> = field(v, "users")?;
        users.retain(|u| u.external_id.as_deref().is_some_and(&keep));
        Ok(users)
    }

    /// Users whose custom field `key` is `value` (search export,
    /// `type:user key:"value"`, whole matches kept).
    pub async fn users_by_field(&self, key: &str, value: &str) -> Result<Vec<User>, ApiError> {
        let query = format!("type:user {key}:{}", quote(value)?);
        let mut users: Vec<User> = self.export_all(&query, "user").await?;
        users.retain(|u| field_is(&u.user_fields, key, value));
        Ok(users)
    }
}

/// A custom field equal to `value`: text as is, a number or a checkbox by
/// its JSON text (`5`, `true`).
fn field_is(fields: &Map<String, Value>, key: &str, value: &str) -> bool {
    match fields.get(key) {
        Some(Value::String(s)) => s == value,
        Some(Value::Null) | None => false,
        Some(other) => serde_json::from_str::<Value>(value).is_ok_and(|v| &v == other),
    }
}

/// A 404 is an answer here (no such record), not an error.
fn absent_as_none(r: Result<Value, ApiError>) -> Result<Option<Value>, ApiError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ApiError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A side-loaded list; absent or `null` is empty.
fn list<T: serde::de::DeserializeOwned>(v: &mut Value, key: &str) -> Result<Vec<T>, ApiError> {
    match v.get_mut(key).map(Value::take) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(items) => decode(items),
    }
}
