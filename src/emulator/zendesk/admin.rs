//! The emulator's own admin calls under `/__l3map/` (not Zendesk paths; no
//! token, like `/__l3map/stats`): what a person or the account's admin
//! would do in Zendesk's interface, for tests and demos.
//!
//! * `POST /__l3map/organizations` `{"organization": {...}}`, `PUT
//!   /__l3map/organizations/{id}`; `POST /__l3map/users` `{"user": {...}}`,
//!   `PUT /__l3map/users/{id}`;
//! * `GET /__l3map/tickets?ids=1,2,3`: those tickets with their comments,
//!   as a person sees them (not counted against any token);
//! * `POST /__l3map/tickets` `{"count": n, "ticket": {...}}`: creates `n`
//!   tickets at once (no webhooks: a data load, not n people);
//! * `PUT /__l3map/tickets/{id}` `{"ticket": {...}, "author_id": 1001}`:
//!   changes a ticket as a person would (that agent, `via: web`), with its
//!   webhooks;
//! * `POST /__l3map/tickets/{id}/fail_next_update` `{"details": "..."}`:
//!   the ticket's next API update fails (alone, in a bulk job);
//! * `POST /__l3map/tickets/{id}/person_before_next_update` `{"ticket":
//!   {...}, "author_id": 1001}`: that person's change lands just before
//!   the ticket's next API update is processed (at least a second after
//!   the ticket's last change, so a stamp tells them apart): a person
//!   acting between l3map's read and its write, deterministically;
//! * `POST /__l3map/tickets/{id}/stall_next_update` `{"secs": 60}`: the
//!   ticket's next API update is applied and its answer withheld that long;
//! * `POST /__l3map/tickets/drop_next_create`: the next ticket create is
//!   made (and remembered under its `Idempotency-Key`) and its answer lost:
//!   502;
//! * `POST /__l3map/jobs/fail_next` `{"message": "..."}`: the next bulk job
//!   fails as a whole, nothing applied.
//! * `POST /__l3map/ticket_forms` `{"ticket_form": {"name": "Billing",
//!   "custom_status_ids": [...], "active": true, "default": false}}`: a
//!   ticket form offering those statuses, as an admin would set it up
//!   (Admin Center > Objects and rules > Tickets > Forms).

use super::changes::{as_id, parse_body, read_changes, ticket_object};
use super::errors::{ok, Answer, ZdErr};
use super::parties::{org_json, person_json, put_org, put_person, HUMAN_AGENT_ID};
use super::writes::as_a_person;
use super::{lock, now_secs, Db, Shared, Ticket, REQUESTER_ID};
use axum::http::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Tickets one `POST /__l3map/tickets` may create.
const MAX_ADMIN_TICKETS: u64 = 10_000;

