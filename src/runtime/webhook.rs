//! Zendesk webhooks: `POST /webhooks/zendesk`. Only a delivery signed with
//! the shared secret, stamped within the tolerance of now, is read; each is
//! recorded durably before the 200 that tells Zendesk not to redeliver.
//!
//! Zendesk signs `timestamp + body` with HMAC-SHA256 and sends the base64
//! result in `X-Zendesk-Webhook-Signature`, the timestamp (RFC 3339) in
//! `X-Zendesk-Webhook-Signature-Timestamp`.
//!
//! A delivery is one Zendesk ticket event (or a legacy trigger payload
//! `{"ticket": {...}}`), never another source's shape: see
//! `eval::convert::zendesk::from_delivery`. Its key says what it is about
//! (docs/EVENTS.md, "Event keys"): a comment by the comment, every other
//! event by the ticket's state after the update, as polling keys it.

use super::app::{body_error, error, App};
use super::links::resolve::Resolver;
use super::links::ticket_event::{answer_suffices, attach, has_links, ticket_only, Unresolved};
use super::links::ticket_read::ticket_answer;
use super::store::Accepted;
use crate::connectors::error::ApiError;
use crate::connectors::Secret;
use crate::eval::convert::from_zendesk_webhook;
use crate::eval::event::{Event, EventKind, Ticket};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const SIGNATURE: &str = "x-zendesk-webhook-signature";
pub const TIMESTAMP: &str = "x-zendesk-webhook-signature-timestamp";

/// Why a delivery was refused (the 401's reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Unsigned,
    BadSignature,
    /// Stamped too long ago (a replay) or too far ahead.
    Stale,
}

impl Refused {
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Unsigned => "unsigned",
            Refused::BadSignature => "bad_signature",
            Refused::Stale => "replayed",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refused::Unsigned => "the delivery has no X-Zendesk-Webhook-Signature and -Timestamp headers",
            Refused::BadSignature => "the signature does not match this webhook's signing secret",
            Refused::Stale => "the signature timestamp is outside the allowed window (a replayed or delayed delivery)",
        }
    }
}

/// Checks a delivery. The comparison is constant-time (hmac's
/// `verify_slice`), so the answer's timing says nothing about the secret.
pub fn verify(
    secret: &Secret,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: jiff::Timestamp,
    tolerance: Duration,
) -> Result<(), Refused> {
    let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
        return Err(Refused::Unsigned);
    };
    let given = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| Refused::BadSignature)?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes())
        .map_err(|_| Refused::BadSignature)?;
    mac.update(timestamp.as_bytes());
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| Refused::BadSignature)?;
    // Checked after the signature, so the timestamp is known to be the one
    // Zendesk signed.
    let stamped: jiff::Timestamp = timestamp.trim().parse().map_err(|_| Refused::Stale)?;
    let skew = now.duration_since(stamped).unsigned_abs();
    if skew > tolerance {
        return Err(Refused::Stale);
    }
    Ok(())
}

pub async fn zendesk_webhook(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let metrics = &app.engine.metrics;
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            metrics.event_rejected("webhook", "malformed");
            return body_error(e);
        }
    };
    let Some(secret) = &app.webhook_secret else {
        return error(
            StatusCode::NOT_FOUND,
            "not_configured",
            "webhooks are off: add [webhook] secret_env to l3map.toml, or webhook_secret to the Zendesk connection",
        );
    };
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = jiff::Timestamp::now();
    if let Err(refused) = verify(
        secret,
        h(SIGNATURE),
        h(TIMESTAMP),
        &body,
        now,
        app.tolerance,
    ) {
        metrics.event_rejected("webhook", refused.reason());
        tracing::warn!(reason = refused.reason(), "webhook refused");
        return error(
            StatusCode::UNAUTHORIZED,
            refused.reason(),
            refused.message(),
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        metrics.event_rejected("webhook", "malformed");
        return error(
            StatusCode::BAD_REQUEST,
            "malformed",
            "the body is not UTF-8",
        );
    };
    let parsed = from_zendesk_webhook(text, &app.engine.live().convert);
    let mut ev = match parsed {
        Ok(ev) => ev,
        Err(e) => {
            metrics.event_rejected("webhook", "malformed");
            return error(StatusCode::BAD_REQUEST, "malformed", e.to_string());
        }
    };
    // Already decided (a redelivery, or another event of an update whose
    // state is recorded): no read, nothing decided again.
    if is_final(&ev) && recorded(&app, &ev.id).await
        || ev.kind != EventKind::CommentAdded && state_recorded(&app, &ev).await
    {
        metrics.event_duplicate("webhook");
        return duplicate(&ev.id);
    }
    match read_ticket(&app, &mut ev).await {
        Ok(Read::Found) => {}
        Ok(Read::Gone(id)) => return gone(&app, id),
        Err(resp) => return *resp,
    }
    let key = ev.id.clone();
    let queued = match app.engine.ingest("webhook", ev, None).await {
        Ok(i) => match i.accepted {
            // A redelivery, or a change already seen by polling or by
            // another event of the same update: recorded once, nothing
            // decided again (counted in l3map_events_duplicate_total).
            Accepted::Duplicate => return duplicate(&key),
            Accepted::New { queued, .. } => queued,
        },
        // Not recorded: a 5xx makes Zendesk deliver it again.
        Err(e) => {
            tracing::error!(error = %e, "cannot record a webhook event");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the event could not be recorded; deliver it again",
            );
        }
    };
    Json(json!({"accepted": 1, "duplicates": 0, "actions": queued})).into_response()
}

