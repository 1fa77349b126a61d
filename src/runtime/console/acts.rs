//! What the console may do, for an `[ops.NAME]` with `actions = true`:
//! retry or drop one dead letter, or retry every dead letter parked for
//! one reason. Each is logged with who did it, and a retry leaves its line
//! in the action's attempts (`requeued`).

use super::session::{refuse_write, Viewer};
use super::{blocking, fail};
use crate::runtime::app::App;
use crate::runtime::store::views::DeadQuery;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Dead letters one bulk retry requeues at most; the rest wait for the
/// next press.
pub const BULK: usize = 5_000;

fn gate(v: &Viewer, headers: &HeaderMap) -> Option<Response> {
    refuse_write(v, headers).map(|why| fail(StatusCode::FORBIDDEN, "forbidden", why))
}

pub async fn retry(
    State(app): State<Arc<App>>,
    Extension(v): Extension<Viewer>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    one(&app, &v, &headers, id, true).await
}

pub async fn drop_one(
    State(app): State<Arc<App>>,
    Extension(v): Extension<Viewer>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    one(&app, &v, &headers, id, false).await
}

/// Retries (`retry`) or drops one dead letter.
async fn one(app: &App, v: &Viewer, headers: &HeaderMap, id: i64, retry: bool) -> Response {
    if let Some(r) = gate(v, headers) {
        return r;
    }
    let store = app.engine.store.clone();
    let done = blocking(move || {
        if retry {
            store.requeue_dead(&[id])
        } else {
            store.drop_dead(&[id])
        }
    })
    .await;
    match done {
        Ok(0) => not_dead(id),
        Ok(n) if retry => {
            tracing::info!(by = %v.name, action = id, "ops console: dead letter retried");
            app.engine.wake.notify_waiters();
            Json(json!({"retried": n})).into_response()
        }
        Ok(n) => {
            tracing::warn!(by = %v.name, action = id, "ops console: dead letter dropped");
            Json(json!({"dropped": n})).into_response()
        }
        Err(e) => e,
    }
}

fn not_dead(id: i64) -> Response {
    fail(
        StatusCode::CONFLICT,
        "not_dead",
        format!("action {id} is not a dead letter (retried or dropped already, or never parked)"),
    )
}

#[derive(Deserialize)]
pub struct Bulk {
    /// The reason class, as the dead-letter groups name it.
    reason: String,
}

pub async fn retry_reason(
    State(app): State<Arc<App>>,
    Extension(v): Extension<Viewer>,
    headers: HeaderMap,
    body: Result<Json<Bulk>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Some(r) = gate(&v, &headers) {
        return r;
    }
    let Ok(Json(b)) = body else {
        return fail(
            StatusCode::BAD_REQUEST,
            "bad_body",
            "send {\"reason\": \"<reason class>\"} as JSON",
        );
    };
    let store = app.engine.store.clone();
    let reason = b.reason.clone();
    let done = blocking(move || {
        let q = DeadQuery {
            parked: Some(reason),
            before: None,
            limit: BULK + 1,
        };
        let rows = store.console().dead_letters(&q)?;
        let ids: Vec<i64> = rows.iter().take(BULK).map(|r| r.id).collect();
        // An empty list means "every dead letter" to the store: never.
        let n = if ids.is_empty() {
            0
        } else {
            store.requeue_dead(&ids)?
        };
        Ok((n, rows.len() > BULK))
    })
    .await;
    match done {
        Ok((n, more)) => {
            tracing::info!(by = %v.name, reason = %b.reason, retried = n, "ops console: dead letters retried by reason");
            if n > 0 {
                app.engine.wake.notify_waiters();
            }
            Json(json!({"retried": n, "more": more})).into_response()
        }
        Err(e) => e,
    }
}
