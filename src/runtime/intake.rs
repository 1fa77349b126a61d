//! Reading request bodies, only after the request's credentials passed,
//! and within bounds: at most [`MAX_BODY`](super::app::MAX_BODY)
//! bytes (a declared larger length is refused before a byte is read), the
//! whole body within `body_timeout`, at most `body_reads` bodies read at
//! once and `body_buffer_bytes` of them held at once. Past the last two, a
//! request is a 503 with `Retry-After` rather than memory spent.
//!
//! The gates are route middleware, so each handler receives a body that is
//! already whole and counted: the agent API's gate checks the bearer token
//! ([`super::agent_api`]); the webhook's checks that both signature headers
//! are there and the timestamp is fresh. The HMAC needs the body, so it is
//! checked after, by the handler; a forged fresh timestamp costs at most a
//! bounded read.

use super::app::{error, App, MAX_BODY};
use super::listen::HttpLimits;
use super::webhook::{Refused, SIGNATURE, TIMESTAMP};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bounds on body reads, shared by every request of one server.
pub struct Intake {
    reads: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    timeout: Duration,
    /// How many long-lived response streams (MCP's) may be open at once:
    /// a quarter of the connections, so they never crowd out the rest.
    pub streams: usize,
}

/// A body read whole, and its share of the budget, released on drop.
pub struct Held {
    pub bytes: Bytes,
    _permit: OwnedSemaphorePermit,
}

/// Why a body was not read: the response, and the metric's reason.
pub struct Refusal {
    pub response: Response,
    pub reason: &'static str,
}

fn refusal(status: StatusCode, code: &'static str, message: String) -> Refusal {
    Refusal {
        response: error(status, code, message),
        reason: code,
    }
}

impl Intake {
    pub fn new(limits: &HttpLimits) -> Intake {
        Intake {
            reads: Arc::new(Semaphore::new(limits.body_reads())),
            // Semaphore permits are counted in `usize`, but acquired at most
            // u32::MAX at a time; a body is at most MAX_BODY.
            bytes: Arc::new(Semaphore::new(limits.body_buffer_bytes.max(MAX_BODY))),
            timeout: limits.body_timeout,
            streams: limits.body_reads(),
        }
    }

    /// Reads `body` whole, or says why not.
    pub async fn read(&self, headers: &HeaderMap, body: Body) -> Result<Held, Refusal> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY as u64) {
            linger(body);
            return Err(too_large());
        }
        // A body without a length may grow to the limit: it reserves that.
        let reserve = declared.map_or(MAX_BODY, |n| n as usize).max(1);
        let busy = || {
            let mut r = refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many request bodies are being read at once; send it again shortly".into(),
            );
            r.response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        };
        let Ok(_reading) = self.reads.clone().try_acquire_owned() else {
            return Err(busy());
        };
        let Ok(permit) = self
            .bytes
            .clone()
            .try_acquire_many_owned(u32::try_from(reserve).unwrap_or(u32::MAX))
        else {
            return Err(busy());
        };
        let limited = Limited::new(body, MAX_BODY);
        match tokio::time::timeout(self.timeout, limited.collect()).await {
            Err(_) => Err(refusal(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the body did not arrive within {} s",
                    self.timeout.as_secs()
                ),
            )),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
            Ok(Err(_)) => Err(refusal(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "the body was cut off or badly framed".into(),
            )),
            Ok(Ok(collected)) => Ok(Held {
                bytes: collected.to_bytes(),
                _permit: permit,
            }),
        }
    }
}

/// How long, and how much, a refused upload is still read (and thrown
/// away) after its 413 is answered.
const LINGER_FOR: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 16 << 20;

/// A lingering close, as web servers do: answered 413 and closed at once,
/// a client still writing its body got a reset and lost the answer
/// (reqwest saw "broken pipe", not the JSON). The body is read and
/// discarded, bounded in time and bytes (no memory is held), then the
/// connection closes.
fn linger(body: Body) {
    tokio::spawn(async move {
        let mut body = body;
        let mut seen = 0usize;
        let _ = tokio::time::timeout(LINGER_FOR, async {
            while let Some(Ok(frame)) = body.frame().await {
                seen += frame.data_ref().map_or(0, |d| d.len());
                if seen > LINGER_BYTES {
                    break;
                }
            }
        })
        .await;
    });
}

fn too_large() -> Refusal {
    refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the body is larger than {MAX_BODY} bytes"),
    )
}

/// What a gate middleware needs.
#[derive(Clone)]
pub struct Gate {
    pub app: Arc<App>,
    pub intake: Arc<Intake>,
}

/// Runs `next` with the body read whole; the budget is held until the
/// handler has answered.
pub async fn with_body(gate: &Gate, req: Request, next: Next) -> Result<Response, Refusal> {
    let (parts, body) = req.into_parts();
    let held = gate.intake.read(&parts.headers, body).await?;
    let req = Request::from_parts(parts, Body::from(held.bytes.clone()));
    let resp = next.run(req).await;
    drop(held);
    Ok(resp)
}

/// `POST /webhooks/zendesk`: both signature headers present and the
/// timestamp within the tolerance, before the body is read.
pub async fn webhook_gate(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    let app = &gate.app;
    let metrics = &app.engine.metrics;
    if app.webhook_secret.is_none() {
        return error(
            StatusCode::NOT_FOUND,
            "not_configured",
            "webhooks are off: add [webhook] secret_env to l3map.toml, or webhook_secret to the Zendesk connection",
        );
    }
    if let Some(r) = unsigned_or_stale(req.headers(), app.tolerance) {
        metrics.event_rejected("webhook", r.reason());
        tracing::warn!(reason = r.reason(), "webhook refused");
        return error(StatusCode::UNAUTHORIZED, r.reason(), r.message());
    }
    match with_body(&gate, req, next).await {
        Ok(resp) => resp,
        Err(r) => {
            metrics.event_rejected("webhook", r.metric_reason());
            tracing::warn!(reason = r.reason, "webhook body refused");
            r.response
        }
    }
}

/// The checks a webhook passes before its body is read.
fn unsigned_or_stale(headers: &HeaderMap, tolerance: Duration) -> Option<Refused> {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match (h(SIGNATURE), h(TIMESTAMP)) {
        (Some(_), Some(ts)) => {
            let fresh = ts.trim().parse::<jiff::Timestamp>().ok().is_some_and(|t| {
                jiff::Timestamp::now().duration_since(t).unsigned_abs() <= tolerance
            });
            (!fresh).then_some(Refused::Stale)
        }
        _ => Some(Refused::Unsigned),
    }
}

impl Refusal {
    /// The `reason` of `l3map_events_rejected_total`: a body too large or
    /// cut off is `malformed`, as before the gates; `busy` and
    /// `body_timeout` are their own.
    pub fn metric_reason(&self) -> &'static str {
        match self.reason {
            "busy" | "body_timeout" => self.reason,
            _ => "malformed",
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        self.response
    }
}