/// The answer to an event already recorded: a redelivery, or a change
/// already seen by polling or by another event of the same update.
fn duplicate(key: &str) -> Response {
    tracing::debug!(key, "webhook delivery held events already recorded");
    Json(json!({"accepted": 0, "duplicates": 1, "actions": 0})).into_response()
}

/// The answer to an event about a ticket the API no longer shows (deleted
/// or merged away): nothing to decide on, and nothing Zendesk could fix by
/// delivering it again, so a 200 that says why. A 5xx would be retried
/// for hours and count toward Zendesk's webhook circuit breaker.
fn gone(app: &App, id: u64) -> Response {
    app.engine
        .metrics
        .event_rejected("webhook", "ticket_not_found");
    tracing::info!(
        ticket = id,
        "webhook for a ticket the API does not show (deleted or merged): skipped"
    );
    Json(json!({"accepted": 0, "duplicates": 0, "actions": 0, "skipped": "ticket_not_found"}))
        .into_response()
}

/// Whether the event's key is the one it will be recorded under before
/// the ticket is read: a comment's only. An event about the ticket's state
/// is keyed by the state read (its hash included), which the payload
/// cannot give: a redelivery is found a duplicate after the (cached) read.
fn is_final(ev: &Event) -> bool {
    ev.kind == EventKind::CommentAdded
}

/// How many states of one ticket within one second are compared before a
/// read: more than two updates in a second are rare, and past this many the
/// event is read and keyed as usual (the store still dedupes it).
const SAME_SECOND_STATES: u32 = 8;

/// Whether a state of this ticket recorded for the same update second
/// already shows what this event says the update left (`agrees`): the
/// event is then a redelivery, or another event of an update already
/// decided, and needs no read. A state that contradicts it (another update
/// of the same second) does not count. An error says no.
async fn state_recorded(app: &App, ev: &Event) -> bool {
    let (Some(announced), Some((prefix, _))) = (ev.ticket.clone(), ev.id.rsplit_once(':')) else {
        return false;
    };
    if !ev.id.starts_with("zendesk:ticket:") {
        return false;
    }
    let (store, prefix) = (app.engine.store.clone(), format!("{prefix}:"));
    let Ok(Ok(found)) =
        tokio::task::spawn_blocking(move || store.events_by_prefix(&prefix, SAME_SECOND_STATES))
            .await
    else {
        return false;
    };
    found.iter().any(|json| {
        serde_json::from_str::<Event>(json)
            .ok()
            .and_then(|e| e.ticket)
            .is_some_and(|t| agrees(&announced, &t))
    })
}

/// What reading the announced ticket found.
enum Read {
    /// The event now carries the ticket as the API shows it.
    Found,
    /// The API answered 404 for this ticket id.
    Gone(u64),
}

/// Whether an event with this key is in the store. An error says no: the
/// event is then read and recorded as usual, where a store error is a 503.
async fn recorded(app: &App, key: &str) -> bool {
    let (store, key) = (app.engine.store.clone(), key.to_string());
    matches!(
        tokio::task::spawn_blocking(move || store.event(&key)).await,
        Ok(Ok(Some(_)))
    )
}

