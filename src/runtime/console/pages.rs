//! The page, its script and its style (embedded in the binary), and
//! signing in and out.

use super::fail;
use super::session::{by_token, clear_cookie, set_cookie};
use crate::runtime::app::App;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// Failed sign-ins allowed a minute, for the whole process.
const FAILURES_A_MINUTE: u32 = 20;

pub async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

fn minute() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

/// `POST /ui/login` with `{"token": "..."}`: a session cookie, or 401.
/// JSON only, from this site only: a form on another site cannot sign a
/// browser in as someone else.
pub async fn login(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    let cross = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| s == "cross-site" || s == "same-site");
    if !json || cross {
        return fail(
            StatusCode::BAD_REQUEST,
            "bad_login",
            "sign in from the console's page: POST {\"token\": \"...\"} as JSON",
        );
    }
    {
        let f = app
            .console
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if f.0 == minute() && f.1 >= FAILURES_A_MINUTE {
            return fail(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sign_ins",
                "too many failed sign-ins this minute; try again in a minute",
            );
        }
    }
    let token = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_default();
    match by_token(&app, token.trim()) {
        Some(user) => {
            let https = headers
                .get("x-forwarded-proto")
                .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
            tracing::info!(user = %user.name, "ops console: signed in");
            (
                [(header::SET_COOKIE, set_cookie(user, https))],
                Json(json!({"name": user.name, "actions": user.actions})),
            )
                .into_response()
        }
        None => {
            let mut f = app
                .console
                .failures
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let m = minute();
            *f = if f.0 == m { (m, f.1 + 1) } else { (m, 1) };
            tracing::warn!("ops console: a sign-in with an unknown token was refused");
            fail(
                StatusCode::UNAUTHORIZED,
                "unknown_token",
                "no [ops.NAME] has this token",
            )
        }
    }
}

pub async fn logout() -> Response {
    (
        [(header::SET_COOKIE, clear_cookie())],
        Json(json!({"signed_out": true})),
    )
        .into_response()
}
