//! Fault injection for tests and `l3map emulate --error-rate ...`: random
//! 5xx answers, added latency, bursts of 5xx and storms of 429, applied
//! before a request reaches the emulated API (so a faulted request changes
//! no state); and lost and stalled answers, applied after it (the request
//! took effect, the client never hears so, or hears too late), which is
//! what makes a blind retry write twice.
//!
//! The dice are one seeded generator (`rng`), so a failing run can be
//! replayed with the same seed; `paused` lets a test set its records up
//! untouched and then let the faults loose.

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

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
    /// Share of requests carried out and then answered only after
    /// `stall`: longer than a client's timeout, the client gives up on a
    /// write that landed.
    pub stall_rate: f64,
    pub stall: Duration,
    /// Until this instant every request is answered 429 with the seconds
    /// left as `Retry-After` (see [`Faults::storm`]).
    pub storm_until: Mutex<Option<Instant>>,
    /// While set, nothing is injected (latency included).
    pub paused: AtomicBool,
    /// The dice for `error_rate` and `stall_rate`; seed it
    /// (`fastrand::Rng::with_seed`) to make a run reproducible.
    pub rng: Mutex<fastrand::Rng>,
    /// How many requests were faulted, for tests and metrics.
    pub injected: AtomicU32,
}

/// What the dice decided for one request.
enum Verdict {
    Pass,
    Fail,
    Storm(Duration),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Faults {
    pub fn none() -> Arc<Faults> {
        Arc::new(Faults::default())
    }

    /// Every request is answered 429 for `period` from now, as when
    /// another integration has spent the shared budget.
    pub fn storm(&self, period: Duration) {
        *lock(&self.storm_until) = Some(Instant::now() + period);
    }

    fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    fn roll(&self, rate: f64) -> bool {
        rate > 0.0 && lock(&self.rng).f64() < rate
    }

    fn before(&self) -> Verdict {
        if self.paused() {
            return Verdict::Pass;
        }
        if let Some(until) = *lock(&self.storm_until) {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                return Verdict::Storm(left);
            }
        }
        let burst = self
            .burst_5xx
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if burst || self.roll(self.error_rate) {
            Verdict::Fail
        } else {
            Verdict::Pass
        }
    }

    fn should_lose(&self) -> bool {
        !self.paused()
            && self
                .lose_answers
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
    }

    fn should_stall(&self) -> bool {
        !self.paused() && !self.stall.is_zero() && self.roll(self.stall_rate)
    }
}

/// The axum middleware: `axum::middleware::from_fn_with_state(faults, layer)`.
pub async fn layer(
    axum::extract::State(faults): axum::extract::State<Arc<Faults>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    if !faults.latency.is_zero() && !faults.paused() {
        tokio::time::sleep(faults.latency).await;
    }
    match faults.before() {
        Verdict::Pass => {}
        Verdict::Fail => {
            // A bare 503, as an overloaded proxy answers: no Retry-After, so
            // clients fall back to their own backoff (load shedding with
            // Retry-After is what the rate limits model).
            return faulted(
                &faults,
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "injected fault (l3map emulator)",
            );
        }
        Verdict::Storm(left) => {
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            let mut r = faulted(
                &faults,
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "injected 429 storm (l3map emulator)",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            return r;
        }
    }
    let answer = next.run(req).await;
    if faults.should_lose() {
        return faulted(
            &faults,
            StatusCode::BAD_GATEWAY,
            "BadGateway",
            "injected fault after the request was carried out (l3map emulator)",
        );
    }
    if faults.should_stall() {
        faults.injected.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(faults.stall).await;
    }
    answer
}

/// A faulted answer in Zendesk's error shape, counted.
fn faulted(faults: &Faults, status: StatusCode, error: &str, description: &str) -> Response {
    faults.injected.fetch_add(1, Ordering::SeqCst);
    (
        status,
        axum::Json(serde_json::json!({"error": error, "description": description})),
    )
        .into_response()
}
