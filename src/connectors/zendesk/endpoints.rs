//! Zendesk's operations: tickets, comments, the incremental export, and the slow-changing lists (groups, ticket
//! fields, custom statuses) behind the 15-minute cache. Each is one or
//! more [`ZendeskClient::call`]s.

use super::super::cache::ReadCache;
use super::super::error::ApiError;
use super::config::SYSTEM;
use super::types::{
    Comment, CustomStatus, ExportFrom, ExportPage, Group, Ticket, TicketChanges, TicketField,
};
use super::ZendeskClient;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// Items asked per page of a list endpoint: Zendesk's maximum.
const LIST_PAGE: usize = 100;
/// 100,000 items: far past any account's fields or groups, and a ticket
/// with more comments than this is not one to read whole.
const MAX_LIST_PAGES: usize = 1000;

impl ZendeskClient {
    // ------------------------------------------------------------ tickets

    /// The ticket as the API answers it (`{"ticket": {...}}`), every
    /// attribute kept, for the event converters.
    pub async fn get_ticket_json(&self, id: u64) -> Result<Value, ApiError> {
        self.call(
            Method::GET,
            &format!("/api/v2/tickets/{id}.json"),
            None,
            None,
        )
        .await
    }

    pub async fn get_ticket(&self, id: u64) -> Result<Ticket, ApiError> {
        let v = self
            .call(
                Method::GET,
                &format!("/api/v2/tickets/{id}.json"),
                None,
                None,
            )
            .await?;
        field(v, "ticket")
    }

    /// Creates a ticket (`changes.comment` is its description). With an
    /// idempotency key, a retry after a lost answer returns the same
    /// ticket instead of creating a second.
    pub async fn create_ticket(
        &self,
        changes: &TicketChanges,
        idempotency_key: Option<&str>,
    ) -> Result<Ticket, ApiError> {
        let body = serde_json::json!({ "ticket": changes });
        let (v, headers) = self
            .call_with_headers(
                Method::POST,
                "/api/v2/tickets.json",
                Some(&body),
                idempotency_key,
            )
            .await?;
        // "x-idempotency-lookup: hit" answers a replay of a create Zendesk
        // already made (developer.zendesk.com/api-reference/ticketing/
        // introduction/, Idempotency): the lost answer of an earlier try.
        let lookup = headers
            .get("x-idempotency-lookup")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let ticket: Ticket = field(v, "ticket")?;
        if lookup.eq_ignore_ascii_case("hit") {
            tracing::info!(
                ticket = ticket.id,
                replayed = true,
                "Zendesk answered a ticket create from its idempotency key: an earlier try had created it"
            );
        }
        if idempotency_key.is_some() && !lookup.is_empty() {
            self.note_idempotent_create(lookup.eq_ignore_ascii_case("hit"));
        }
        Ok(ticket)
    }

    /// Deletes a ticket (Zendesk keeps it in the trash for 30 days).
    pub async fn delete_ticket(&self, id: u64) -> Result<(), ApiError> {
        self.call(
            Method::DELETE,
            &format!("/api/v2/tickets/{id}.json"),
            None,
            None,
        )
        .await
        .map(|_| ())
    }

    pub async fn update_ticket(
        &self,
        id: u64,
        changes: &TicketChanges,
    ) -> Result<Ticket, ApiError> {
        field(self.update_ticket_json(id, changes).await?, "ticket")
    }

    /// [`update_ticket`](Self::update_ticket), answered as the API answers
    /// (`{"ticket": {...}, "audit": {...}}`): the updated ticket with every
    /// attribute and its new `updated_at`, so the webhooks this update
    /// causes need not read it back.
    pub async fn update_ticket_json(
        &self,
        id: u64,
        changes: &TicketChanges,
    ) -> Result<Value, ApiError> {
        let body = serde_json::json!({ "ticket": changes });
        self.call(
            Method::PUT,
            &format!("/api/v2/tickets/{id}.json"),
            Some(&body),
            None,
        )
        .await
    }

    /// Every comment of the ticket, oldest first, across all pages.
    pub async fn list_comments(&self, ticket_id: u64) -> Result<Vec<Comment>, ApiError> {
        self.list_all(
            &format!("/api/v2/tickets/{ticket_id}/comments.json"),
            "comments",
        )
        .await
    }