/// Event subscriptions carry the ticket's standard attributes but not its
/// custom fields, which most rules read: the event is decided on the
/// ticket as the API shows it. That read is shared by every event of one
/// update and skipped for l3map's own updates (`runtime::tickets`); a
/// failed read is a 503, so Zendesk delivers again rather than the rules
/// deciding on half a ticket.
///
/// An event about the ticket's state takes the key of the state it is
/// decided on (`zendesk:ticket:ID:UPDATED_AT:HASH`, as the poller keys
/// it), so the same change seen by both, or announced by several events
/// of one update, is decided once. A comment keeps its own key: it is news
/// of its own, whichever event of its update came first.
///
/// Zendesk's `updated_at` has one-second resolution: two updates of one
/// ticket within a second share the cache's entry, so a kept ticket that
/// contradicts the event (`agrees`) is read once more; their states differ,
/// so do their keys.
/// How long a webhook waits for its ticket's linked records: with the
/// ticket's read and [`super::tickets::WRITING_WAIT`], under the 10 s
/// Zendesk waits for a webhook's answer before counting it failed.
const LINKS_WAIT: std::time::Duration = std::time::Duration::from_secs(4);

async fn read_ticket(app: &App, ev: &mut Event) -> Result<Read, Box<Response>> {
    let (Some((connection, zd)), Some(announced)) = (&app.zendesk, ev.ticket.as_ref()) else {
        return Ok(Read::Found);
    };
    let id = announced.id;
    let unavailable = |what: String| {
        Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("reading ticket {id} failed ({what}); deliver it again"),
        ))
    };
    let parties = Resolver::needs_parties(&app.engine.live().program, connection);
    let update = announced.updated_at.clone();
    let mut tries = 0;
    let (state, mut shown) = loop {
        tries += 1;
        let got = app
            .engine
            .tickets
            .get_or_read(id, update.as_deref(), ticket_answer(zd, id, parties))
            .await;
        let (shown, read) = match got {
            Ok(found) => found,
            Err(ApiError::NotFound { .. }) => return Ok(Read::Gone(id)),
            Err(e) => {
                // Counted by the connector's observer; logged here with
                // the ticket it was for.
                let kind = super::apply::error_kind(&e);
                tracing::warn!(%connection, ticket = id, error = %e, "cannot read the ticket a webhook announced");
                return Err(unavailable(kind.to_string()));
            }
        };
        let live = app.engine.live();
        // The state (and so the key) from the ticket alone: sideloads
        // or not, one update keys alike.
        let state_of = |shown: &serde_json::Value| match crate::eval::convert::zendesk::from_ticket(
            &ticket_only(shown),
            &live.convert.statuses,
        ) {
            Ok(mut fresh) if fresh.len() == 1 => Ok(fresh.swap_remove(0)),
            _ => Err(unavailable("the API's answer could not be read".into())),
        };
        let agrees_with =
            |state: &Event| state.ticket.as_ref().is_some_and(|t| agrees(announced, t));
        let state = state_of(&shown)?;
        let Some(u) = update
            .as_deref()
            .filter(|_| !read && !agrees_with(&state) && tries == 1)
        else {
            break (state, shown);
        };
        // A kept ticket that contradicts the event's own view of the same
        // update is another update of the same second (l3map's answer to a
        // person's update, written within the second): the state it
        // replaced may be this event's; else the ticket is read anew.
        if let Some(earlier) = app.engine.tickets.earlier(id, u).await {
            let state = state_of(&earlier)?;
            if agrees_with(&state) {
                break (state, earlier);
            }
        }
        app.engine.tickets.forget(id, u).await;
    };
    let live = app.engine.live();
    if has_links(&live.program, connection) && !answer_suffices(&live.program, connection, &shown) {
        // Kept from l3map's own `PUT`, which carries no sideloads: the
        // organization and requester the links compare are read once,
        // and kept for the other events of this update.
        match ticket_answer(zd, id, true).await {
            Ok(a) => {
                app.engine.tickets.remember(a.clone()).await;
                shown = Arc::new(a);
            }
            Err(ApiError::NotFound { .. }) => return Ok(Read::Gone(id)),
            Err(e) => {
                tracing::warn!(%connection, ticket = id, error = %e, "cannot read the organization and requester of a ticket a webhook announced");
                return Err(unavailable(super::apply::error_kind(&e).to_string()));
            }
        }
    }
    if ev.kind != EventKind::CommentAdded {
        ev.id = state.id;
    }
    ev.ticket = state.ticket;
    let sf = app.salesforce.as_ref().map(|(n, c)| (n.as_str(), c));
    // Bounded: the connector retries an unreachable Salesforce for up to
    // 30 s, and Zendesk gives up on a webhook after 10 s and counts it
    // failed; a 503 in time makes it deliver the event again.
    let attached = tokio::time::timeout(
        LINKS_WAIT,
        attach(&app.resolver, &live.program, connection, &shown, sf, ev),
    )
    .await
    .unwrap_or_else(|_| {
        Err(Unresolved(format!(
            "Salesforce did not answer the lookups of ticket {id}'s links within {} s",
            LINKS_WAIT.as_secs()
        )))
    });
    if let Err(Unresolved(why)) = attached {
        // Not decided without its records: a 503, so Zendesk delivers
        // it again, as in an outage.
        app.engine
            .metrics
            .event_rejected("webhook", "links_unavailable");
        tracing::warn!(%connection, ticket = id, error = %why, "a webhook event waits for its linked records");
        return Err(Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "links_unavailable",
            format!("{why}; deliver it again"),
        )));
    }
    Ok(Read::Found)
}

