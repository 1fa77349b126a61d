//! The runtime's HTTP face: Zendesk's webhooks, health and metrics. Every
//! refusal is a 4xx with a JSON body saying what was wrong.

use super::app::error;
use super::intake::{webhook_gate, Gate, Intake};
use super::listen::HttpLimits;
use super::metrics::CONTENT_TYPE;
use super::store::now_ms;
use super::webhook::zendesk_webhook;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use super::app::{App, MAX_BODY};

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
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .merge(super::agent_api::routes(gate))
        .merge(super::console::routes(app.clone()))
        .fallback(not_found)
        // Around every route and the fallback, outside the gates, so a
        // request a gate refuses is timed and counted too.
        .layer(from_fn_with_state(app.clone(), timed))
        // A second net: a body the gates did not read is never buffered
        // past the limit either.
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

/// Times each request into `l3map_http_request_duration_seconds`, labelled
/// with the route's template (axum's [`MatchedPath`], which a
/// `Router::layer` sees), never the raw path.
async fn timed(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let resp = next.run(req).await;
    app.engine.metrics.http_request(
        route.as_ref().map(MatchedPath::as_str),
        method.as_str(),
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see docs/RUNTIME.md",
    )
}

/// How old the outbox counts `/healthz` and `/metrics` show may be when
/// another process (`l3map outbox retry`) wrote; this runtime's own writes
/// show in the next poll.
const STATS_MAX_AGE: Duration = Duration::from_secs(1);

/// The store's counts, from the snapshot when it is fresh (no task, no
/// I/O), else from one read on the store's reader connection, which never
/// waits for a write.
async fn store_stats(app: &App) -> Option<super::store::Stats> {
    let store = &app.engine.store;
    if let Some(s) = store.fresh(STATS_MAX_AGE) {
        return Some(s);
    }
    let store = store.clone();
    match bounded(app, move || store.stats_cached(STATS_MAX_AGE)).await {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the outbox counts");
            None
        }
        None => None,
    }
}

/// How long `/healthz`, `/readyz` and `/metrics` wait for a store read: a
/// database that stalls (a failover, a cut link) must not stall the
/// probes and scrapes that are there to notice it.
const PROBE_WAIT: Duration = Duration::from_secs(2);

/// Probe reads left waiting on a stalled store before further probes stop
/// asking it (each waits on a blocking thread until the store's own call
/// timeout).
const STALLED_PROBES: usize = 4;

/// `read` on the blocking pool, its answer if it came within
/// [`PROBE_WAIT`] (the read itself goes on and is dropped). While
/// [`STALLED_PROBES`] reads are still waiting, none is started: `None` at
/// once, as for a timeout.
async fn bounded<T: Send + 'static>(
    app: &App,
    read: impl FnOnce() -> Result<T, super::store::StoreError> + Send + 'static,
) -> Option<Result<T, super::store::StoreError>> {
    use std::sync::atomic::Ordering;
    let probes = app.probes.clone();
    if probes.fetch_add(1, Ordering::SeqCst) >= STALLED_PROBES {
        probes.fetch_sub(1, Ordering::SeqCst);
        return None;
    }
    let read = move || {
        let answer = read();
        probes.fetch_sub(1, Ordering::SeqCst);
        answer
    };
    match tokio::time::timeout(PROBE_WAIT, tokio::task::spawn_blocking(read)).await {
        Ok(Ok(answer)) => Some(answer),
        _ => None,
    }
}

/// The OAuth grants in the store (plaintext columns only: no key, no
/// token), or none when they cannot be read.
async fn grants(app: &App) -> Vec<super::store::StoredCredential> {
    answered_grants(app).await.unwrap_or_default()
}

/// [`grants`]; `None` when the store did not answer in time (a probe then
/// says so at once rather than wait for a second read).
async fn answered_grants(app: &App) -> Option<Vec<super::store::StoredCredential>> {
    let store = app.engine.store.clone();
    match bounded(app, move || store.credentials()).await {
        Some(Ok(rows)) => Some(rows),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the stored OAuth grants");
            Some(Vec::new())
        }
        None => None,
    }
}

