//! Zendesk payloads: Tickets API tickets and webhook event subscriptions.
//!
//! The two spell the same ticket differently: the API sends numbers and
//! lower-case values (`"status": "open"`, `"custom_status_id": 123`), a
//! webhook's `detail` sends ids as strings and upper-case values
//! (`"status": "OPEN"`, `"custom_status": "123"`). One reader accepts both.

use super::{
    as_object, fail, get, id_value, index, join, opt_bool, opt_id, opt_str, req_id, req_object,
    req_str, rfc3339, str_list, StatusIndex,
};
use crate::eval::event::{Comment, Event, EventError, EventKind, Ticket};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// Every webhook event type starts with this.
pub const EVENT_TYPE_PREFIX: &str = "zen:event-type:";

/// Users and groups sideloaded with `?include=users,groups`: the ticket
/// itself carries only their ids, the normalised ticket wants names.
#[derive(Default)]
struct Sideloads {
    users: FxHashMap<u64, (Option<String>, Option<String>)>,
    groups: FxHashMap<u64, String>,
}

/// Reads a Tickets API response: `{"ticket": {...}}` (show, create,
/// update), `{"tickets": [...]}` (list, search, incremental export) or a
/// bare ticket object. One event per ticket.
pub fn from_ticket(v: &Json, statuses: &StatusIndex) -> Result<Vec<Event>, EventError> {
    let top = as_object(v, "")?;
    let side = sideloads(top)?;
    if let Some(t) = get(top, "ticket") {
        return Ok(vec![api_ticket(
            as_object(t, "ticket")?,
            "ticket",
            statuses,
            &side,
        )?]);
    }
    if let Some(list) = get(top, "tickets") {
        let items = list
            .as_array()
            .ok_or_else(|| fail("tickets", "expected an array of tickets"))?;
        return items
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let path = index("tickets", i);
                api_ticket(as_object(t, &path)?, &path, statuses, &side)
            })
            .collect();
    }
    Ok(vec![api_ticket(top, "", statuses, &side)?])
}

/// An API ticket is a state, not a change: the event is "the ticket as of
/// `updated_at`", so that stamp gives both the time and the id, and a
/// re-poll of an unchanged ticket yields the same id.
fn api_ticket(
    m: &Map<String, Json>,
    base: &str,
    statuses: &StatusIndex,
    side: &Sideloads,
) -> Result<Event, EventError> {
    let ticket = read_ticket(m, base, statuses, side)?;
    let updated = match opt_str(m, base, "updated_at")? {
        Some(u) => u,
        None => {
            return Err(fail(
                &join(base, "updated_at"),
                "missing (the event's time and id come from it)",
            ))
        }
    };
    let at = rfc3339(&updated, &join(base, "updated_at"))?;
    let kind = if ticket.created_at.as_deref() == Some(updated.as_str()) {
        EventKind::TicketCreated
    } else {
        EventKind::TicketUpdated
    };
    Ok(Event {
        // The webhook's events of this update key the same way.
        id: state_key(ticket.id, &at, &ticket)
            .unwrap_or_else(|| format!("zendesk:ticket:{}:{at}", ticket.id)),
        kind,
        at,
        ticket: Some(ticket),
        comment: None,
        turn: None,
        records: BTreeMap::new(),
        changed: vec![],
    })
}

/// The key of "ticket `id` as of `updated_at`, in this state":
/// `zendesk:ticket:{id}:{updated_at}:{hash}`, what polling and the webhook
/// events that describe a ticket's state share, so one change seen by both
/// is decided once. The stamp is read as UTC whole seconds, the Tickets
/// API's resolution (event payloads may carry nanoseconds); `None` when it
/// is not a timestamp.
///
/// One second can hold two updates of a ticket, so the stamp alone would
/// answer the second as a duplicate of the first and its change would be
/// lost. The hash ([`state_hash`]) tells them apart: another state in the
/// same second is another event, the same state read twice (a webhook's
/// `GET`, the poller's export) is the same one.
pub fn state_key(id: u64, updated_at: &str, ticket: &Ticket) -> Option<String> {
    let ts: jiff::Timestamp = updated_at.trim().parse().ok()?;
    Some(format!(
        "zendesk:ticket:{id}:{}:{}",
        ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
        state_hash(ticket)
    ))
}

