//! Ticket writes: update, create (with `Idempotency-Key`), bulk update.

use super::audit::audit_json;
use super::changes::{as_id, parse_body, read_changes, ticket_object, Changes};
use super::errors::{ok, Answer, Problems, ZdErr};
use super::lifecycle;
use super::parties::HUMAN_AGENT_ID;
use super::views::ticket_json;
use super::{
    lock, now_secs, CommentRec, Db, Remembered, Shared, Ticket, TokenGrant, AGENT_ID,
    IDEMPOTENCY_TTL,
};
use crate::emulator::bounded::insert_bounded;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use tokio::time::Instant;

/// Status categories an end user's comment reopens.
const REOPENED_BY_END_USERS: [&str; 3] = ["pending", "hold", "solved"];

/// Who makes a change and through what: the authenticated user through
/// the API, or a person through the agent interface (admin calls).
#[derive(Debug, Clone, Copy)]
pub(super) struct Updater {
    pub(super) id: u64,
    pub(super) via: &'static str,
}

/// Every API request: the user every credential signs in as.
pub(super) const API: Updater = Updater {
    id: AGENT_ID,
    via: "api",
};

/// Applies validated changes; the events a webhook subscriber would get.
/// `by` makes the change and writes the comment unless the comment names
/// its own `author_id`.
pub(super) fn apply(db: &mut Db, id: u64, c: &Changes, by: Updater) -> Vec<(String, Value)> {
    let author = c.comment_author.unwrap_or(by.id);
    let user = db.person(author).map(|u| (u.role.clone(), u.name.clone()));
    db.seq += 1;
    let seq = db.seq;
    let comment_id = db.next_comment;
    let default_open = db.default_status("open").map(|s| s.id);
    let Some(t) = db.tickets.get_mut(&id) else {
        return vec![];
    };
    let before = t.clone();
    let now = now_secs();
    if let Some(s) = &c.subject {
        t.subject.clone_from(s);
    }
    if let Some(s) = &c.status {
        t.status.clone_from(s);
    }
    if let Some(cs) = c.custom_status_id {
        t.custom_status_id = cs;
    }
    if let Some(f) = c.ticket_form_id {
        t.ticket_form_id = Some(f);
    }
    // Zendesk's native rule: "If an end user comments on a ticket with a
    // status set to Pending, Solved, or On-hold, the ticket status is
    // changed to Open", with custom statuses "to your default ticket status
    // in the Open category" (support.zendesk.com/hc/en-us/articles/
    // 4408894213018, About native system ticket rules). A status set in the
    // same request wins (the emulator's choice).
    let by_end_user = user.as_ref().is_some_and(|(role, _)| role == "end-user");
    if c.comment.is_some()
        && by_end_user
        && c.status.is_none()
        && c.custom_status_id.is_none()
        && REOPENED_BY_END_USERS.contains(&t.status.as_str())
    {
        t.status = "open".into();
        if let Some(open) = default_open {
            t.custom_status_id = open;
        }
    }
    if c.priority.is_some() {
        t.priority.clone_from(&c.priority);
    }
    if c.kind.is_some() {
        t.kind.clone_from(&c.kind);
    }
    if let Some(g) = c.group_id {
        t.group_id = g;
    }
    apply_tags(t, c);
    for (fid, v) in &c.fields {
        t.fields.insert(*fid, v.clone());
    }
    let mut events = Vec::new();
    if let Some((body, public)) = &c.comment {
        t.comments.push(CommentRec {
            id: comment_id,
            author_id: author,
            body: body.clone(),
            public: *public,
            created_at: now,
        });
        // The author as event subscriptions show it: `is_staff` is what
        // tells an agent's comment from an end user's.
        events.push((
            "comment_added".to_string(),
            json!({"comment": {
                "id": comment_id.to_string(), "body": body, "is_public": public,
                "author": {
                    "id": author.to_string(),
                    "is_staff": user.as_ref().is_some_and(|(role, _)| role != "end-user"),
                    "name": user.as_ref().map_or("", |(_, name)| name.as_str()),
                }
            }}),
        ));
    }
    // Never backwards: a person's change the hooks stamped a second ahead
    // stays the older one (red team F12).
    t.updated_at = now.max(t.updated_at);
    t.seq = seq;
    t.updater_id = Some(by.id);
    t.updated_via = Some(by.via.to_string());
    events.extend(change_events(&before, t));
    if c.comment.is_some() {
        db.next_comment += 1;
    }
    events
}

fn apply_tags(t: &mut Ticket, c: &Changes) {
    if let Some(tags) = &c.tags {
        t.tags.clone_from(tags);
    }
    for tag in &c.additional_tags {
        if !t.tags.contains(tag) {
            t.tags.push(tag.clone());
        }
    }
    t.tags.retain(|x| !c.remove_tags.contains(x));
}

