//! Search results sorted (`sort_by`, `sort_order`) and offset-paginated
//! (`page`, `per_page`), as `/api/v2/search` and `users/search` answer.

use super::errors::{ok, Answer, ZdErr};
use super::Ticket;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;

pub(super) fn invalid(description: String) -> ZdErr {
    // The Search API's error shape: {"error": "invalid", "description"}.
    ZdErr {
        status: StatusCode::BAD_REQUEST,
        body: json!({"error": "invalid", "description": description}),
    }
}

/// Results per page at most (Zendesk's limit).
const PAGE_MAX: usize = 100;

/// `sort_by` (`created_at`, `updated_at`, `priority`, `status`,
/// `ticket_type`) and `sort_order` (`desc` by default). Without `sort_by`
/// Zendesk ranks by relevance, which is not modelled: tickets come by id.
pub(super) fn sort_tickets(
    tickets: &mut [&Ticket],
    q: &HashMap<String, String>,
) -> Result<(), ZdErr> {
    let desc = match q.get("sort_order").map(String::as_str) {
        None | Some("") | Some("desc") => true,
        Some("asc") => false,
        Some(o) => return Err(invalid(format!("sort_order {o} is not asc or desc"))),
    };
    let Some(by) = q.get("sort_by").filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let key = |t: &Ticket| -> (String, u64) {
        let k = match by.as_str() {
            "created_at" => format!("{:020}", t.created_at),
            "updated_at" => format!("{:020}", t.updated_at),
            "priority" => t.priority.clone().unwrap_or_default(),
            "status" => t.status.clone(),
            _ => t.kind.clone().unwrap_or_default(),
        };
        (k, t.id)
    };
    if ![
        "created_at",
        "updated_at",
        "priority",
        "status",
        "ticket_type",
    ]
    .contains(&by.as_str())
    {
        return Err(invalid(format!(
            "sort_by {by} is not one of updated_at, created_at, priority, status, ticket_type"
        )));
    }
    tickets.sort_by_key(|t| key(t));
    if desc {
        tickets.reverse();
    }
    Ok(())
}

/// A query string value, percent-encoded as the connector encodes it.
fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, crate::connectors::QUERY_VALUE).to_string()
}

/// One page of an offset-paginated search: `page` (from 1) and `per_page`
/// (at most 100), `count` the number of matches, `next_page` and
/// `previous_page` absolute URLs (on `base`) or null. With `cap`, pages
/// past that many results are a 422, as Zendesk's 1,000-result limit.
pub(super) fn offset_page(
    name: &str,
    path: &str,
    items: Vec<Value>,
    q: &HashMap<String, String>,
    base: &str,
    cap: Option<usize>,
) -> Answer {
    let number = |key: &str, default: usize| -> Result<usize, ZdErr> {
        match q.get(key).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| ZdErr {
                status: StatusCode::BAD_REQUEST,
                body: json!({"error": {"title": "Invalid attribute",
                    "message": format!("You passed an invalid value for the {key} attribute. Invalid parameter: {key} must be a positive integer")}}),
            }),
        }
    };
    let per_page = number("per_page", PAGE_MAX)?.min(PAGE_MAX);
    let page = number("page", 1)?;
    let start = (page - 1).saturating_mul(per_page);
    let reachable = cap.map_or(items.len(), |c| items.len().min(c));
    if let Some(c) = cap {
        if start >= c {
            return Err(ZdErr {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                body: json!({"error": "InsufficientResourceError",
                    "description": format!("Search returns at most {c} results; page {page} of {per_page} starts past them")}),
            });
        }
    }
    let count = items.len();
    let shown: Vec<Value> = items
        .into_iter()
        .take(reachable)
        .skip(start)
        .take(per_page)
        .collect();
    let mut fixed = String::new();
    for key in ["query", "external_id", "sort_by", "sort_order"] {
        if let Some(v) = q.get(key) {
            fixed.push_str(&format!("{key}={}&", encode(v)));
        }
    }
    let url = |n: usize| Value::from(format!("{base}{path}?{fixed}page={n}&per_page={per_page}"));
    let next = if start + shown.len() < reachable {
        url(page + 1)
    } else {
        Value::Null
    };
    let prev = if page > 1 { url(page - 1) } else { Value::Null };
    let mut body = json!({name: shown, "next_page": next, "previous_page": prev, "count": count});
    if name == "results" {
        body["facets"] = Value::Null;
    }
    ok(body)
}