/// 12 hex digits of the SHA-256 of the ticket as the rules read it (the
/// normalised `Ticket`, not the raw JSON, so every API read of one state
/// hashes alike). The stamps are left out: they are in the key already,
/// and their spelling may differ between reads, and so is the ticket form.
/// Tags are a set.
pub fn state_hash(ticket: &Ticket) -> String {
    use sha2::Digest as _;
    let mut t = ticket.clone();
    t.created_at = None;
    t.updated_at = None;
    // Not every source carries the form (an event subscription without
    // `form_id`): left out, so one change read by webhook and by poll still
    // keys alike, and keys stay those of the l3map that had no forms.
    t.ticket_form_id = None;
    t.tags.sort();
    t.tags.dedup();
    // A `Ticket` of strings, numbers and a BTreeMap always serialises.
    let bytes = serde_json::to_vec(&t).unwrap_or_default();
    let digest = sha2::Sha256::digest(&bytes);
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// One delivery to `POST /webhooks/zendesk`, and nothing else: a ticket
/// event subscription (`"type": "zen:event-type:ticket.*"`), or a legacy
/// trigger payload that is exactly `{"ticket": {...}}` with one ticket's
/// `id` and `updated_at`. Normalised events, Salesforce records, ticket
/// lists and sideloads are refused: a webhook speaks for Zendesk about one
/// ticket, so it can neither pass for another source (an agent's turn) nor
/// make one delivery cost a read per ticket of a list.
pub fn from_delivery(v: &Json, statuses: &StatusIndex) -> Result<Event, EventError> {
    let top = as_object(v, "")?;
    if top
        .get("type")
        .and_then(Json::as_str)
        .is_some_and(|t| t.starts_with(EVENT_TYPE_PREFIX))
    {
        return from_webhook(v, statuses);
    }
    if let (Some(t), 1) = (get(top, "ticket"), top.len()) {
        let ticket = api_ticket(
            as_object(t, "ticket")?,
            "ticket",
            statuses,
            &Sideloads::default(),
        )?;
        return Ok(ticket);
    }
    Err(fail(
        "",
        "not a Zendesk webhook delivery: this endpoint accepts a ticket event subscription \
         (\"type\": \"zen:event-type:ticket.*\") or a trigger payload that is exactly \
         {\"ticket\": {\"id\", \"updated_at\", ...}}, one ticket per delivery; normalised \
         events, Salesforce records and ticket lists are not accepted here",
    ))
}

/// Reads a webhook event subscription payload. The event's key says what
/// it is about, so that the several events of one ticket update are
/// neither decided twice nor lost (see docs/EVENTS.md, "Event keys"):
///
/// * `comment_added` carries content of its own: keyed by the comment,
///   `zendesk:comment:{ticket}:{comment id}` (by the delivery's own id,
///   `zendesk:event:{id}`, if the comment has no id). Zendesk keeps both
///   when it retries a delivery.
/// * every other event describes the ticket's state after the update:
///   keyed by that state, `zendesk:ticket:{ticket}:{detail.updated_at}:{hash}`
///   (see [`state_key`]), as polling keys it; without `updated_at`, by
///   the delivery's id. The runtime reads the ticket (the payload has no
///   custom fields) and keys the event by the state it read.
pub fn from_webhook(v: &Json, statuses: &StatusIndex) -> Result<Event, EventError> {
    let top = as_object(v, "")?;
    let ty = req_str(top, "", "type")?;
    let Some(name) = ty
        .strip_prefix(EVENT_TYPE_PREFIX)
        .and_then(|t| t.strip_prefix("ticket."))
    else {
        return Err(fail(
            "type",
            format!(
                "{ty:?} is not a ticket event; l3map reads zen:event-type:ticket.* events only"
            ),
        ));
    };
    let delivery = format!("zendesk:event:{}", req_str(top, "", "id")?);
    let at = rfc3339(&req_str(top, "", "time")?, "time")?;
    let detail = req_object(top, "", "detail")?;
    let change = match get(top, "event") {
        Some(e) => Some(as_object(e, "event")?),
        None => None,
    };
    let ticket = webhook_ticket(detail, name, change, statuses)?;
    let state = || {
        ticket
            .updated_at
            .as_deref()
            .and_then(|u| state_key(ticket.id, u, &ticket))
            .unwrap_or_else(|| delivery.clone())
    };
    let (kind, comment, id) = match name {
        "created" => (EventKind::TicketCreated, None, state()),
        "comment_added" => {
            let c = change.ok_or_else(|| {
                fail(
                    "event",
                    "missing (a comment_added event carries event.comment)",
                )
            })?;
            let c = req_object(c, "event", "comment")?;
            let id = match opt_id(c, "event.comment", "id")? {
                Some(cid) => format!("zendesk:comment:{}:{cid}", ticket.id),
                None => delivery.clone(),
            };
            (EventKind::CommentAdded, Some(comment(c)?), id)
        }
        // Every other ticket event (status, priority, tags, custom field,
        // assignment, ones Zendesk adds later) is a change to the ticket.
        _ => (EventKind::TicketUpdated, None, state()),
    };
    Ok(Event {
        id,
        kind,
        at,
        ticket: Some(ticket),
        comment,
        turn: None,
        records: BTreeMap::new(),
        changed: vec![],
    })
}

/// `detail` is the ticket after the change. Sparse payloads may leave the
/// changed value out of `detail`; then `event.current` supplies it.
fn webhook_ticket(
    detail: &Map<String, Json>,
    name: &str,
    change: Option<&Map<String, Json>>,
    statuses: &StatusIndex,
) -> Result<Ticket, EventError> {
    let mut detail = detail.clone();
    if let Some(current) = change.and_then(|c| get(c, "current")) {
        let key = match name {
            "status_changed" => Some("status"),
            "custom_status_changed" => Some("custom_status"),
            _ => None,
        };
        if let Some(key) = key.filter(|k| get(&detail, k).is_none()) {
            detail.insert(key.to_string(), current.clone());
        }
    }
    let mut ticket = read_ticket(&detail, "detail", statuses, &Sideloads::default())?;
    // `detail` has no custom fields: the one this event changed is known
    // from the event itself (`custom_field.id`; older payloads `field.id`),
    // which lets the runtime tell a ticket read for another update of the
    // same second from this one.
    if name == "custom_field_changed" {
        if let Some((id, current)) = change.and_then(changed_field) {
            match current {
                Some(v) => ticket.custom_fields.insert(id, v),
                None => ticket.custom_fields.remove(&id),
            };
        }
    }
    Ok(ticket)
}

/// The field id and new value (`None`: cleared) a `custom_field_changed`
/// event carries.
fn changed_field(change: &Map<String, Json>) -> Option<(String, Option<Json>)> {
    let field = get(change, "custom_field").or_else(|| get(change, "field"))?;
    let id = match get(field.as_object()?, "id")? {
        Json::String(s) => s.trim().to_string(),
        Json::Number(n) => n.to_string(),
        _ => return None,
    };
    Some((id, get(change, "current").cloned()))
}

fn comment(c: &Map<String, Json>) -> Result<Comment, EventError> {
    const BASE: &str = "event.comment";
    let author = match get(c, "author") {
        None => None,
        Some(a) => {
            let a = as_object(a, &join(BASE, "author"))?;
            let path = join(BASE, "author");
            // Zendesk writes its own automatic comments as user -1.
            let system = matches!(get(a, "id"), Some(Json::Number(n)) if n.as_i64() == Some(-1))
                || matches!(get(a, "id"), Some(Json::String(s)) if s == "-1");
            match (system, opt_bool(a, &path, "is_staff")?) {
                (true, _) => Some("system".to_string()),
                (false, Some(true)) => Some("agent".to_string()),
                (false, Some(false)) => Some("end_user".to_string()),
                (false, None) => None,
            }
        }
    };
    Ok(Comment {
        body: opt_str(c, BASE, "body")?,
        author,
        public: opt_bool(c, BASE, "is_public")?,
    })
}

fn read_ticket(
    m: &Map<String, Json>,
    base: &str,
    statuses: &StatusIndex,
    side: &Sideloads,
) -> Result<Ticket, EventError> {
    let category = lower(opt_str(m, base, "status")?);
    let custom_status_id = match opt_id(m, base, "custom_status_id")? {
        Some(id) => Some(id),
        None => opt_id(m, base, "custom_status")?,
    };
    let requester = match opt_id(m, base, "requester_id")? {
        Some(id) => side.users.get(&id).cloned(),
        None => None,
    };
    let (requester_name, requester_email) = requester.unwrap_or_default();
    let assignee = match opt_id(m, base, "assignee_id")? {
        Some(id) => side.users.get(&id).and_then(|(name, _)| name.clone()),
        None => None,
    };
    let group = match opt_id(m, base, "group_id")? {
        Some(id) => side.groups.get(&id).cloned(),
        None => None,
    };
    Ok(Ticket {
        id: req_id(m, base, "id")?,
        subject: opt_str(m, base, "subject")?,
        description: opt_str(m, base, "description")?,
        status: statuses.resolve(category.as_deref(), custom_status_id),
        custom_status_id,
        priority: lower(opt_str(m, base, "priority")?),
        kind: lower(opt_str(m, base, "type")?),
        tags: str_list(m, base, "tags")?,
        group,
        assignee,
        requester_email,
        requester_name,
        channel: channel(m, base)?,
        created_at: opt_str(m, base, "created_at")?,
        updated_at: opt_str(m, base, "updated_at")?,
        custom_fields: custom_fields(m, base)?,
        // The API's `ticket_form_id`; a webhook's `detail` says `form_id`.
        ticket_form_id: match opt_id(m, base, "ticket_form_id")? {
            Some(id) => Some(id),
            None => opt_id(m, base, "form_id")?,
        },
    })
}

/// Webhooks upper-case the enumerations the API lower-cases; l3map
/// conditions are written against the API's spelling.
fn lower(s: Option<String>) -> Option<String> {
    s.map(|s| s.to_lowercase())
}

fn channel(m: &Map<String, Json>, base: &str) -> Result<Option<String>, EventError> {
    match get(m, "via") {
        None => Ok(None),
        Some(v) => opt_str(
            as_object(v, &join(base, "via"))?,
            &join(base, "via"),
            "channel",
        ),
    }
}

/// `custom_fields` and its older twin `fields` carry the same
/// `[{"id", "value"}]` list; both are read, `custom_fields` winning.
/// A null value is left out: a field that is not there is already no value.
fn custom_fields(m: &Map<String, Json>, base: &str) -> Result<BTreeMap<String, Json>, EventError> {
    let mut out = BTreeMap::new();
    for key in ["custom_fields", "fields"] {
        let path = join(base, key);
        let Some(v) = get(m, key) else { continue };
        let items = v
            .as_array()
            .ok_or_else(|| fail(&path, "expected an array of {\"id\", \"value\"} objects"))?;
        for (i, item) in items.iter().enumerate() {
            let at = index(&path, i);
            let f = as_object(item, &at)?;
            let id = req_id(f, &at, "id")?;
            if let Some(value) = get(f, "value") {
                out.entry(id.to_string()).or_insert_with(|| value.clone());
            }
        }
    }
    Ok(out)
}

fn sideloads(top: &Map<String, Json>) -> Result<Sideloads, EventError> {
    let mut side = Sideloads::default();
    for (i, u) in array(top, "users")?.iter().enumerate() {
        let path = index("users", i);
        let u = as_object(u, &path)?;
        let id = id_value(get(u, "id").unwrap_or(&Json::Null), &join(&path, "id"))?;
        let entry = (opt_str(u, &path, "name")?, opt_str(u, &path, "email")?);
        side.users.insert(id, entry);
    }
    for (i, g) in array(top, "groups")?.iter().enumerate() {
        let path = index("groups", i);
        let g = as_object(g, &path)?;
        let id = id_value(get(g, "id").unwrap_or(&Json::Null), &join(&path, "id"))?;
        if let Some(name) = opt_str(g, &path, "name")? {
            side.groups.insert(id, name);
        }
    }
    Ok(side)
}

fn array<'a>(m: &'a Map<String, Json>, key: &str) -> Result<&'a [Json], EventError> {
    match get(m, key) {
        None => Ok(&[]),
        Some(Json::Array(a)) => Ok(a),
        Some(_) => Err(fail(key, "expected an array")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{check, lower as lower_ir};
    use crate::syntax::SourceMap;

    /// The status index of a desk whose status table is `table`.
    fn index_of(table: &str) -> StatusIndex {
        let mut sources = SourceMap::new();
        sources.add(
            "desk.l3map",
            format!(
                r#"
            connection desk: zendesk {{
              subdomain "acme"
              token     env("ZENDESK_OAUTH_TOKEN")
              scopes    read, tickets:write
            }}
{table}"#
            ),
        );
        let checked = check(&sources, None);
        assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
        StatusIndex::new(&lower_ir(&checked, &sources).expect("compiles"))
    }

    /// A desk whose `in_progress` is a Zendesk custom status (#9001).
    fn statuses() -> StatusIndex {
        index_of(
            r#"
            statuses desk {
              new          new
              open         open
              in_progress  open   #9001
              solved       solved terminal
              new -> open
              open -> in_progress
              in_progress -> solved
            }
            "#,
        )
    }

    fn parse(s: &str) -> Json {
        serde_json::from_str(s).expect("test JSON")
    }

    fn ticket_err(s: &str) -> String {
        from_ticket(&parse(s), &statuses()).unwrap_err().message
    }

    fn webhook(s: &str) -> Event {
        from_webhook(&parse(s), &statuses()).unwrap()
    }

    fn hook_err(s: &str) -> String {
        from_webhook(&parse(s), &statuses()).unwrap_err().message
    }

    #[test]
    fn api_ticket_maps_every_field() {
        let ev = from_ticket(
            &parse(
                r#"{"ticket":{"id":35436,"subject":"Refund","description":"Please",
                "status":"open","custom_status_id":9001,"ticket_form_id":55,"priority":"high","type":"question",
                "tags":["vip"],"group_id":7,"assignee_id":2,"requester_id":1,
                "via":{"channel":"email","source":{}},
                "created_at":"2026-11-11T09:00:00Z","updated_at":"2026-11-11T10:00:00Z",
                "custom_fields":[{"id":360001234,"value":"premium"},{"id":360001235,"value":null}],
                "fields":[{"id":360001234,"value":"ignored"},{"id":360001236,"value":72}]},
                "users":[{"id":1,"name":"Ana","email":"ana@example.com"},{"id":2,"name":"Bo"}],
                "groups":[{"id":7,"name":"Payments"}]}"#,
            ),
            &statuses(),
        )
        .unwrap();
        let ev = &ev[0];
        let t = ev.ticket.as_ref().unwrap();
        assert_eq!(
            ev.id,
            format!(
                "zendesk:ticket:35436:2026-11-11T10:00:00Z:{}",
                state_hash(t)
            )
        );
        assert_eq!(ev.kind, EventKind::TicketUpdated);
        assert_eq!(t.status.as_deref(), Some("in_progress"));
        assert_eq!(t.custom_status_id, Some(9001));
        assert_eq!(t.ticket_form_id, Some(55));
        assert_eq!(t.group.as_deref(), Some("Payments"));
        assert_eq!(t.assignee.as_deref(), Some("Bo"));
        assert_eq!(t.requester_email.as_deref(), Some("ana@example.com"));
        assert_eq!(t.channel.as_deref(), Some("email"));
        assert_eq!(t.custom_fields.len(), 2);
        assert_eq!(t.custom_fields["360001234"], "premium");
        assert_eq!(t.custom_fields["360001236"], 72);
    }

    #[test]
    fn status_falls_back_to_category_then_raw() {
        let s = statuses();
        assert_eq!(s.resolve(Some("open"), Some(1)), Some("open".into()));
        assert_eq!(s.resolve(Some("pending"), None), Some("pending".into()));
        assert_eq!(s.resolve(None, Some(9001)), Some("in_progress".into()));
        assert_eq!(s.resolve(None, None), None);
        assert_eq!(
            StatusIndex::default().resolve(Some("hold"), Some(9001)),
            Some("hold".into())
        );
    }

    /// A category's one status without an id is the category's default
    /// status, whatever its name.
    #[test]
    fn the_one_status_without_an_id_is_its_categorys_default() {
        let s = index_of(
            r#"
            statuses desk {
              new       new
              working   open
              escalated open   #9002
              waiting   pending
              done      solved terminal
              new -> working
              working -> escalated, waiting, done
              escalated, waiting -> working
            }
            "#,
        );
        assert_eq!(s.resolve(Some("open"), None), Some("working".into()));
        // An id the table does not declare is not the default status.
        assert_eq!(s.resolve(Some("open"), Some(1)), Some("open".into()));
        assert_eq!(
            s.resolve(Some("open"), Some(9002)),
            Some("escalated".into())
        );
        assert_eq!(s.resolve(Some("pending"), None), Some("waiting".into()));
        assert_eq!(s.resolve(Some("hold"), None), Some("hold".into()));
    }

    #[test]
    fn created_when_the_stamps_agree_and_lists_give_one_event_each() {
        let evs = from_ticket(
            &parse(
                r#"{"tickets":[{"id":1,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"},
                              {"id":"2","updated_at":"2026-01-02T00:00:00Z"}]}"#,
            ),
            &statuses(),
        )
        .unwrap();
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].kind, EventKind::TicketCreated);
        assert_eq!(evs[1].kind, EventKind::TicketUpdated);
        assert_eq!(evs[1].ticket.as_ref().unwrap().id, 2);
    }

    #[test]
    fn webhook_kinds_and_upper_case_values() {
        let hook = |ty: &str, event: &str| {
            webhook(&format!(
                r#"{{"type":"zen:event-type:ticket.{ty}","id":"e-1","time":"2026-11-11T10:00:00.123456789Z",
                    "subject":"zen:ticket:5","detail":{{"id":"5","status":"PENDING","priority":"HIGH","type":"QUESTION"}},
                    "event":{event}}}"#
            ))
        };
        let ev = hook("created", "{}");
        assert_eq!(ev.kind, EventKind::TicketCreated);
        // No `detail.updated_at`: keyed by the delivery.
        assert_eq!(ev.id, "zendesk:event:e-1");
        let t = ev.ticket.unwrap();
        assert_eq!((t.id, t.status.as_deref()), (5, Some("pending")));
        assert_eq!(t.priority.as_deref(), Some("high"));
        assert_eq!(t.kind.as_deref(), Some("question"));
        assert_eq!(
            hook("priority_changed", "{}").kind,
            EventKind::TicketUpdated
        );
        assert_eq!(
            hook("some_future_event", "null").kind,
            EventKind::TicketUpdated
        );
        let c = hook(
            "comment_added",
            r#"{"comment":{"id":1,"body":"hi","is_public":false,"author":{"id":"9","is_staff":true}}}"#,
        );
        assert_eq!(c.kind, EventKind::CommentAdded);
        assert_eq!(
            c.comment,
            Some(Comment {
                body: Some("hi".into()),
                author: Some("agent".into()),
                public: Some(false)
            })
        );
        let c = hook(
            "comment_added",
            r#"{"comment":{"body":"x","author":{"id":-1,"is_staff":false}}}"#,
        );
        assert_eq!(c.comment.unwrap().author.as_deref(), Some("system"));
        let c = hook(
            "comment_added",
            r#"{"comment":{"body":"x","author":{"is_staff":false}}}"#,
        );
        assert_eq!(c.comment.unwrap().author.as_deref(), Some("end_user"));
    }

    /// The events of one update: those about the ticket's state share the
    /// state's key (as polling keys it), a comment has its own.
    #[test]
    fn webhook_keys_say_what_the_event_is_about() {
        let hook = |ty: &str, event: &str| {
            webhook(&format!(
                r#"{{"type":"zen:event-type:ticket.{ty}","id":"{ty}-delivery","time":"2026-11-11T10:00:01Z",
                    "detail":{{"id":"5","status":"OPEN","updated_at":"2026-11-11T10:00:00.250Z"}},"event":{event}}}"#
            ))
            .id
        };
        let state = hook("status_changed", "{}");
        assert!(
            state.starts_with("zendesk:ticket:5:2026-11-11T10:00:00Z:"),
            "{state}"
        );
        assert_eq!(hook("created", "{}"), state);
        // A custom field change says the field's new value: another state.
        let field = hook(
            "custom_field_changed",
            r#"{"custom_field":{"id":360001238},"current":"fraud_claim"}"#,
        );
        assert_ne!(field, state);
        assert_eq!(
            hook(
                "custom_field_changed",
                r#"{"field":{"id":"360001238"},"current":"fraud_claim"}"#
            ),
            field
        );
        assert_eq!(
            hook("comment_added", r#"{"comment":{"id":"3915","body":"hi"}}"#),
            "zendesk:comment:5:3915"
        );
        assert_eq!(
            hook("comment_added", r#"{"comment":{"body":"hi"}}"#),
            "zendesk:event:comment_added-delivery"
        );
        let t = Ticket {
            id: 5,
            ..Ticket::default()
        };
        let key = state_key(5, "2026-11-11T12:00:00+02:00", &t).unwrap();
        assert_eq!(
            key,
            format!("zendesk:ticket:5:2026-11-11T10:00:00Z:{}", state_hash(&t))
        );
        assert_eq!(state_key(5, "yesterday", &t), None);
    }

    /// Two updates in one second are two states, so two keys; one state
    /// read twice (tags in another order, stamps spelled otherwise) is one.
    #[test]
    fn the_state_key_tells_updates_of_one_second_apart() {
        let key = |body: &str| {
            from_ticket(&parse(body), &statuses()).unwrap()[0]
                .id
                .clone()
        };
        let first =
            key(r#"{"ticket":{"id":9,"updated_at":"2026-11-11T10:00:00Z","tags":["a","first"]}}"#);
        let again = key(
            r#"{"ticket":{"id":9,"updated_at":"2026-11-11T10:00:00.000Z","tags":["first","a"]}}"#,
        );
        let second = key(
            r#"{"ticket":{"id":9,"updated_at":"2026-11-11T10:00:00Z","tags":["a","first"],
                "custom_fields":[{"id":360001238,"value":"fraud_claim"}]}}"#,
        );
        assert_eq!(first, again);
        assert_ne!(first, second);
        assert!(second.starts_with("zendesk:ticket:9:2026-11-11T10:00:00Z:"));
    }

    /// The webhook endpoint's reader takes Zendesk's deliveries only.
    #[test]
    fn a_delivery_is_a_ticket_event_or_one_trigger_ticket() {
        let read = |s: &str| from_delivery(&parse(s), &statuses());
        let ev = read(r#"{"ticket":{"id":"7","updated_at":"2026-11-11T10:00:00Z"}}"#).unwrap();
        assert!(
            ev.id.starts_with("zendesk:ticket:7:2026-11-11T10:00:00Z:"),
            "{}",
            ev.id
        );
        assert!(read(
            r#"{"type":"zen:event-type:ticket.created","id":"e","time":"2026-11-11T10:00:00Z","detail":{"id":"5"}}"#
        )
        .is_ok());
        for other in [
            r#"{"id":"agent:e2e:t-1","kind":"agent_turn","at":"2026-11-11T10:00:00Z","ticket":{"id":1}}"#,
            r#"{"tickets":[{"id":1,"updated_at":"2026-11-11T10:00:00Z"}]}"#,
            r#"{"ticket":{"id":1,"updated_at":"2026-11-11T10:00:00Z"},"users":[]}"#,
            r#"{"id":1,"status":"open","updated_at":"2026-11-11T10:00:00Z"}"#,
            r#"{"attributes":{"type":"Case"},"Id":"500000000000001AAA"}"#,
            r#"{"totalSize":0,"done":true,"records":[]}"#,
            r#"{"ChangeEventHeader":{}}"#,
        ] {
            let e = read(other).unwrap_err().message;
            assert!(
                e.starts_with("not a Zendesk webhook delivery"),
                "{other}: {e}"
            );
        }
    }

    #[test]
    fn sparse_webhook_detail_takes_the_current_value() {
        let ev = webhook(
            r#"{"type":"zen:event-type:ticket.custom_status_changed","id":"e","time":"2026-11-11T10:00:00Z",
                "detail":{"id":"5"},"event":{"current":"9001","previous":"1"}}"#,
        );
        let t = ev.ticket.unwrap();
        assert_eq!(
            (t.status.as_deref(), t.custom_status_id),
            (Some("in_progress"), Some(9001))
        );
        let ev = webhook(
            r#"{"type":"zen:event-type:ticket.status_changed","id":"e","time":"2026-11-11T10:00:00Z",
                "detail":{"id":"5"},"event":{"current":"SOLVED","previous":"OPEN"}}"#,
        );
        assert_eq!(ev.ticket.unwrap().status.as_deref(), Some("solved"));
    }

    #[test]
    fn bad_tickets_name_the_path() {
        let cases = [
            (
                r#"{"ticket":{"updated_at":"2026-01-01T00:00:00Z"}}"#,
                "ticket.id: missing",
            ),
            (
                r#"{"ticket":{"id":"forty-two","updated_at":"2026-01-01T00:00:00Z"}}"#,
                "ticket.id: expected a number",
            ),
            (
                r#"{"ticket":{"id":-3,"updated_at":"2026-01-01T00:00:00Z"}}"#,
                "ticket.id: expected a number",
            ),
            (
                r#"{"ticket":{"id":1.5,"updated_at":"2026-01-01T00:00:00Z"}}"#,
                "ticket.id: expected a number",
            ),
            (
                r#"{"ticket":{"id":1e300,"updated_at":"2026-01-01T00:00:00Z"}}"#,
                "ticket.id: expected a number",
            ),
            (
                r#"{"ticket":{"id":"99999999999999999999999","updated_at":"2026-01-01T00:00:00Z"}}"#,
                "too large",
            ),
            (r#"{"ticket":{"id":1}}"#, "ticket.updated_at: missing"),
            (
                r#"{"ticket":{"id":1,"updated_at":"yesterday"}}"#,
                "ticket.updated_at: \"yesterday\" is not a timestamp",
            ),
            (
                r#"{"ticket":{"id":1,"updated_at":"2026-13-01T00:00:00Z"}}"#,
                "ticket.updated_at:",
            ),
            (
                r#"{"ticket":{"id":1,"updated_at":"2026-01-01T00:00:00Z","tags":"vip"}}"#,
                "ticket.tags: expected an array",
            ),
            (
                r#"{"ticket":{"id":1,"updated_at":"2026-01-01T00:00:00Z","tags":["a",3]}}"#,
                "ticket.tags[1]: expected a string",
            ),
            (
                r#"{"ticket":{"id":1,"updated_at":"2026-01-01T00:00:00Z","status":7}}"#,
                "ticket.status: expected a string",
            ),
            (
                r#"{"ticket":{"id":1,"updated_at":"2026-01-01T00:00:00Z","via":"web"}}"#,
                "ticket.via: expected an object",
            ),
            (
                r#"{"ticket":{"id":1,"updated_at":"2026-01-01T00:00:00Z","custom_fields":{}}}"#,
                "ticket.custom_fields: expected an array",
            ),
            (
                r#"{"ticket":{"id":1,"updated_at":"2026-01-01T00:00:00Z","custom_fields":[{"value":1}]}}"#,
                "ticket.custom_fields[0].id: missing",
            ),
            (
                r#"{"ticket":{"id":1,"updated_at":"2026-01-01T00:00:00Z","custom_status_id":"x"}}"#,
                "ticket.custom_status_id: expected a number",
            ),
            (
                r#"{"ticket":[]}"#,
                "ticket: expected an object, found an array",
            ),
            (
                r#"{"tickets":[{"id":1,"updated_at":"2026-01-01T00:00:00Z"},{"id":true}]}"#,
                "tickets[1].id: expected a number",
            ),
            (r#"{"tickets":5}"#, "tickets: expected an array"),
            (
                r#"{"ticket":{"id":1,"updated_at":"2026-01-01T00:00:00Z"},"users":[{"name":"x"}]}"#,
                "users[0].id: expected a number",
            ),
            (
                r#"{"ticket":{"id":1,"updated_at":"2026-01-01T00:00:00Z"},"groups":{}}"#,
                "groups: expected an array",
            ),
        ];
        for (input, want) in cases {
            let got = ticket_err(input);
            assert!(
                got.starts_with(want) || got.contains(want),
                "{input}\n  got:  {got}\n  want: {want}"
            );
        }
    }

    #[test]
    fn bad_webhooks_name_the_path() {
        const OK: &str = r#""id":"e","time":"2026-11-11T10:00:00Z""#;
        let cases = [
            (format!(r#"{{"type":"zen:event-type:user.created",{OK},"detail":{{}}}}"#), "type: \"zen:event-type:user.created\" is not a ticket event"),
            (format!(r#"{{"type":"zen:event-type:ticket.created",{OK}}}"#), "detail: missing"),
            (format!(r#"{{"type":"zen:event-type:ticket.created",{OK},"detail":{{}}}}"#), "detail.id: missing"),
            (format!(r#"{{"type":"zen:event-type:ticket.created",{OK},"detail":{{"id":[1]}}}}"#), "detail.id: expected a number"),
            (format!(r#"{{"type":"zen:event-type:ticket.created",{OK},"detail":"5"}}"#), "detail: expected an object"),
            (r#"{"type":"zen:event-type:ticket.created","time":"2026-11-11T10:00:00Z","detail":{"id":"5"}}"#.into(), "id: missing"),
            (r#"{"type":"zen:event-type:ticket.created","id":" ","time":"2026-11-11T10:00:00Z","detail":{"id":"5"}}"#.into(), "id: must not be empty"),
            (r#"{"type":"zen:event-type:ticket.created","id":"e","detail":{"id":"5"}}"#.into(), "time: missing"),
            (r#"{"type":"zen:event-type:ticket.created","id":"e","time":12,"detail":{"id":"5"}}"#.into(), "time: expected a string"),
            (format!(r#"{{"type":"zen:event-type:ticket.comment_added",{OK},"detail":{{"id":"5"}}}}"#), "event: missing"),
            (format!(r#"{{"type":"zen:event-type:ticket.comment_added",{OK},"detail":{{"id":"5"}},"event":{{}}}}"#), "event.comment: missing"),
            (format!(r#"{{"type":"zen:event-type:ticket.comment_added",{OK},"detail":{{"id":"5"}},"event":{{"comment":{{"body":1}}}}}}"#), "event.comment.body: expected a string"),
            (format!(r#"{{"type":"zen:event-type:ticket.comment_added",{OK},"detail":{{"id":"5"}},"event":{{"comment":{{"author":{{"is_staff":"yes"}}}}}}}}"#), "event.comment.author.is_staff: expected a boolean"),
            (format!(r#"{{"type":"zen:event-type:ticket.created",{OK},"detail":{{"id":"5"}},"event":[]}}"#), "event: expected an object"),
        ];
        for (input, want) in cases {
            let got = hook_err(&input);
            assert!(
                got.starts_with(want),
                "{input}\n  got:  {got}\n  want: {want}"
            );
        }
    }
}