    /// A list endpoint read to the end with cursor pagination
    /// (`page[size]=100`, then `page[after]` from `meta.after_cursor`).
    /// Stops with an error past [`MAX_LIST_PAGES`] rather than loop on an
    /// API that keeps saying `has_more`.
    async fn list_all<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
    ) -> Result<Vec<T>, ApiError> {
        #[derive(Deserialize, Default)]
        struct Meta {
            #[serde(default)]
            has_more: bool,
            #[serde(default)]
            after_cursor: Option<String>,
        }
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut url = format!("{path}?page%5Bsize%5D={LIST_PAGE}");
            if let Some(c) = &after {
                url.push_str(&format!("&page%5Bafter%5D={}", encode_query(c)));
            }
            let mut v = self.call(Method::GET, &url, None, None).await?;
            let meta: Meta = v
                .get_mut("meta")
                .map(Value::take)
                .map(decode)
                .transpose()?
                .unwrap_or_default();
            let mut items: Vec<T> = field(v, key)?;
            out.append(&mut items);
            match (meta.has_more, meta.after_cursor) {
                (true, Some(c)) if after.as_ref() != Some(&c) => after = Some(c),
                (true, _) => {
                    return Err(ApiError::Protocol {
                        system: SYSTEM,
                        message: format!("{path} says it has more but gave no new cursor"),
                    })
                }
                (false, _) => return Ok(out),
            }
        }
        Err(ApiError::Protocol {
            system: SYSTEM,
            message: format!("{path} has more than {MAX_LIST_PAGES} pages"),
        })
    }

    /// One page of the cursor-based incremental ticket export.
    pub async fn export_tickets(&self, from: &ExportFrom) -> Result<ExportPage, ApiError> {
        self.incremental_page(from, false).await
    }

    /// As [`export_tickets`](Self::export_tickets), with the tickets'
    /// users and organizations side-loaded (`include=users,organizations`;
    /// the incremental ticket export takes side-loads,
    /// <https://developer.zendesk.com/documentation/ticketing/using-the-zendesk-api/side_loading/>):
    /// what record links compare, in the same request.
    pub async fn export_tickets_with_parties(
        &self,
        from: &ExportFrom,
    ) -> Result<ExportPage, ApiError> {
        self.incremental_page(from, true).await
    }

    async fn incremental_page(
        &self,
        from: &ExportFrom,
        parties: bool,
    ) -> Result<ExportPage, ApiError> {
        let query = match from {
            ExportFrom::StartTime(t) => format!("start_time={t}"),
            ExportFrom::Cursor(c) => format!("cursor={}", encode_query(c)),
        };
        let include = if parties {
            "&include=users%2Corganizations"
        } else {
            ""
        };
        let path = format!("/api/v2/incremental/tickets/cursor.json?{query}{include}");
        let v = self.call(Method::GET, &path, None, None).await?;
        #[derive(Deserialize)]
        struct Page {
            tickets: Vec<Value>,
            #[serde(default)]
            after_cursor: Option<String>,
            #[serde(default)]
            end_of_stream: bool,
            #[serde(default)]
            users: Vec<Value>,
            #[serde(default)]
            organizations: Vec<Value>,
        }
        let p: Page = decode(v)?;
        let tickets = p
            .tickets
            .iter()
            .map(|t| decode(t.clone()))
            .collect::<Result<Vec<Ticket>, _>>()?;
        Ok(ExportPage {
            tickets,
            raw: p.tickets,
            after_cursor: p.after_cursor,
            end_of_stream: p.end_of_stream,
            users: p.users,
            organizations: p.organizations,
        })
    }

    // ------------------------------------------------------------ settings

    pub async fn ticket_fields(&self) -> Result<Arc<Vec<TicketField>>, ApiError> {
        self.settings(&self.fields, "ticket_fields", true).await
    }

    /// Custom statuses come in one answer: the endpoint is not paginated.
    pub async fn custom_statuses(&self) -> Result<Arc<Vec<CustomStatus>>, ApiError> {
        self.settings(&self.statuses, "custom_statuses", false)
            .await
    }

    pub async fn groups(&self) -> Result<Arc<Vec<Group>>, ApiError> {
        self.settings(&self.groups, "groups", true).await
    }

    /// One of the account's slow-changing lists (`/api/v2/{name}.json`,
    /// answered under the key `name`), through its 15-minute cache.
    async fn settings<T>(
        &self,
        cache: &ReadCache<u8, Arc<Vec<T>>>,
        name: &str,
        paginated: bool,
    ) -> Result<Arc<Vec<T>>, ApiError>
    where
        T: serde::de::DeserializeOwned + Send + Sync + 'static,
    {
        cache
            .get_or_load(0, async {
                let path = format!("/api/v2/{name}.json");
                if paginated {
                    return self.list_all(&path, name).await.map(Arc::new);
                }
                let v = self.call(Method::GET, &path, None, None).await?;
                field(v, name).map(Arc::new)
            })
            .await
    }

    /// A group's id by its name (escalations name groups), from the cached
    /// list. A name not found reloads the list once, in case the group is
    /// new; until the list is next reloaded anyway (the cache's TTL), the
    /// same name is answered "not found" from memory, so a mapping naming
    /// a missing group cannot turn every event into a list read.
    pub async fn group_id(&self, name: &str) -> Result<u64, ApiError> {
        let find = |gs: &[Group]| gs.iter().find(|g| g.name == name).map(|g| g.id);
        let groups = self.groups().await?;
        if let Some(id) = find(&groups) {
            return Ok(id);
        }
        let missing = || ApiError::NotFound {
            system: SYSTEM,
            message: format!("no group named {name:?}"),
        };
        {
            let misses = self.group_misses.lock().unwrap_or_else(|e| e.into_inner());
            if misses
                .get(name)
                .is_some_and(|list| Arc::ptr_eq(list, &groups))
            {
                return Err(missing());
            }
        }
        self.groups.invalidate(&0).await;
        let fresh = self.groups().await?;
        match find(&fresh) {
            Some(id) => Ok(id),
            None => {
                let mut misses = self.group_misses.lock().unwrap_or_else(|e| e.into_inner());
                // Misses against older lists are stale: drop them.
                misses.retain(|_, list| Arc::ptr_eq(list, &fresh));
                misses.insert(name.to_string(), fresh);
                Err(missing())
            }
        }
    }
}

/// `cursor` values are base64: `+`, `/` and `=` need escaping in a query.
pub(super) fn encode_query(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, crate::connectors::QUERY_VALUE).to_string()
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::Protocol {
        system: SYSTEM,
        message: format!("unexpected response shape: {e}"),
    })
}

/// `{"ticket": {...}}` -> the ticket.
pub(super) fn field<T: serde::de::DeserializeOwned>(
    mut v: Value,
    key: &str,
) -> Result<T, ApiError> {
    match v.get_mut(key).map(Value::take) {
        Some(inner) => decode(inner),
        None => Err(ApiError::Protocol {
            system: SYSTEM,
            message: format!("response has no {key:?}"),
        }),
    }
}