fn change_events(before: &Ticket, after: &Ticket) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut changed = |name: &str, prev: Value, cur: Value| {
        if prev != cur {
            out.push((name.to_string(), json!({"previous": prev, "current": cur})));
        }
    };
    changed(
        "status_changed",
        json!(before.status.to_uppercase()),
        json!(after.status.to_uppercase()),
    );
    changed(
        "custom_status_changed",
        json!(before.custom_status_id.to_string()),
        json!(after.custom_status_id.to_string()),
    );
    changed(
        "group_assignment_changed",
        json!(before.group_id.map(|g| g.to_string())),
        json!(after.group_id.map(|g| g.to_string())),
    );
    changed("tags_changed", json!(before.tags), json!(after.tags));
    for (id, v) in &after.fields {
        let prev = before.fields.get(id).cloned().unwrap_or(Value::Null);
        if prev != *v {
            out.push((
                "custom_field_changed".to_string(),
                json!({"previous": prev, "current": v, "field": {"id": id.to_string()}}),
            ));
        }
    }
    out
}

/// `DELETE /api/v2/tickets/{id}.json`: 204. Zendesk moves the ticket to
/// its trash; here it is gone (a later read is a 404 either way).
pub(super) fn delete_ticket(sh: &Shared, id: u64) -> Answer {
    match lock(&sh.db).tickets.remove(&id) {
        Some(_) => Ok((StatusCode::NO_CONTENT, Value::Null)),
        None => Err(ZdErr::not_found()),
    }
}

pub(super) fn update_ticket(sh: &Shared, id: u64, body: &Bytes) -> Answer {
    let m = parse_body(body)?;
    let t = ticket_object(&m)?;
    let person = lock(&sh.db).person_next.remove(&id);
    if let Some(p) = person {
        person_lands(sh, id, &p)?;
    }
    let (view, audit, events) = {
        let mut db = lock(&sh.db);
        let Some(before) = db.tickets.get(&id).cloned() else {
            return Err(ZdErr::not_found());
        };
        stale_check(&before, t)?;
        ticket_budget(&mut db, id, &sh.opts)?;
        let changes = read_changes(&db, t)?;
        lifecycle::check(Some(&before), &changes)?;
        if let Some(why) = db.fail_next.remove(&id) {
            return Err(injected(&why));
        }
        let events = apply(&mut db, id, &changes, API);
        let Some(after) = db.tickets.get(&id) else {
            return Err(ZdErr::not_found());
        };
        let comment = changes.comment.as_ref().and(after.comments.last());
        let audit = audit_json(Some(&before), after, AGENT_ID, comment);
        (ticket_json(&db, after, &sh.opts), audit, events)
    };
    lock(&sh.stats).ticket_updates.bump(&id.to_string());
    sh.publish(id, events);
    ok(json!({"ticket": view, "audit": audit}))
}

/// One API update of ticket `id` from its budget, or 429 with the seconds
/// until the oldest update in the period leaves it. The 429 body is the
/// one the account limit answers (the emulator's assumption for this one).
fn ticket_budget(db: &mut Db, id: u64, opts: &super::ZendeskOptions) -> Result<(), ZdErr> {
    let limit = opts.ticket_update_limit as usize;
    if limit == 0 {
        return Ok(());
    }
    let period = opts.ticket_update_period;
    let now = Instant::now();
    let mut recent = db.ticket_updates.remove(&id).unwrap_or_default();
    while recent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= period)
    {
        recent.pop_front();
    }
    let answer = if recent.len() >= limit {
        let wait = recent
            .front()
            .map_or(period, |t| period.saturating_sub(now.duration_since(*t)));
        Err(ZdErr::too_many(
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        ))
    } else {
        recent.push_back(now);
        Ok(())
    };
    insert_bounded(
        &mut db.ticket_updates,
        id,
        recent,
        opts.max_limited_tickets,
        |r| r.back().is_none_or(|t| now.duration_since(*t) >= period),
        |r| r.back().copied(),
    );
    answer
}

/// `safe_update: true` with an `updated_stamp` older than the ticket's
/// `updated_at`: 409, nothing applied ("Protecting against ticket update
/// collisions", developer.zendesk.com/documentation/ticketing/
/// managing-tickets/creating-and-updating-tickets/). Compared in whole
/// seconds, the Tickets API's resolution. The body's shape is the
/// emulator's assumption (docs/EMULATORS.md): Zendesk's other 409 on this
/// endpoint answers `{"error": "DatabaseConflict", "description": ...}`
/// (github.com/zendesk/zendesk_api_client_php/issues/314).
fn stale_check(before: &Ticket, t: &Map<String, Value>) -> Result<(), ZdErr> {
    let safe = match t.get("safe_update") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    if !safe {
        return Ok(());
    }
    let stamp = t
        .get("updated_stamp")
        .and_then(Value::as_str)
        .and_then(|s| s.trim().parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second());
    match stamp {
        Some(s) if s >= before.updated_at => Ok(()),
        Some(_) => Err(ZdErr {
            status: StatusCode::CONFLICT,
            body: json!({
                "error": "UpdateConflict",
                "description": "The ticket was updated since the updated_stamp given; read it again and retry",
            }),
        }),
        None => Err(ZdErr::bad_request(
            "InvalidParameter",
            "safe_update needs updated_stamp: the ticket's updated_at (ISO 8601) the update is based on",
        )),
    }
}

