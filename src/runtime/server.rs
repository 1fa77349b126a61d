//! The runtime's HTTP face: Zendesk's webhooks, health and metrics. Every
//! refusal is a 4xx with a JSON body saying what was wrong.

use super::engine::Engine;
use super::intake::{webhook_gate, Gate, Intake};
use super::listen::HttpLimits;
use super::metrics::CONTENT_TYPE;
use super::store::now_ms;
use super::webhook::zendesk_webhook;
use crate::connectors::salesforce::SalesforceClient;
use crate::connectors::zendesk::ZendeskClient;
use crate::connectors::Secret;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
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
