//! The page, its script and its style (embedded in the binary), and
//! signing in and out.

use super::fail;
use super::session::{by_token, clear_cookie, failed, same_site_json, set_cookie, sign_out};
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

/// `POST /ui/login` with `{"token": "..."}`: a session cookie, or 401.
/// JSON only, from this site only: a form on another site cannot sign a
/// browser in as someone else.
pub async fn login(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    if !same_site_json(&headers) {
        return fail(
            StatusCode::BAD_REQUEST,
            "bad_login",
            "sign in from the console's page: POST {\"token\": \"...\"} as JSON, from this site",
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => return crate::runtime::app::body_error(e),
    };
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
        None if failed(&app) => super::too_many(),
        None => fail(
            StatusCode::UNAUTHORIZED,
            "unknown_token",
            "no [ops.NAME] has this token",
        ),
    }
}

/// `POST /ui/logout`: the session ends here (its cookie is refused from
/// now on, a copy of it too) and the browser forgets it. JSON from this
/// site only, as sign-in.
pub async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if !same_site_json(&headers) {
        return fail(
            StatusCode::BAD_REQUEST,
            "bad_logout",
            "sign out from the console's page: POST {} as JSON, from this site",
        );
    }
    sign_out(&app, &headers);
    (
        [(header::SET_COOKIE, clear_cookie())],
        Json(json!({"signed_out": true})),
    )
        .into_response()
}