pub(super) fn create_ticket(
    sh: &Shared,
    headers: &HeaderMap,
    grant: &TokenGrant,
    body: &Bytes,
    base: &str,
) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let parsed = match parse_body(body) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let mut db = lock(&sh.db);
    let remembered = key.as_ref().map(|k| (grant.token.fingerprint(), k.clone()));
    if let Some(r) = remembered.as_ref().and_then(|rk| db.idempotency.get(rk)) {
        if r.at.elapsed() < IDEMPOTENCY_TTL {
            if r.body != Value::Object(parsed.clone()) {
                return ZdErr::bad_request(
                    "IdempotentRequestError",
                    "Request parameters don't match those of the original request with this Idempotency-Key",
                )
                .into_response();
            }
            let mut resp = (r.status, axum::Json(r.response.clone())).into_response();
            resp.headers_mut()
                .insert("x-idempotency-lookup", HeaderValue::from_static("hit"));
            return resp;
        }
    }
    let created = create_in(&mut db, sh, &parsed);
    let (id, response, events) = match created {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if let Some(rk) = remembered.clone() {
        let r = Remembered {
            body: Value::Object(parsed),
            status: StatusCode::CREATED,
            response: response.clone(),
            at: Instant::now(),
        };
        db.remember(rk, r, sh.opts.max_idempotency_keys);
    }
    let lost = std::mem::take(&mut db.drop_next_create);
    drop(db);
    sh.publish(id, events);
    if lost {
        // Made, remembered under its key, and the answer lost on the way.
        return ZdErr {
            status: StatusCode::BAD_GATEWAY,
            body: json!({"error": "BadGateway", "description": "the answer was lost (emulator fault)"}),
        }
        .into_response();
    }
    let mut resp = (StatusCode::CREATED, axum::Json(response)).into_response();
    // Absolute, as Zendesk sends it ("Location:
    // https://{subdomain}.zendesk.com/api/v2/items/123.json",
    // developer.zendesk.com/api-reference/introduction/requests/), on the
    // origin the request reached so that following it stays here.
    if let Ok(loc) = HeaderValue::from_str(&format!("{base}/api/v2/tickets/{id}.json")) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    if remembered.is_some() {
        resp.headers_mut()
            .insert("x-idempotency-lookup", HeaderValue::from_static("miss"));
    }
    resp
}

impl Db {
    /// Remembers a create under its idempotency key: keys past their TTL
    /// are dropped here (a read would ignore them anyway), and past `cap`
    /// the oldest go, so a long session keeps at most `cap` answers.
    fn remember(&mut self, key: (String, String), r: Remembered, cap: usize) {
        self.idempotency
            .retain(|_, r| r.at.elapsed() < IDEMPOTENCY_TTL);
        insert_bounded(&mut self.idempotency, key, r, cap, |_| false, |r| r.at);
    }
}

/// The new ticket's id, the answer (`ticket` and `audit`), and its events.
type Created = (u64, Value, Vec<(String, Value)>);

