//! Tickets (and organizations, users) matching a filter, through
//! [Export Search Results](https://developer.zendesk.com/api-reference/ticketing/ticket-management/search/#export-search-results):
//! `GET /api/v2/search/export.json?query=...&filter[type]=ticket&page[size]=1000`,
//! then `page[after]=<meta.after_cursor>` while `meta.has_more`. Unlike
//! `/api/v2/search`, it has no 1,000-result cap, which an Account with
//! 5,000 open tickets needs.
//!
//! The query uses the
//! [search syntax](https://developer.zendesk.com/documentation/ticketing/using-the-zendesk-api/searching-with-the-zendesk-api/):
//! `type:ticket organization:ID requester:ID custom_field_ID:"value"
//! external_id:"X" status<solved`. Search matches words, not whole values,
//! and at most one status term is sent (a range, `status<X`, which is
//! unambiguous whatever Zendesk does with two terms of one keyword), so
//! every page is also filtered here: the tickets answered are exactly
//! those the filter describes.

use super::super::error::ApiError;
use super::config::SYSTEM;
use super::endpoints::{decode, encode_query};
use super::types::Ticket;
use super::ZendeskClient;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

/// Results per export page: Zendesk's maximum, so a 5,000-ticket fan-out
/// reads 5 pages.
pub const EXPORT_PAGE: usize = 1000;
/// Pages read by [`ZendeskClient::organizations_by_field`] and
/// [`ZendeskClient::users_by_field`] before giving up (100,000 records).
const MAX_EXPORT_PAGES: usize = 100;
/// Zendesk's status categories in their order (`status<solved` is every
/// status before `solved`).
pub const STATUS_ORDER: [&str; 6] = ["new", "open", "pending", "hold", "solved", "closed"];

/// Which tickets: every given condition must hold. `statuses` empty means
/// any status.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TicketFilter {
    pub organization: Option<u64>,
    pub requester: Option<u64>,
    /// A custom ticket field (by id) and its value.
    pub field: Option<(u64, String)>,
    pub external_id: Option<String>,
    pub statuses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TicketPage {
    pub tickets: Vec<Ticket>,
    /// The same tickets as the API sent them, for the event converters.
    pub raw: Vec<Value>,
    /// The cursor of the next page; `None` on the last.
    pub next: Option<String>,
}

impl TicketFilter {
    /// The search query: `type:ticket` and one term per condition.
    pub fn query(&self) -> Result<String, ApiError> {
        let mut q = vec!["type:ticket".to_string()];
        if let Some(o) = self.organization {
            q.push(format!("organization:{o}"));
        }
        if let Some(r) = self.requester {
            q.push(format!("requester:{r}"));
        }
        if let Some((id, v)) = &self.field {
            q.push(format!("custom_field_{id}:{}", quote(v)?));
        }
        if let Some(x) = &self.external_id {
            q.push(format!("external_id:{}", quote(x)?));
        }
        if let Some(term) = status_term(&self.statuses)? {
            q.push(term);
        }
        Ok(q.join(" "))
    }

    /// Whether `t` is one of the tickets this filter describes.
    pub fn matches(&self, t: &Ticket) -> bool {
        let org = self
            .organization
            .is_none_or(|o| t.organization_id == Some(o));
        let req = self.requester.is_none_or(|r| t.requester_id == Some(r));
        let field = self
            .field
            .as_ref()
            .is_none_or(|(id, v)| match t.field(*id) {
                Some(Value::String(s)) => s == v,
                Some(other) => serde_json::from_str::<Value>(v).is_ok_and(|x| &x == other),
                None => false,
            });
        let ext = self
            .external_id
            .as_ref()
            .is_none_or(|x| t.external_id.as_ref() == Some(x));
        let status = self.statuses.is_empty() || self.statuses.contains(&t.status);
        org && req && field && ext && status
    }
}

/// One status term covering `statuses`: `status:X` for one, `status<X`
/// when the last wanted comes before `closed`, `status>X` otherwise;
/// nothing for all six (or for `new` with `closed`). A status Zendesk does not have is refused.
fn status_term(statuses: &[String]) -> Result<Option<String>, ApiError> {
    let mut at = Vec::with_capacity(statuses.len());
    for s in statuses {
        match STATUS_ORDER.iter().position(|o| o == s) {
            Some(i) => at.push(i),
            None => {
                return Err(ApiError::Validation {
                    system: SYSTEM,
                    status: 400,
                    message: format!(
                        "{s:?} is not a Zendesk status (one of {})",
                        STATUS_ORDER.join(", ")
                    ),
                    fields: vec!["status".into()],
                })
            }
        }
    }
    let (Some(&lo), Some(&hi)) = (at.iter().min(), at.iter().max()) else {
        return Ok(None);
    };
    let all = (0..STATUS_ORDER.len()).all(|i| at.contains(&i));
    Ok(if all {
        None
    } else if lo == hi {
        Some(format!("status:{}", STATUS_ORDER[lo]))
    } else if hi + 1 < STATUS_ORDER.len() {
        Some(format!("status<{}", STATUS_ORDER[hi + 1]))
    } else if lo > 0 {
        Some(format!("status>{}", STATUS_ORDER[lo - 1]))
    } else {
        // `new` and `closed` both wanted but not everything between: no
        // one range says it; the page filter does.
        None
    })
}