/// Whether the ticket the API showed has what the event says the update
/// left: the standard attributes an event carries (status, priority,
/// type, tags), where it carries them, and the custom field value a
/// `custom_field_changed` event carries (the only custom field in an
/// event's ticket; compared as text, as an event may quote a number).
fn agrees(event: &Ticket, shown: &Ticket) -> bool {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let fields = event
        .custom_fields
        .iter()
        .all(|(id, v)| shown.custom_fields.get(id).map(text) == Some(text(v)));
    let same = |a: &Option<String>, b: &Option<String>| a.is_none() || a == b;
    let mut tags = (event.tags.clone(), shown.tags.clone());
    tags.0.sort();
    tags.1.sort();
    same(&event.status, &shown.status)
        && same(&event.priority, &shown.priority)
        && same(&event.kind, &shown.kind)
        && (event.tags.is_empty() || tags.0 == tags.1)
        && fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::zendesk::webhook_signature;

    const BODY: &[u8] = br#"{"type":"zen:event-type:ticket.created"}"#;

    fn now() -> jiff::Timestamp {
        "2026-11-25T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_delivery_signed_by_the_emulator_verifies() {
        let secret = Secret::new("whsec-1");
        let ts = "2026-11-25T09:59:30Z";
        let sig = webhook_signature(&secret, ts, BODY);
        let tol = Duration::from_secs(300);
        assert_eq!(
            verify(&secret, Some(&sig), Some(ts), BODY, now(), tol),
            Ok(())
        );
        // Another secret, another body, or another timestamp: refused.
        let other = Secret::new("whsec-2");
        assert_eq!(
            verify(&other, Some(&sig), Some(ts), BODY, now(), tol),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(&secret, Some(&sig), Some(ts), b"{}", now(), tol),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(
                &secret,
                Some(&sig),
                Some("2026-11-25T09:59:31Z"),
                BODY,
                now(),
                tol
            ),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(&secret, Some("not base64!"), Some(ts), BODY, now(), tol),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(&secret, None, Some(ts), BODY, now(), tol),
            Err(Refused::Unsigned)
        );
    }

    /// A kept read of the same second that lacks the custom field value a
    /// `custom_field_changed` event carries is another update's state.
    #[test]
    fn a_changed_custom_field_must_be_shown() {
        let mut event = Ticket {
            id: 5,
            tags: vec!["first".into()],
            ..Ticket::default()
        };
        event
            .custom_fields
            .insert("360001238".into(), json!("fraud_claim"));
        let mut shown = Ticket {
            id: 5,
            tags: vec!["first".into()],
            ..Ticket::default()
        };
        assert!(!agrees(&event, &shown));
        shown
            .custom_fields
            .insert("360001238".into(), json!("fraud_claim"));
        assert!(agrees(&event, &shown));
        // A number quoted as text is the same value.
        event.custom_fields.insert("360001240".into(), json!("42"));
        shown.custom_fields.insert("360001240".into(), json!(42));
        assert!(agrees(&event, &shown));
    }

    #[test]
    fn an_old_or_future_timestamp_is_a_replay() {
        let secret = Secret::new("whsec-1");
        let tol = Duration::from_secs(300);
        for ts in ["2026-11-25T09:50:00Z", "2026-11-25T10:06:00Z", "yesterday"] {
            let sig = webhook_signature(&secret, ts, BODY);
            assert_eq!(
                verify(&secret, Some(&sig), Some(ts), BODY, now(), tol),
                Err(Refused::Stale),
                "{ts}"
            );
        }
    }
}