/// Why a stored grant needs a person, naming the command to run.
fn needs_login(c: &super::store::StoredCredential) -> Option<String> {
    use super::store::CredentialState;
    let name = &c.sealed.connection;
    let why = match c.state {
        CredentialState::Ok => return None,
        CredentialState::NeedsLogin => "its OAuth grant was refused (revoked, expired or already used)",
        CredentialState::Undecryptable => {
            "its stored grant cannot be opened with the configured key ([credentials] key_env/key_file)"
        }
    };
    Some(format!(
        "connection {name}: {why}; its actions wait in the outbox; run: l3map auth login --connection {name}"
    ))
}

/// Whether a load balancer should send this replica traffic: not
/// draining (SIGTERM), and the store answering a read now (not a cached
/// count). The loaded revision is named; the process does not start
/// without one.
async fn ready(State(app): State<Arc<App>>) -> Response {
    let revision = app.engine.live().program.revision.clone();
    if app
        .engine
        .draining
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "this replica is shutting down: finishing in-flight work and handing its leases back",
        );
    }
    if let Some(why) = app.engine.fleet.unloadable() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "revision_not_loaded", why);
    }
    let store = app.engine.store.clone();
    match bounded(&app, move || store.cursor("readyz")).await {
        Some(Ok(_)) => Json(json!({
            "ready": true,
            "revision": revision,
            // The fleet's, as this replica last saw it (null on SQLite).
            "fleet_revision": app.engine.fleet.active(),
            "store": app.engine.store.path().display().to_string(),
        }))
        .into_response(),
        Some(Err(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unreachable",
            format!("the state store does not answer: {e}"),
        ),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unreachable",
            format!(
                "the state store did not answer within {} s",
                PROBE_WAIT.as_secs()
            ),
        ),
    }
}

async fn health(State(app): State<Arc<App>>) -> Response {
    let Some(grants) = answered_grants(&app).await else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!(
                "the state store did not answer within {} s",
                PROBE_WAIT.as_secs()
            ),
        );
    };
    let waiting: Vec<String> = grants.iter().filter_map(needs_login).collect();
    if !waiting.is_empty() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "credentials_need_login",
            waiting.join("; "),
        );
    }
    if let Some(f) = app.engine.store.write_failure() {
        let since = super::files::rfc3339(f.since_ms);
        let fix = if app.engine.store.path().starts_with("postgres:") {
            "check that PostgreSQL is up, reachable and accepting writes"
        } else {
            "free disk space or fix the file system"
        };
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unwritable",
            format!(
                "the state store cannot be written since {since} ({}); events are refused until a write succeeds: {fix}",
                f.error
            ),
        );
    }
    match store_stats(&app).await {
        Some(s) => {
            // `oldest_waiting_ms` is when (ms since 1970) the oldest waiting
            // action was decided; its age is what an alert wants.
            let age = s.oldest_waiting_ms.map(|t| (now_ms() - t).max(0));
            let mut outbox = serde_json::to_value(s).unwrap_or_default();
            if let Some(o) = outbox.as_object_mut() {
                o.insert("oldest_waiting_age_ms".into(), json!(age));
            }
            let revision = app.engine.live().program.revision.clone();
            Json(json!({
                "status": "ok",
                "revision": revision,
                // Still 200 when the files on disk are refused: serving
                // the previous revision is right, and this shows it.
                "mappings": super::files::health_json(&app.engine.files, &revision),
                "outbox": outbox,
            }))
            .into_response()
        }
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the state store cannot be read",
        ),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let now = now_ms();
    for c in grants(&app).await {
        let left = c.sealed.access_expires_ms.map(|at| (at - now) / 1000);
        app.engine
            .metrics
            .credential_state(&c.sealed.connection, needs_login(&c).is_some(), left);
    }
    if let Some(s) = store_stats(&app).await {
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
    let store = &app.engine.store;
    app.engine.metrics.set_store(
        store.write_failure().is_none(),
        store.write_failures(),
        store.deleted(),
    );
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        app.engine.metrics.render(),
    )
        .into_response()
}