fn create_in(db: &mut Db, sh: &Shared, m: &Map<String, Value>) -> Result<Created, ZdErr> {
    let t = ticket_object(m)?;
    let mut c = read_changes(db, t)?;
    let description = c.comment.clone().or_else(|| {
        t.get("description")
            .and_then(Value::as_str)
            .map(|d| (d.to_string(), true))
    });
    let Some(description) = description else {
        let mut p = Problems::default();
        p.attr("description", "Description: cannot be blank".into());
        return Err(ZdErr::invalid(p.0));
    };
    c.comment = Some(description.clone());
    lifecycle::check(None, &c)?;
    let status = c.status.clone().unwrap_or_else(|| "new".into());
    let custom = c
        .custom_status_id
        .or_else(|| db.default_status(&status).map(|s| s.id))
        .unwrap_or(0);
    let id = db.next_ticket;
    db.next_ticket += 1;
    let now = now_secs();
    // Zendesk: "By default, the requester of a ticket is the submitter",
    // and the submitter is the user who created it: through the API, the
    // authenticated user (every credential here is the agent). An explicit
    // `submitter_id` makes that user "the author of the first comment".
    let requester = t.get("requester_id").and_then(as_id).unwrap_or(AGENT_ID);
    let submitter = t.get("submitter_id").and_then(as_id);
    // "The organization of the requester" unless the ticket names one.
    let organization = t
        .get("organization_id")
        .and_then(as_id)
        .filter(|o| db.orgs.contains_key(o))
        .or_else(|| db.person(requester).and_then(|p| p.organization_id));
    let external_id = t
        .get("external_id")
        .and_then(Value::as_str)
        .map(String::from);
    db.tickets.insert(
        id,
        Ticket {
            id,
            subject: c
                .subject
                .clone()
                .unwrap_or_else(|| description.0.chars().take(80).collect()),
            description: description.0.clone(),
            status,
            custom_status_id: custom,
            priority: c.priority.clone(),
            kind: c.kind.clone(),
            group_id: None,
            assignee_id: None,
            requester_id: requester,
            submitter_id: submitter.filter(|s| *s != requester),
            tags: vec![],
            fields: BTreeMap::new(),
            organization_id: organization,
            external_id,
            ticket_form_id: None,
            updater_id: None,
            updated_via: None,
            created_at: now,
            updated_at: now,
            seq: 0,
            comments: vec![],
        },
    );
    // The creation is one change: its events collapse into `created`.
    let author = submitter.unwrap_or(requester);
    apply(db, id, &c, API);
    if let Some(t) = db.tickets.get_mut(&id) {
        // The creation's comment is the submitter's, not the caller's.
        if let Some(first) = t.comments.first_mut() {
            if c.comment_author.is_none() {
                first.author_id = author;
            }
        }
    }
    let Some(t) = db.tickets.get(&id) else {
        return Err(ZdErr::not_found());
    };
    let answer = json!({
        "ticket": ticket_json(db, t, &sh.opts),
        "audit": audit_json(None, t, author, t.comments.first()),
    });
    Ok((id, answer, vec![("created".into(), json!({}))]))
}

/// The 422 an injected failure answers (`Handle::fail_next_update`).
pub(super) fn injected(why: &str) -> ZdErr {
    let mut p = Problems::default();
    p.attr("base", why.to_string());
    ZdErr::invalid(p.0)
}

/// A person's change: the agent `author_id` (a human agent by default)
/// through the agent interface (`via: web`), with its webhooks, never
/// taken for l3map's own.
pub(super) fn as_a_person(sh: &Shared, id: u64, m: &Map<String, Value>) -> Answer {
    let (view, events) = {
        let mut db = lock(&sh.db);
        let before = db.tickets.get(&id).cloned().ok_or_else(ZdErr::not_found)?;
        let by = m.get("author_id").and_then(as_id).unwrap_or(HUMAN_AGENT_ID);
        if db.person(by).is_none() {
            return Err(ZdErr::bad_request(
                "RecordInvalid",
                format!("author_id {by} is not a user of this account"),
            ));
        }
        let changes = read_changes(&db, ticket_object(m)?)?;
        super::lifecycle::check(Some(&before), &changes)?;
        let events = apply(&mut db, id, &changes, Updater { id: by, via: "web" });
        let view = db
            .tickets
            .get(&id)
            .map(|t| super::views::ticket_json(&db, t, &sh.opts));
        (view, events)
    };
    sh.publish(id, events);
    ok(json!({"ticket": view}))
}

/// A queued person's change landing (before an API update): stamped at
/// least a second after the ticket's last change.
pub(super) fn person_lands(sh: &Shared, id: u64, m: &Map<String, Value>) -> Result<(), ZdErr> {
    let before = lock(&sh.db).tickets.get(&id).map(|t| t.updated_at);
    as_a_person(sh, id, m)?;
    if let Some(b) = before {
        if let Some(t) = lock(&sh.db).tickets.get_mut(&id) {
            t.updated_at = t.updated_at.max(b + 1);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remembered(at: Instant) -> Remembered {
        Remembered {
            body: json!({}),
            status: StatusCode::CREATED,
            response: json!({}),
            at,
        }
    }

    fn key(k: &str) -> (String, String) {
        ("fp".into(), k.into())
    }

    #[tokio::test(start_paused = true)]
    async fn idempotency_keys_expire_on_insert_and_stay_under_the_cap() {
        let mut db = Db::default();
        db.remember(key("stale"), remembered(Instant::now()), 3);
        tokio::time::advance(IDEMPOTENCY_TTL).await;
        db.remember(key("a"), remembered(Instant::now()), 3);
        assert!(!db.idempotency.contains_key(&key("stale")), "past its TTL");
        for k in ["b", "c", "d", "e"] {
            tokio::time::advance(std::time::Duration::from_secs(1)).await;
            db.remember(key(k), remembered(Instant::now()), 3);
        }
        let mut kept: Vec<&str> = db.idempotency.keys().map(|(_, k)| k.as_str()).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["c", "d", "e"], "the oldest made room");
    }
}
