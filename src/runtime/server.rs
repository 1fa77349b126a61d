//! The runtime's HTTP face: Zendesk's webhooks, health and metrics. Every
//! refusal is a 4xx with a JSON body saying what was wrong.

use super::engine::Engine;
use super::intake::{webhook_gate, Gate, Intake};
use super::listen::HttpLimits;
use super::metrics::CONTENT_TYPE;
use super::store::{now_ms, Accepted};
use super::webhook::{verify, SIGNATURE, TIMESTAMP};
use crate::connectors::salesforce::SalesforceClient;
use crate::connectors::zendesk::ZendeskClient;
use crate::connectors::Secret;
use crate::eval::convert::from_source_json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Zendesk caps webhook payloads well below this; anything larger is not
/// a webhook.
pub const MAX_BODY: usize = 1024 * 1024;

pub struct App {
    pub engine: Arc<Engine>,
    pub webhook_secret: Option<Secret>,
    pub tolerance: Duration,
    /// Agent name and bearer token, for the agent API.
    pub agents: Vec<(String, Secret)>,
    /// The first Zendesk and Salesforce connections' clients: webhooks
    /// read the ticket they announce, the agent API reads context.
    pub zendesk: Option<(String, ZendeskClient)>,
    pub salesforce: Option<(String, SalesforceClient)>,
}

/// The routes with the default [`HttpLimits`] on body reads.
pub fn router(app: Arc<App>) -> Router {
    router_with(app, &HttpLimits::default())
}

/// The routes. Endpoints that take a body read it through a gate that
/// checks the request's credentials first ([`super::intake`]).
pub fn router_with(app: Arc<App>, limits: &HttpLimits) -> Router {
    let gate = Gate {
        app: app.clone(),
        intake: Arc::new(Intake::new(limits)),
    };
    Router::new()
        .route(
            "/webhooks/zendesk",
            post(zendesk_webhook).route_layer(from_fn_with_state(gate.clone(), webhook_gate)),
        )
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .merge(super::agent_api::routes(gate))
        .fallback(not_found)
        // A second net: a body the gates did not read is never buffered
        // past the limit either.
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": code, "message": message.into()})),
    )
        .into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see docs/RUNTIME.md",
    )
}

/// A body that could not be read: too large, or cut off.
pub fn body_error(e: BytesRejection) -> Response {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return error(
            status,
            "too_large",
            format!("the body is larger than {MAX_BODY} bytes"),
        );
    }
    error(status, "unreadable_body", e.body_text())
}

async fn zendesk_webhook(
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
            "webhooks are off: set [webhook] secret_env in l3map.toml",
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
    let live = app.engine.live();
    let events = match from_source_json(text, &live.convert) {
        Ok(evs) => evs,
        Err(e) => {
            metrics.event_rejected("webhook", "malformed");
            return error(StatusCode::BAD_REQUEST, "malformed", e.to_string());
        }
    };
    drop(live);
    let (mut accepted, mut duplicates, mut actions) = (0, 0, 0);
    for mut ev in events {
        if let Err(resp) = read_ticket(&app, &mut ev).await {
            return *resp;
        }
        match app.engine.ingest("webhook", ev, None).await {
            Ok(i) => match i.accepted {
                Accepted::Duplicate => duplicates += 1,
                Accepted::New { queued, .. } => {
                    accepted += 1;
                    actions += queued;
                }
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
        }
    }
    if duplicates > 0 {
        // A redelivery, or a change already seen by polling: recorded once,
        // nothing decided again (counted in l3map_events_duplicate_total).
        tracing::debug!(
            duplicates,
            accepted,
            "webhook delivery held events already recorded"
        );
    }
    Json(json!({"accepted": accepted, "duplicates": duplicates, "actions": actions}))
        .into_response()
}

/// Event subscriptions carry the ticket's standard attributes but not its
/// custom fields, which most rules read: the ticket is read once from the
/// API and the event decided on the ticket as it is now. A failed read is
/// a 503, so Zendesk delivers again rather than the rules deciding on half
/// a ticket.
///
/// Zendesk's `updated_at` has one-second resolution: two updates of one
/// ticket within a second share a key, and the second is decided on the
/// state the first read (usually already showing both).
async fn read_ticket(app: &App, ev: &mut crate::eval::event::Event) -> Result<(), Box<Response>> {
    let (Some((connection, zd)), Some(id)) = (&app.zendesk, ev.ticket.as_ref().map(|t| t.id))
    else {
        return Ok(());
    };
    let unavailable = |what: String| {
        Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("reading ticket {id} failed ({what}); deliver it again"),
        ))
    };
    let raw = match zd.get_ticket_json(id).await {
        Ok(raw) => raw,
        Err(e) => {
            // Counted by the connector's observer; logged here with the
            // ticket it was for.
            let kind = super::apply::error_kind(&e);
            tracing::warn!(%connection, ticket = id, error = %e, "cannot read the ticket a webhook announced");
            return Err(unavailable(kind.to_string()));
        }
    };
    let live = app.engine.live();
    match crate::eval::convert::zendesk::from_ticket(&raw, &live.convert.statuses) {
        Ok(mut fresh) if !fresh.is_empty() => {
            let state = fresh.swap_remove(0);
            // Keyed by the ticket's state (`zendesk:ticket:ID:UPDATED_AT`),
            // as the poller keys it: the same change seen by both, or
            // announced by several events of one update, is decided once.
            ev.id = state.id;
            ev.ticket = state.ticket;
            Ok(())
        }
        Ok(_) | Err(_) => Err(unavailable("the API's answer could not be read".into())),
    }
}

async fn health(State(app): State<Arc<App>>) -> Response {
    let store = app.engine.store.clone();
    let stats = tokio::task::spawn_blocking(move || store.stats()).await;
    match stats {
        Ok(Ok(s)) => Json(json!({
            "status": "ok",
            "revision": app.engine.live().program.revision,
            "outbox": s,
        }))
        .into_response(),
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the state store cannot be read",
        ),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let store = app.engine.store.clone();
    if let Ok(Ok(s)) = tokio::task::spawn_blocking(move || store.stats()).await {
        let age = s
            .oldest_waiting_ms
            .map_or(0.0, |t| (now_ms() - t).max(0) as f64 / 1000.0);
        app.engine.metrics.set_outbox(
            i64::try_from(s.pending + s.sending).unwrap_or(i64::MAX),
            age,
        );
        app.engine
            .metrics
            .set_dead_letters(i64::try_from(s.dead).unwrap_or(i64::MAX));
    }
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        app.engine.metrics.render(),
    )
        .into_response()
}