/// A value as a search phrase that can only match it literally:
/// `"value"`. Zendesk's query syntax gives meaning to `:` (equality), `<`
/// and `>`, a leading `-` (negation), `*` (a wildcard) and `""` (a
/// phrase), and documents no escape character
/// (<https://developer.zendesk.com/api-reference/ticketing/ticket-management/search/>,
/// "Query basics"; the operators in the Zendesk Support search reference,
/// <https://support.zendesk.com/hc/en-us/articles/4408886879258>). Inside
/// a phrase `:`, `<`, `>`, `-` and spaces are text, so the value is
/// quoted; a `"` would end the phrase and a `*` would widen it (on real
/// Zendesk `*@example.com` is every address at the domain), and a `\` is
/// an escape to the search engine behind it, so each of those becomes a
/// space. Search matches words, so the phrase finds at least the records
/// holding the value (and maybe others): every caller compares the
/// results with the real value afterwards.
///
/// A value with no letter or digit left has nothing a search can match
/// literally: it is refused (a 400 the fan-out records as refused) rather
/// than sent as a query that would match everything or nothing.
pub(super) fn quote(v: &str) -> Result<String, ApiError> {
    let text: String = v
        .chars()
        .map(|c| match c {
            '"' | '*' | '\\' => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    if !text.chars().any(char::is_alphanumeric) {
        return Err(ApiError::Validation {
            system: SYSTEM,
            status: 400,
            message: format!(
                "{v:?} has no letter or digit, so Zendesk's search cannot look it up literally"
            ),
            fields: vec![],
        });
    }
    Ok(format!("\"{text}\""))
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    after_cursor: Option<String>,
}

impl ZendeskClient {
    /// One page (up to [`EXPORT_PAGE`] tickets) of the tickets matching
    /// `filter`; pass the previous page's `next` for the one after. One
    /// request per page.
    pub async fn tickets_page(
        &self,
        filter: &TicketFilter,
        cursor: Option<&str>,
    ) -> Result<TicketPage, ApiError> {
        let (raw, next) = self.export_page(&filter.query()?, "ticket", cursor).await?;
        let mut page = TicketPage {
            next,
            ..TicketPage::default()
        };
        for r in raw {
            let t: Ticket = decode(r.clone())?;
            if filter.matches(&t) {
                page.tickets.push(t);
                page.raw.push(r);
            }
        }
        Ok(page)
    }

    /// One page of the search export: its results and the next cursor.
    async fn export_page(
        &self,
        query: &str,
        kind: &str,
        cursor: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>), ApiError> {
        let mut path = format!(
            "/api/v2/search/export.json?query={}&filter%5Btype%5D={kind}&page%5Bsize%5D={EXPORT_PAGE}",
            encode_query(query)
        );
        if let Some(c) = cursor {
            path.push_str(&format!("&page%5Bafter%5D={}", encode_query(c)));
        }
        let mut v = self.call(Method::GET, &path, None, None).await?;
        let meta: Meta = match v.get_mut("meta").map(Value::take) {
            Some(m) => decode(m)?,
            None => Meta::default(),
        };
        let results: Vec<Value> = match v.get_mut("results").map(Value::take) {
            Some(r) => decode(r)?,
            None => {
                return Err(ApiError::Protocol {
                    system: SYSTEM,
                    message: "search export answered no \"results\"".into(),
                })
            }
        };
        let next = match (meta.has_more, meta.after_cursor) {
            (false, _) => None,
            (true, Some(c)) if Some(c.as_str()) != cursor => Some(c),
            (true, _) => {
                return Err(ApiError::Protocol {
                    system: SYSTEM,
                    message: "search export says it has more but gave no new cursor".into(),
                })
            }
        };
        Ok((results, next))
    }

    /// Every result of an export query, page after page (bounded).
    pub(super) async fn export_all<T: serde::de::DeserializeOwned>(
        &self,
        query: &str,
        kind: &str,
    ) -> Result<Vec<T>, ApiError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_EXPORT_PAGES {
            let (results, next) = self.export_page(query, kind, cursor.as_deref()).await?;
            for r in results {
                out.push(decode(r)?);
            }
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
        Err(ApiError::Protocol {
            system: SYSTEM,
            message: format!("search export of {query:?} has more than {MAX_EXPORT_PAGES} pages"),
        })
    }
}
