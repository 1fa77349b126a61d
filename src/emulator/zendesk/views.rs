//! Tickets, comments and lists as the API shows them.

use super::errors::{ok, Answer, ZdErr};
use super::{rfc3339, CommentRec, Db, Ticket, ZendeskOptions};
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

pub(super) fn ticket_json(db: &Db, t: &Ticket, opts: &ZendeskOptions) -> Value {
    let mut fields: BTreeMap<u64, Value> = db.fields.iter().map(|f| (f.id, Value::Null)).collect();
    fields.extend(t.fields.iter().map(|(k, v)| (*k, v.clone())));
    let custom: Vec<Value> = fields
        .into_iter()
        .map(|(id, value)| json!({"id": id, "value": value}))
        .collect();
    json!({
        "id": t.id,
        "url": format!("https://{}.zendesk.com/api/v2/tickets/{}.json", opts.subdomain, t.id),
        "subject": t.subject,
        "raw_subject": t.subject,
        "description": t.description,
        "status": t.status,
        "custom_status_id": t.custom_status_id,
        "priority": t.priority,
        "type": t.kind,
        "group_id": t.group_id,
        "assignee_id": t.assignee_id,
        "requester_id": t.requester_id,
        "submitter_id": t.submitter_id.unwrap_or(t.requester_id),
        "organization_id": t.organization_id,
        "external_id": t.external_id,
        "ticket_form_id": t.ticket_form_id.or(db.forms.default_form()),
        "tags": t.tags,
        "custom_fields": custom.clone(),
        "fields": custom,
        "is_public": true,
        "created_at": rfc3339(t.created_at),
        "updated_at": rfc3339(t.updated_at),
        "generated_timestamp": t.updated_at,
        "via": {"channel": "api"},
    })
}

pub(super) fn comment_json(c: &CommentRec) -> Value {
    json!({
        "id": c.id,
        "type": "Comment",
        "author_id": c.author_id,
        "body": c.body,
        "html_body": format!("<p>{}</p>", c.body),
        "plain_body": c.body,
        "public": c.public,
        "attachments": [],
        "created_at": rfc3339(c.created_at),
    })
}

pub(super) fn list(name: &str, items: Vec<Value>) -> Value {
    json!({name: items.clone(), "next_page": null, "previous_page": null, "count": items.len()})
}

/// A list endpoint's page, as Zendesk paginates: cursor pagination when the
/// request says `page[size]` (with `page[after]` from `meta.after_cursor`),
/// otherwise offset pagination (`page`, `per_page`, `next_page`). Pages
/// hold at most `max` items (Zendesk: 100). The links are absolute, on
/// `base`: the origin the request reached (`dispatch::origin`).
pub(super) fn paged(
    name: &str,
    path: &str,
    items: Vec<Value>,
    q: &HashMap<String, String>,
    opts: &ZendeskOptions,
    base: &str,
) -> Answer {
    let max = opts.list_page_max.max(1);
    let bad = |what: &str| ZdErr::bad_request("InvalidPaginationParameter", what);
    let number = |key: &str| -> Result<Option<usize>, ZdErr> {
        q.get(key)
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| bad(&format!("{key} must be a positive integer")))
            })
            .transpose()
    };
    if let Some(size) = number("page[size]")? {
        if size == 0 || size > 100 {
            return Err(bad("page[size] must be between 1 and 100"));
        }
        let size = size.min(max);
        let start = match q.get("page[after]") {
            None => 0,
            Some(c) => decode_cursor(LIST_CURSOR, c)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| bad("page[after] is not a cursor this list gave"))?,
        };
        let page: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
        let end = start + page.len();
        let has_more = end < items.len();
        let after = (!page.is_empty()).then(|| encode_cursor(LIST_CURSOR, end as u64));
        let before = (!page.is_empty()).then(|| encode_cursor(LIST_CURSOR, start as u64));
        let link = |c: &Option<String>, dir: &str| match c {
            Some(c) if dir == "after" && has_more || dir == "before" && start > 0 => Value::from(
                format!("{base}{path}?page%5B{dir}%5D={c}&page%5Bsize%5D={size}"),
            ),
            _ => Value::Null,
        };
        return ok(json!({
            name: page,
            "meta": {"has_more": has_more, "after_cursor": after, "before_cursor": before},
            "links": {"next": link(&after, "after"), "prev": link(&before, "before")},
        }));
    }
    let per_page = number("per_page")?.unwrap_or(max).clamp(1, max);
    let page_no = number("page")?.unwrap_or(1).max(1);
    let start = (page_no - 1).saturating_mul(per_page);
    let page: Vec<Value> = items.iter().skip(start).take(per_page).cloned().collect();
    let url = |n: usize| Value::from(format!("{base}{path}?page={n}&per_page={per_page}"));
    let next = if start + page.len() < items.len() {
        url(page_no + 1)
    } else {
        Value::Null
    };
    let prev = if page_no > 1 {
        url(page_no - 1)
    } else {
        Value::Null
    };
    ok(json!({name: page, "next_page": next, "previous_page": prev, "count": items.len()}))
}

/// An opaque cursor, as Zendesk's look: base64 of `{kind}:{position}`.
/// The kind keeps an export cursor from being taken for a list's.
pub(super) fn encode_cursor(kind: &str, position: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{position}"))
}

pub(super) fn decode_cursor(kind: &str, c: &str) -> Option<u64> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim_end_matches('='))
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix(kind)?
        .strip_prefix(':')?
        .parse()
        .ok()
}

const LIST_CURSOR: &str = "l3map-list";
