//! Tickets, comments and lists as the API shows them.

use super::{rfc3339, CommentRec, Db, Ticket, ZendeskOptions, AGENT_ID};
use serde_json::{json, Value};
use std::collections::BTreeMap;

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
        "submitter_id": t.requester_id,
        "organization_id": null,
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

pub(super) fn agent_json() -> Value {
    json!({"id": AGENT_ID, "name": "l3map AI agent", "role": "agent", "email": "ai-agent@l3map.invalid"})
}

pub(super) fn list(name: &str, items: Vec<Value>) -> Value {
    json!({name: items.clone(), "next_page": null, "previous_page": null, "count": items.len()})
}