pub(super) fn route(
    sh: &Shared,
    method: &Method,
    segs: &[&str],
    query: Option<&str>,
    body: &[u8],
) -> Answer {
    let m = || parse_body(&axum::body::Bytes::copy_from_slice(body));
    let id = |s: &str| s.parse::<u64>().map_err(|_| ZdErr::not_found());
    match (method.clone(), segs) {
        (Method::POST, ["organizations"]) => {
            let mut db = lock(&sh.db);
            let id = put_org(&mut db, None, &m()?, now_secs())?;
            created(json!({"organization": org_json(sh, &db.orgs[&id])}))
        }
        (Method::PUT, ["organizations", o]) => {
            let mut db = lock(&sh.db);
            let id = put_org(&mut db, Some(id(o)?), &m()?, now_secs())?;
            ok(json!({"organization": org_json(sh, &db.orgs[&id])}))
        }
        (Method::POST, ["users"]) => {
            let mut db = lock(&sh.db);
            let id = put_person(&mut db, None, &m()?)?;
            created(json!({"user": person_json(sh, &db.people[&id])}))
        }
        (Method::PUT, ["users", u]) => {
            let mut db = lock(&sh.db);
            let id = put_person(&mut db, Some(id(u)?), &m()?)?;
            ok(json!({"user": person_json(sh, &db.people[&id])}))
        }
        (Method::GET, ["tickets"]) => ok(show_with_comments(sh, query)),
        (Method::POST, ["tickets"]) => {
            let ids = create_many(&mut lock(&sh.db), &m()?)?;
            created(json!({"ids": ids}))
        }
        (Method::PUT, ["tickets", t]) => as_a_person(sh, id(t)?, &m()?),
        (Method::POST, ["tickets", t, "fail_next_update"]) => {
            let t = id(t)?;
            let details = text(&m()?, "details", "Injected failure: the update was refused");
            let mut db = lock(&sh.db);
            if !db.tickets.contains_key(&t) {
                return Err(ZdErr::not_found());
            }
            db.fail_next.insert(t, details);
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
        (Method::POST, ["ticket_forms"]) => created(super::forms::create(sh, &m()?)?),
        (Method::POST, ["tickets", "drop_next_create"]) => {
            lock(&sh.db).drop_next_create = true;
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
        (Method::POST, ["tickets", t, "person_before_next_update"]) => {
            let t = id(t)?;
            let body = m()?;
            let mut db = lock(&sh.db);
            if !db.tickets.contains_key(&t) {
                return Err(ZdErr::not_found());
            }
            // Checked now, so a bad one is the test's 4xx, not l3map's.
            read_changes(&db, ticket_object(&body)?)?;
            db.person_next.insert(t, body);
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
        (Method::POST, ["tickets", t, "stall_next_update"]) => {
            let t = id(t)?;
            let secs = m()?
                .get("secs")
                .and_then(Value::as_u64)
                .unwrap_or(60)
                .min(3600);
            let mut db = lock(&sh.db);
            if !db.tickets.contains_key(&t) {
                return Err(ZdErr::not_found());
            }
            db.stall_next
                .insert(t, std::time::Duration::from_secs(secs));
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
        (Method::POST, ["jobs", "fail_next"]) => {
            let message = text(&m()?, "message", "Injected failure: the job failed");
            lock(&sh.db).fail_next_job = Some(message);
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
        _ => Err(ZdErr::not_found()),
    }
}

/// `GET /__l3map/tickets?ids=1,2,3`: those tickets as the API shows them,
/// each with its `comments`, as a person sees them in the agent interface:
/// no token, not counted, so a test that watches a ticket costs the
/// client it measures nothing. Ids that name no ticket are left out.
fn show_with_comments(sh: &Shared, query: Option<&str>) -> Value {
    let q = super::form::parse_query(query);
    let ids = q.get("ids").map(String::as_str).unwrap_or("");
    let db = lock(&sh.db);
    let tickets: Vec<Value> = ids
        .split(',')
        .filter_map(|i| i.trim().parse::<u64>().ok())
        .filter_map(|i| db.tickets.get(&i))
        .map(|t| {
            let mut v = super::views::ticket_json(&db, t, &sh.opts);
            v["comments"] = t.comments.iter().map(super::views::comment_json).collect();
            v
        })
        .collect();
    json!({"tickets": tickets})
}

fn created(body: Value) -> Answer {
    Ok((StatusCode::CREATED, body))
}

fn text(m: &Map<String, Value>, key: &str, default: &str) -> String {
    m.get(key)
        .and_then(Value::as_str)
        .unwrap_or(default)
        .to_string()
}

/// `{"count": n, "ticket": {"subject", "status", "organization_id",
/// "requester_id", "custom_fields", "tags", ...}}`: `n` tickets alike.
fn create_many(db: &mut Db, m: &Map<String, Value>) -> Result<Vec<u64>, ZdErr> {
    let count = m.get("count").and_then(Value::as_u64).unwrap_or(1);
    if count == 0 || count > MAX_ADMIN_TICKETS {
        return Err(ZdErr::bad_request(
            "InvalidParameter",
            format!("count must be 1 to {MAX_ADMIN_TICKETS}"),
        ));
    }
    let empty = Map::new();
    let t = m.get("ticket").and_then(Value::as_object).unwrap_or(&empty);
    let c = read_changes(db, t)?;
    let requester = t
        .get("requester_id")
        .and_then(as_id)
        .unwrap_or(REQUESTER_ID);
    let organization = match t.get("organization_id") {
        Some(v) => Some(
            as_id(v)
                .filter(|o| db.orgs.contains_key(o))
                .ok_or_else(|| {
                    ZdErr::bad_request("RecordInvalid", format!("Organization: {v} does not exist"))
                })?,
        ),
        None => db.person(requester).and_then(|p| p.organization_id),
    };
    let status = c.status.clone().unwrap_or_else(|| "open".into());
    let custom = c
        .custom_status_id
        .or_else(|| db.default_status(&status).map(|s| s.id))
        .unwrap_or(0);
    let subject = c.subject.clone().unwrap_or_else(|| "Loaded ticket".into());
    let fields: BTreeMap<u64, Value> = c.fields.iter().cloned().collect();
    let now = now_secs();
    let mut ids = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let id = db.next_ticket;
        db.next_ticket += 1;
        db.seq += 1;
        db.tickets.insert(
            id,
            Ticket {
                id,
                subject: subject.clone(),
                description: subject.clone(),
                status: status.clone(),
                custom_status_id: custom,
                priority: c.priority.clone().or_else(|| Some("normal".into())),
                kind: c.kind.clone(),
                group_id: c.group_id.flatten(),
                assignee_id: None,
                requester_id: requester,
                submitter_id: None,
                tags: c.tags.clone().unwrap_or_default(),
                fields: fields.clone(),
                organization_id: organization,
                external_id: None,
                ticket_form_id: c.ticket_form_id,
                updater_id: Some(HUMAN_AGENT_ID),
                updated_via: Some("web".into()),
                created_at: now,
                updated_at: now,
                seq: db.seq,
                comments: vec![],
            },
        );
        ids.push(id);
    }
    Ok(ids)
}

impl super::Handle {
    /// The ticket's next API update fails with `details` (alone, in a job).
    pub fn fail_next_update(&self, ticket: u64, details: &str) {
        lock(&self.shared.db)
            .fail_next
            .insert(ticket, details.to_string());
    }

    /// The next bulk job fails as a whole with `message`.
    pub fn fail_next_job(&self, message: &str) {
        lock(&self.shared.db).fail_next_job = Some(message.to_string());
    }
}
