//! `PUT /api/v2/tickets/update_many.json` and its job statuses. "Accepts
//! an array of up to 100 ticket objects, or a comma-separated list of up
//! to 100 ticket ids"
//! (developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-many-tickets);
//! the answer is a queued job, run in the background (after `job_delay`),
//! polled with `GET /api/v2/job_statuses/{id}.json`
//! (developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/),
//! whose results say, per ticket, `Updated` or why not.

use super::changes::{as_id, parse_body, read_changes, ticket_object, Changes};
use super::errors::{ok, Answer, ZdErr};
use super::lifecycle;
use super::writes::{apply, API};
use super::{lock, Db, Job, Shared, MAX_BULK_IDS};
use crate::emulator::bounded::insert_bounded;
use axum::body::Bytes;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The tickets of an `update_many` and what to do to each: the same
/// validated changes for every id (bulk form), or each ticket's own
/// (batch form), where a ticket whose changes are invalid fails alone.
type Plan = Vec<(u64, Result<Changes, String>)>;

fn parse_ids(s: &str) -> Result<Vec<u64>, ZdErr> {
    s.split(',')
        .map(|x| x.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            ZdErr::bad_request(
                "InvalidParameter",
                "ids must be a comma-separated list of ticket ids",
            )
        })
}

/// Why a ticket's changes were refused, for its job result.
fn why(e: &ZdErr) -> String {
    let described = e.body["details"]
        .as_object()
        .into_iter()
        .flat_map(|d| d.values())
        .flat_map(|v| v.as_array().into_iter().flatten())
        .filter_map(|p| p["description"].as_str())
        .collect::<Vec<_>>()
        .join("; ");
    if described.is_empty() {
        e.body["description"]
            .as_str()
            .unwrap_or("invalid")
            .to_string()
    } else {
        described
    }
}

/// Bulk `?ids=1,2,3` with `{"ticket": {...}}`, or batch `{"tickets":
/// [{"id": 1, ...}, ...]}`.
fn plan(db: &Db, query: &HashMap<String, String>, m: &Map<String, Value>) -> Result<Plan, ZdErr> {
    let plan: Plan = match (query.get("ids"), m.get("tickets")) {
        (Some(ids), _) => {
            let ids = parse_ids(ids)?;
            let changes = read_changes(db, ticket_object(m)?)?;
            ids.into_iter().map(|id| (id, Ok(changes.clone()))).collect()
        }
        (None, Some(Value::Array(items))) => {
            let mut plan = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let t = item.as_object().ok_or_else(|| {
                    ZdErr::bad_request("InvalidParameter", format!("tickets[{i}] must be a ticket object"))
                })?;
                let id = t.get("id").and_then(as_id).ok_or_else(|| {
                    ZdErr::bad_request("InvalidParameter", format!("tickets[{i}] needs the id of the ticket to update"))
                })?;
                plan.push((id, read_changes(db, t).map_err(|e| why(&e))));
            }
            plan
        }
        (None, Some(_)) => {
            return Err(ZdErr::bad_request(
                "InvalidParameter",
                "tickets must be an array of ticket objects, each with its id",
            ))
        }
        (None, None) => {
            return Err(ZdErr::bad_request(
                "InvalidParameter",
                "update_many needs ?ids=1,2,3 with {\"ticket\": {...}}, or {\"tickets\": [{\"id\": 1, ...}]}",
            ))
        }
    };
    if plan.is_empty() || plan.len() > MAX_BULK_IDS {
        return Err(ZdErr::bad_request(
            "InvalidParameter",
            format!("update_many takes 1 to {MAX_BULK_IDS} tickets"),
        ));
    }
    Ok(plan)
}

fn failed(index: usize, id: u64, error: &str, details: &str) -> Value {
    json!({"index": index, "id": id, "action": "update", "success": false,
           "status": "Failed", "error": error, "details": details})
}

