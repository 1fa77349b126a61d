//! The read endpoints: tickets, comments, fields, statuses, jobs.

use super::errors::{ok, Answer, ZdErr};
use super::seed::{FieldKind, SeedField};
use super::views::{comment_json, list, paged, ticket_json};
use super::{lock, Shared};
use serde_json::{json, Value};
use std::collections::HashMap;

pub(super) fn list_tickets(sh: &Shared) -> Answer {
    let db = lock(&sh.db);
    let items = db
        .tickets
        .values()
        .map(|t| ticket_json(&db, t, &sh.opts))
        .collect();
    ok(list("tickets", items))
}

/// `GET /api/v2/tickets/{id}.json`, with `include=users,organizations`
/// ("Side-loading related records",
/// developer.zendesk.com/documentation/ticketing/using-the-zendesk-api/side_loading/):
/// top-level `users` (requester, submitter, assignee) and
/// `organizations` (the ticket's). Other sideloads are ignored.
pub(super) fn show(sh: &Shared, id: u64, q: &HashMap<String, String>) -> Answer {
    let db = lock(&sh.db);
    let t = db.tickets.get(&id).ok_or_else(ZdErr::not_found)?;
    let mut body = json!({"ticket": ticket_json(&db, t, &sh.opts)});
    let include: Vec<&str> = q
        .get("include")
        .map(|s| s.split(',').map(str::trim).collect())
        .unwrap_or_default();
    if include.contains(&"users") {
        let mut ids = vec![t.requester_id, t.submitter_id.unwrap_or(t.requester_id)];
        ids.extend(t.assignee_id);
        ids.dedup();
        let users: Vec<Value> = ids
            .into_iter()
            .filter_map(|u| db.person(u))
            .map(|u| super::parties::person_json(sh, u))
            .collect();
        body["users"] = Value::Array(users);
    }
    if include.contains(&"organizations") {
        let orgs: Vec<Value> = t
            .organization_id
            .and_then(|o| db.orgs.get(&o))
            .map(|o| super::parties::org_json(sh, o))
            .into_iter()
            .collect();
        body["organizations"] = Value::Array(orgs);
    }
    ok(body)
}

/// `GET /api/v2/tickets/show_many.json?ids=1,2,3`: up to 100 tickets,
/// those that exist, with the side-loads [`show`] gives each, merged.
pub(super) fn show_many(sh: &Shared, q: &HashMap<String, String>) -> Answer {
    let ids: Vec<u64> = q
        .get("ids")
        .map(|s| s.split(',').filter_map(|i| i.trim().parse().ok()).collect())
        .unwrap_or_default();
    if ids.len() > 100 {
        return Err(ZdErr::bad_request(
            "InvalidValue",
            "show_many takes at most 100 ids",
        ));
    }
    let (mut tickets, mut users, mut orgs) = (vec![], vec![], vec![]);
    for id in ids {
        let Ok((_, one)) = show(sh, id, q) else {
            continue;
        };
        tickets.push(one["ticket"].clone());
        for (key, into) in [("users", &mut users), ("organizations", &mut orgs)] {
            for x in one[key].as_array().into_iter().flatten() {
                if !into.iter().any(|y: &Value| y["id"] == x["id"]) {
                    into.push(x.clone());
                }
            }
        }
    }
    let mut body = json!({"tickets": tickets});
    if q.contains_key("include") {
        body["users"] = Value::Array(users);
        body["organizations"] = Value::Array(orgs);
    }
    ok(body)
}

pub(super) fn list_comments(
    sh: &Shared,
    id: u64,
    q: &HashMap<String, String>,
    base: &str,
) -> Answer {
    let db = lock(&sh.db);
    let t = db.tickets.get(&id).ok_or_else(ZdErr::not_found)?;
    let path = format!("/api/v2/tickets/{id}/comments.json");
    let items = t.comments.iter().map(comment_json).collect();
    paged("comments", &path, items, q, &sh.opts, base)
}

pub(super) fn ticket_fields(sh: &Shared, q: &HashMap<String, String>, base: &str) -> Answer {
    let db = lock(&sh.db);
    let items = db.fields.iter().map(field_json).collect();
    paged(
        "ticket_fields",
        "/api/v2/ticket_fields.json",
        items,
        q,
        &sh.opts,
        base,
    )
}

fn field_json(f: &SeedField) -> Value {
    let options: Vec<Value> = match &f.kind {
        FieldKind::Tagger(vs) => vs
            .iter()
            .enumerate()
            .map(
                |(i, v)| json!({"id": f.id.wrapping_mul(100).wrapping_add(i as u64), "name": v, "raw_name": v, "value": v}),
            )
            .collect(),
        _ => vec![],
    };
    let mut v = json!({
        "id": f.id,
        "type": f.kind.zendesk_type(),
        "title": f.title,
        "raw_title": f.title,
        "active": true,
        "required": false,
        "removable": true,
    });
    if let (Some(obj), false) = (v.as_object_mut(), options.is_empty()) {
        obj.insert("custom_field_options".into(), Value::Array(options));
    }
    v
}

/// Every custom status ("No pagination is provided"), `?default=true`
/// or `false` filtering on `default`.
pub(super) fn custom_statuses(sh: &Shared, q: &HashMap<String, String>) -> Answer {
    let db = lock(&sh.db);
    let wanted = q.get("default").map(|v| v == "true");
    let items: Vec<Value> = db
        .statuses
        .iter()
        .map(|s| {
            (
                s,
                db.default_status(&s.category).map(|d| d.id) == Some(s.id),
            )
        })
        .filter(|(_, default)| wanted.is_none_or(|w| w == *default))
        .map(|(s, default)| {
            json!({
                "id": s.id,
                "status_category": s.category,
                "agent_label": s.label,
                "end_user_label": s.label,
                "description": s.name,
                "active": true,
                "default": default,
            })
        })
        .collect();
    ok(json!({"custom_statuses": items}))
}
