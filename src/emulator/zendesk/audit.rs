//! The audit a ticket write answers with. "An audit object is generated
//! and included in the response when you create or update a ticket. The
//! audit object has an events array listing all the updates made"
//! (developer.zendesk.com/api-reference/ticketing/tickets/tickets/#create-ticket);
//! its shape is the Ticket Audits JSON format, its events those of the
//! Ticket Audit events reference (`Comment`, `Create`, `Change`).

use super::views::comment_json;
use super::{rfc3339, CommentRec, Ticket};
use serde_json::{json, Value};

/// The audited properties of a ticket, as audit events name them.
fn properties(t: &Ticket) -> Vec<(String, Value)> {
    let mut out = vec![
        ("subject".to_string(), json!(t.subject)),
        ("status".to_string(), json!(t.status)),
        ("custom_status_id".to_string(), json!(t.custom_status_id)),
        ("priority".to_string(), json!(t.priority)),
        ("type".to_string(), json!(t.kind)),
        ("group_id".to_string(), json!(t.group_id)),
        ("requester_id".to_string(), json!(t.requester_id)),
        ("tags".to_string(), json!(t.tags)),
    ];
    out.extend(t.fields.iter().map(|(id, v)| (id.to_string(), v.clone())));
    out
}

/// The audit of one change: `before` is `None` for a create (every set
/// property is a `Create` event), else the ticket before the update
/// (every changed property is a `Change` event with `previous_value`).
/// The audit's id is the change's position in the change stream, unique
/// across the account; event ids derive from it.
pub(super) fn audit_json(
    before: Option<&Ticket>,
    after: &Ticket,
    author: u64,
    comment: Option<&CommentRec>,
) -> Value {
    let mut events: Vec<Value> = Vec::new();
    if let Some(c) = comment {
        let mut e = comment_json(c);
        if let Some(o) = e.as_object_mut() {
            o.remove("created_at");
            o.insert("audit_id".into(), json!(after.seq));
        }
        events.push(e);
    }
    let old: Vec<(String, Value)> = before.map(properties).unwrap_or_default();
    for (name, value) in properties(after) {
        let previous = old.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
        let id = after
            .seq
            .saturating_mul(1000)
            .saturating_add(events.len() as u64);
        match (before, previous) {
            (None, _) if !value.is_null() && value != json!([]) => events.push(json!({
                "id": id, "type": "Create", "field_name": name, "value": value,
            })),
            (Some(_), prev) if prev != Some(&value) => events.push(json!({
                "id": id, "type": "Change", "field_name": name, "value": value,
                "previous_value": prev.cloned().unwrap_or(Value::Null),
            })),
            _ => {}
        }
    }
    json!({
        "id": after.seq,
        "ticket_id": after.id,
        "created_at": rfc3339(after.updated_at),
        "author_id": author,
        "metadata": {"system": {"client": "l3map emulator"}, "custom": {}},
        "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": null}},
        "events": events,
    })
}
