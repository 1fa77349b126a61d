//! Fault injection for tests and `l3map emulate --error-rate ...`: random
//! 5xx answers, added latency, and bursts of 5xx, applied before a request
//! reaches the emulated API (so a faulted request changes no state); and
//! lost answers, applied after it (the request took effect, the client
//! never hears so), which is what makes a blind retry write twice.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Faults {
    /// Share of requests answered 503, 0.0..=1.0.
    pub error_rate: f64,
    /// Added to every answer.
    pub latency: Duration,
    /// The next N requests are answered 503, then service resumes.
    pub burst_5xx: AtomicU32,
    /// The next N requests are carried out, then answered 502 as a
    /// gateway that gave up waiting would: the change is made, the
    /// client cannot know it.
    pub lose_answers: AtomicU32,
    /// How many requests were faulted, for tests and metrics.
    pub injected: AtomicU32,
}

impl Faults {
    pub fn none() -> Arc<Faults> {
        Arc::new(Faults::default())
    }

    fn should_fail(&self) -> bool {
        let burst = self
            .burst_5xx
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        burst || (self.error_rate > 0.0 && fastrand::f64() < self.error_rate)
    }

    fn should_lose(&self) -> bool {
        self.lose_answers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// The axum middleware: `axum::middleware::from_fn_with_state(faults, layer)`.
pub async fn layer(
    axum::extract::State(faults): axum::extract::State<Arc<Faults>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    if faults.should_fail() {
        faults.injected.fetch_add(1, Ordering::SeqCst);
        // A bare 503, as an overloaded proxy answers: no Retry-After, so
        // clients fall back to their own backoff (load shedding with
        // Retry-After is what the rate limits model).
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "error": "ServiceUnavailable",
                "description": "injected fault (l3map emulator)"
            })),
        )
            .into_response();
    }
    let answer = next.run(req).await;
    if faults.should_lose() {
        faults.injected.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::BAD_GATEWAY,
            axum::Json(serde_json::json!({
                "error": "BadGateway",
                "description": "injected fault after the request was carried out (l3map emulator)"
            })),
        )
            .into_response();
    }
    answer
}
