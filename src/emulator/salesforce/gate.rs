//! Per-request bookkeeping, authentication and the org's API limit.

use super::errors::SfError;
use super::{lock, Emu};
use crate::emulator::window::Count;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::time::Instant;

/// Decrements the in-flight count however the request ends (a client
/// that hangs up drops the future mid-way).
struct InFlight<'a>(&'a AtomicU32);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts requests per path and the peak number in flight (of all, and of
/// API requests).
pub(super) async fn track(State(st): State<Arc<Emu>>, req: Request<Body>, next: Next) -> Response {
    let key = format!("{} {}", req.method(), req.uri().path());
    lock(&st.stats.by_path).bump(&key);
    let now = st.stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    st.stats.peak.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(&st.stats.in_flight);
    let _api = req.uri().path().starts_with("/services/data/").then(|| {
        let now = st.stats.api_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        st.stats.api_peak.fetch_max(now, Ordering::SeqCst);
        InFlight(&st.stats.api_in_flight)
    });
    next.run(req).await
}

/// `GET /__l3map/stats`: the most requests in flight at once, all and API
/// only; `DELETE` starts the peaks again from what is in flight now.
pub(super) fn routes() -> axum::Router<Arc<Emu>> {
    axum::Router::new().route("/__l3map/stats", axum::routing::get(stats).delete(reset))
}

async fn stats(State(st): State<Arc<Emu>>) -> Response {
    axum::Json(serde_json::json!({
        "peak_in_flight": st.stats.peak.load(Ordering::SeqCst),
        "api_peak_in_flight": st.stats.api_peak.load(Ordering::SeqCst),
        "api_in_flight": st.stats.api_in_flight.load(Ordering::SeqCst),
    }))
    .into_response()
}

async fn reset(State(st): State<Arc<Emu>>) -> Response {
    st.stats
        .peak
        .store(st.stats.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    st.stats.api_peak.store(
        st.stats.api_in_flight.load(Ordering::SeqCst),
        Ordering::SeqCst,
    );
    StatusCode::NO_CONTENT.into_response()
}

/// `v60.0`: any version Salesforce could have.
fn valid_version(path: &str) -> bool {
    let Some(v) = path.split('/').nth(3).and_then(|v| v.strip_prefix('v')) else {
        return false;
    };
    let Some((major, minor)) = v.split_once('.') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor)
}

/// Authenticates, counts the request against the org's limit, and stamps
/// every answer with `Sforce-Limit-Info`.
pub(super) async fn api_gate(
    State(st): State<Arc<Emu>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let mut resp = match gate(&st, &req) {
        Err(e) => e.into_response(),
        Ok(()) => next.run(req).await,
    };
    resp.headers_mut()
        .insert("sforce-limit-info", st.limit_header());
    resp
}

fn gate(st: &Emu, req: &Request<Body>) -> Result<(), SfError> {
    if !valid_version(req.uri().path()) {
        return Err(SfError::not_found());
    }
    authorize(st, req.headers())?;
    if st.api_disabled {
        return Err(SfError::new(
            StatusCode::FORBIDDEN,
            "API_DISABLED_FOR_ORG",
            "The REST API is not enabled for this Organization.",
        ));
    }
    match st.windows.count("org") {
        Count::Allowed { limit, remaining } => {
            st.usage.store(limit - remaining, Ordering::SeqCst);
            Ok(())
        }
        Count::Limited { limit, .. } => {
            st.usage.store(limit, Ordering::SeqCst);
            Err(SfError::new(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ))
        }
    }
}

fn authorize(st: &Emu, headers: &HeaderMap) -> Result<(), SfError> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("OAuth "))
        })
        .ok_or_else(SfError::session)?;
    if lock(&st.tokens).valid(token.trim(), Instant::now()) {
        Ok(())
    } else {
        Err(SfError::session())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked() {
        assert!(valid_version("/services/data/v60.0/query"));
        assert!(!valid_version("/services/data/60.0/query"));
        assert!(!valid_version("/services/data/vX.0/query"));
    }
}
