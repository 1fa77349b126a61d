//! `GET /api/v2/search/export?query=...&filter[type]=ticket&page[size]=N`
//! ([Export Search Results](https://developer.zendesk.com/api-reference/ticketing/ticket-management/search/#export-search-results)):
//! the same query syntax as `/api/v2/search`, one kind of result
//! (`filter[type]`, required), cursor pagination (`page[after]` from
//! `meta.after_cursor`, `links.next`) and no 1,000-result cap.
//!
//! Results come in id order and the cursor holds the last id given, so a
//! ticket changed while a client pages through is neither repeated nor
//! skipped for having moved.

use super::errors::{ok, Answer, ZdErr};
use super::search::{find, parse_typed};
use super::views::{decode_cursor, encode_cursor};
use super::Shared;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Zendesk's page size when none is asked, and its maximum.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
const EXPORT_CURSOR: &str = "l3map-search-export";
const TYPES: [&str; 4] = ["ticket", "user", "organization", "group"];

fn bad(what: String) -> ZdErr {
    ZdErr::bad_request("InvalidPaginationParameter", what)
}

pub(super) fn search_export(sh: &Shared, q: &HashMap<String, String>, base: &str) -> Answer {
    let text = q
        .get("query")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            ZdErr::bad_request(
                "invalid",
                "query is required: /api/v2/search/export?query=...&filter[type]=ticket",
            )
        })?;
    let kind = q
        .get("filter[type]")
        .map(String::as_str)
        .filter(|k| TYPES.contains(k))
        .ok_or_else(|| {
            ZdErr::bad_request(
                "invalid",
                "filter[type] is required: ticket, user, organization or group",
            )
        })?;
    let size = match q.get("page[size]") {
        None => DEFAULT_PAGE,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| bad(format!("page[size] must be between 1 and {MAX_PAGE}")))?,
    };
    let after = match q.get("page[after]") {
        None => 0,
        Some(c) => decode_cursor(EXPORT_CURSOR, c)
            .ok_or_else(|| bad("page[after] is not a cursor this export gave".into()))?,
    };
    let (parsed, kinds) = parse_typed(text)?;
    if !kinds.contains(&kind) {
        // `type:user` with `filter[type]=ticket`: nothing is both.
        return ok(page(vec![], None, base, q, size));
    }
    let mut results: Vec<Value> = find(sh, &parsed, &[kind], &HashMap::new())?
        .into_iter()
        .filter(|r| r["id"].as_u64().is_some_and(|id| id > after))
        .collect();
    results.sort_by_key(|r| r["id"].as_u64());
    let more = results.len() > size;
    results.truncate(size);
    let next = more
        .then(|| results.last().and_then(|r| r["id"].as_u64()))
        .flatten()
        .map(|last| encode_cursor(EXPORT_CURSOR, last));
    ok(page(results, next, base, q, size))
}

fn page(
    results: Vec<Value>,
    next: Option<String>,
    base: &str,
    q: &HashMap<String, String>,
    size: usize,
) -> Value {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, crate::connectors::QUERY_VALUE).to_string()
    };
    let link = next.as_ref().map(|c| {
        format!(
            "{base}/api/v2/search/export.json?query={}&filter%5Btype%5D={}&page%5Bsize%5D={size}&page%5Bafter%5D={c}",
            enc(q.get("query").map_or("", String::as_str)),
            enc(q.get("filter[type]").map_or("", String::as_str)),
        )
    });
    json!({
        "results": results,
        "facets": null,
        "meta": {"has_more": next.is_some(), "after_cursor": next, "before_cursor": null},
        "links": {"next": link, "prev": null},
    })
}