/// Runs a job's plan: each ticket updated (as the authenticated user,
/// `via: api`) or its failure recorded; the events of each updated
/// ticket, for its webhooks.
fn run(db: &mut Db, plan: Plan) -> (Vec<Value>, Vec<(u64, Vec<(String, Value)>)>) {
    let mut results = Vec::with_capacity(plan.len());
    let mut published = Vec::new();
    for (index, (id, changes)) in plan.into_iter().enumerate() {
        let c = match changes {
            Err(details) => {
                results.push(failed(index, id, "RecordInvalid", &details));
                continue;
            }
            Ok(c) => c,
        };
        let Some(before) = db.tickets.get(&id) else {
            results.push(failed(index, id, "TicketNotFound", "Ticket not found"));
            continue;
        };
        if let Err(e) = lifecycle::check(Some(before), &c) {
            results.push(failed(index, id, "RecordInvalid", &why(&e)));
            continue;
        }
        if let Some(details) = db.fail_next.remove(&id) {
            results.push(failed(index, id, "TicketUpdateFailed", &details));
            continue;
        }
        published.push((id, apply(db, id, &c, API)));
        results.push(json!({"index": index, "id": id, "action": "update", "success": true, "status": "Updated"}));
    }
    (results, published)
}

/// Runs the job now: its results recorded, its webhooks queued.
fn finish(sh: &Shared, job_id: &str, plan: Plan) {
    let published = {
        let mut db = lock(&sh.db);
        let fail = db.fail_next_job.take();
        let (results, published) = match &fail {
            Some(_) => (vec![], vec![]),
            None => run(&mut db, plan),
        };
        if let Some(job) = db.jobs.get_mut(job_id) {
            job.results = results;
            job.failed = fail;
            job.done = true;
        }
        published
    };
    for (id, events) in published {
        sh.publish(id, events);
    }
}

pub(super) fn update_many(
    sh: &Arc<Shared>,
    query: &HashMap<String, String>,
    body: &Bytes,
    base: &str,
) -> Answer {
    let m = parse_body(body)?;
    let (job_id, total, plan) = {
        let mut db = lock(&sh.db);
        let plan = plan(&db, query, &m)?;
        let total = plan.len();
        let job_id = format!(
            "{:032x}",
            u128::from(db.next_job) << 64 | u128::from(fastrand::u64(..))
        );
        let job = Job {
            serial: db.next_job,
            total,
            polls_left: sh.opts.job_polls,
            results: vec![],
            done: false,
            failed: None,
        };
        db.next_job += 1;
        let cap = sh.opts.max_jobs;
        insert_bounded(
            &mut db.jobs,
            job_id.clone(),
            job,
            cap,
            |_| false,
            |j| j.serial,
        );
        (job_id, total, plan)
    };
    let delay = sh.opts.job_delay;
    if delay.is_zero() {
        finish(sh, &job_id, plan);
    } else {
        let (sh, id) = (sh.clone(), job_id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            finish(&sh, &id, plan);
        });
    }
    let queued = Job {
        serial: 0,
        total,
        polls_left: 0,
        results: vec![],
        done: false,
        failed: None,
    };
    ok(json!({"job_status": job_json(base, &job_id, &queued, "queued")}))
}

/// `GET /api/v2/job_statuses/{id}.json`: `queued` until the job has run;
/// then `working` for its first `job_polls` reads, then `completed` (or
/// `failed`, for an injected job failure).
pub(super) fn job_status(sh: &Shared, id: &str, base: &str) -> Answer {
    let mut db = lock(&sh.db);
    let job = db.jobs.get_mut(id).ok_or_else(ZdErr::not_found)?;
    let status = if !job.done {
        "queued"
    } else if job.polls_left > 0 {
        job.polls_left -= 1;
        "working"
    } else if job.failed.is_some() {
        "failed"
    } else {
        "completed"
    };
    ok(json!({"job_status": job_json(base, id, job, status)}))
}

/// The job status; its `url` absolute on `base`, the origin reached.
fn job_json(base: &str, id: &str, job: &Job, status: &str) -> Value {
    let finished = matches!(status, "completed" | "failed");
    let message = match (&job.failed, status) {
        (Some(m), "failed") => Value::from(m.clone()),
        (_, "completed") => Value::from("Completed at now"),
        _ => Value::Null,
    };
    json!({
        "id": id,
        "url": format!("{base}/api/v2/job_statuses/{id}.json"),
        "job_type": "ThirdPartyTicketUpdate",
        "total": job.total,
        "progress": match status {
            "queued" => Value::Null,
            "working" => Value::from(job.total / 2),
            _ => Value::from(job.results.len()),
        },
        "status": status,
        "message": message,
        "results": if finished { Value::Array(job.results.clone()) } else { Value::Null },
    })
}
