//! The ops console at `/ui` (docs/CONSOLE.md): a page served by `l3map run`
//! for support-ops people, showing what l3map is doing from the store
//! (SQLite, or a fleet's PostgreSQL, where every replica shows the same).
//!
//! Files: [`session`] (sign-in, cookies, CSRF), [`reads`] (the JSON the
//! page reads), [`acts`] (Retry, Drop), [`graph`] (the status graph's
//! layout), [`pages`] (the page and its script and style, embedded in the
//! binary: nothing is fetched at run time).
//!
//! No `[ops.NAME]` in l3map.toml: every `/ui` path answers 404, as if the
//! console did not exist.

pub mod acts;
pub mod graph;
pub mod pages;
pub mod reads;
pub mod session;

use crate::runtime::app::{error, App};
use crate::runtime::store::StoreError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;

pub use crate::runtime::app::error as fail;

/// The console's routes, for the runtime's router.
pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    let api = Router::new()
        .route("/ui/api/whoami", get(reads::whoami))
        .route("/ui/api/overview", get(reads::overview))
        .route("/ui/api/dead", get(reads::dead))
        .route("/ui/api/dead/retry", post(acts::retry_reason))
        .route("/ui/api/actions/{id}", get(reads::action))
        .route("/ui/api/actions/{id}/retry", post(acts::retry))
        .route("/ui/api/actions/{id}/drop", post(acts::drop_one))
        .route("/ui/api/trail/{*record}", get(reads::trail))
        .route("/ui/api/reloads", get(reads::reloads))
        .route("/ui/api/diff", get(reads::diff))
        .route("/ui/api/budgets", get(reads::budgets))
        .route_layer(from_fn_with_state(app.clone(), signed_in));
    Router::new()
        .route("/ui", get(pages::index))
        .route("/ui/", get(pages::index))
        .route("/ui/app.js", get(pages::script))
        .route("/ui/app.css", get(pages::style))
        .route("/ui/login", post(pages::login))
        .route("/ui/logout", post(pages::logout))
        .merge(api)
        .route_layer(from_fn_with_state(app, enabled))
        .route_layer(from_fn(hardened))
}

/// Refuses `[ops]` tokens a guess could find: shorter than
/// [`session::MIN_TOKEN_CHARS`], or the same as another user's, an
/// agent's token or the webhook secret (one leak must not open both).
pub fn check_tokens<'a>(
    users: &[crate::runtime::app::OpsUser],
    others: impl Iterator<Item = &'a crate::connectors::Secret>,
) -> Result<(), String> {
    let others: Vec<&str> = others.map(|s| s.expose()).collect();
    for (i, u) in users.iter().enumerate() {
        let t = u.token.expose().trim();
        if t.chars().count() < session::MIN_TOKEN_CHARS {
            return Err(format!(
                "[ops.{}] token is {} characters; use at least {} random ones (e.g. `openssl rand -hex 24`)",
                u.name,
                t.chars().count(),
                session::MIN_TOKEN_CHARS
            ));
        }
        let again = users[..i].iter().any(|o| o.token.expose().trim() == t);
        if again || others.iter().any(|o| o.trim() == t) {
            return Err(format!(
                "[ops.{}] token is also another [ops] user's, an agent's token or the webhook secret; give each its own",
                u.name
            ));
        }
    }
    Ok(())
}

/// 404 for every `/ui` path when no one may open the console.
async fn enabled(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if app.console.users.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint; the ops console is off until l3map.toml names an [ops.NAME] (docs/CONSOLE.md)",
        );
    }
    next.run(req).await
}

/// The API answers only a signed-in viewer, who is handed to the handler.
async fn signed_in(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    match session::viewer(&app, req.headers()) {
        session::Seen::Viewer(v) => {
            req.extensions_mut().insert(v);
            next.run(req).await
        }
        session::Seen::WrongToken if session::failed(&app) => too_many(),
        _ => error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in at /ui with an [ops.NAME] token, or send it as Authorization: Bearer",
        ),
    }
}

/// 429 for a failed attempt past the minute's allowance, with when to
/// try again.
pub(crate) fn too_many() -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_failures",
        "too many failed sign-ins this minute; a right token still gets in, a wrong one waits",
    );
    if let Ok(v) = HeaderValue::from_str(&session::retry_after().to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Headers every console answer carries: a script or style only from
/// here, no framing, no referrer, nothing cached.
async fn hardened(req: Request, next: Next) -> Response {
    let mut resp = as_json(next.run(req).await).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// An error axum answered in plain text (a query, path or body it could
/// not read) as the console's JSON error, its text the message.
async fn as_json(resp: Response) -> Response {
    let status = resp.status();
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|c| c.as_bytes().starts_with(b"application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let text = match axum::body::to_bytes(resp.into_body(), 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        _ => "bad_request",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    error(status, code, message)
}

/// How long a console read may take before the page is told the store is
/// slow (a stalled database must not hold a request forever).
const READ_WAIT: Duration = Duration::from_secs(5);

/// Runs a store call on the blocking pool, its error as the JSON answer.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::time::timeout(READ_WAIT, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = %e, "ops console: the store refused a read");
            Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store did not answer; see /healthz and the runtime's log",
            ))
        }
        _ => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_slow",
            format!("the store did not answer within {}s", READ_WAIT.as_secs()),
        )),
    }
}
