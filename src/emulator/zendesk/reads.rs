//! The read endpoints: tickets, comments, fields, statuses, jobs.

use super::errors::{ok, Answer, ZdErr};
use super::seed::{FieldKind, SeedField};
use super::views::{comment_json, list, paged, ticket_json};
use super::{lock, Job, Shared};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};

pub(super) fn list_tickets(sh: &Shared) -> Answer {
    let db = lock(&sh.db);
    let items = db
        .tickets
        .values()
        .map(|t| ticket_json(&db, t, &sh.opts))
        .collect();
    ok(list("tickets", items))
}

pub(super) fn show(sh: &Shared, id: u64) -> Answer {
    let db = lock(&sh.db);
    let t = db.tickets.get(&id).ok_or_else(ZdErr::not_found)?;
    ok(json!({"ticket": ticket_json(&db, t, &sh.opts)}))
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

pub(super) fn custom_statuses(sh: &Shared) -> Answer {
    let db = lock(&sh.db);
    let mut seen = BTreeSet::new();
    let items: Vec<Value> = db
        .statuses
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "status_category": s.category,
                "agent_label": s.label,
                "end_user_label": s.label,
                "description": s.name,
                "active": true,
                // The first of each category is its default, as in Zendesk.
                "default": seen.insert(s.category.clone()),
            })
        })
        .collect();
    ok(json!({"custom_statuses": items}))
}

pub(super) fn job_status(sh: &Shared, id: &str, base: &str) -> Answer {
    let mut db = lock(&sh.db);
    let job = db.jobs.get_mut(id).ok_or_else(ZdErr::not_found)?;
    let view = if job.polls_left > 0 {
        job.polls_left -= 1;
        job_json(base, id, job, "working")
    } else {
        job_json(base, id, job, "completed")
    };
    ok(json!({"job_status": view}))
}

/// The job status; its `url` absolute on `base`, the origin reached.
pub(super) fn job_json(base: &str, id: &str, job: &Job, status: &str) -> Value {
    let done = status == "completed";
    json!({
        "id": id,
        "url": format!("{base}/api/v2/job_statuses/{id}.json"),
        "job_type": "ThirdPartyTicketUpdate",
        "total": job.total,
        "progress": if done { job.total } else { job.total / 2 },
        "status": status,
        "message": if done { Value::from("Completed at now") } else { Value::Null },
        "results": if done { Value::Array(job.results.clone()) } else { Value::Null },
    })
}
