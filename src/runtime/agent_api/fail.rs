//! Refusals on their way to becoming the API's JSON errors, and what an
//! upstream failure means for the agent.

use crate::connectors::error::ApiError;
use crate::runtime::app::error;
use crate::runtime::apply::error_kind;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// The target its log lines had before the module was split, so operators'
/// filters (`RUST_LOG`, alerts on the JSON `target`) keep matching.
const LOG_TARGET: &str = "l3map::runtime::agent_api";

/// A refusal on its way to becoming a JSON error. Clone and Sync, so a
/// turn's failure can travel through the memo's single-flight.
#[derive(Debug, Clone)]
pub(super) struct Fail {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

pub(super) fn fail(status: StatusCode, code: &'static str, message: impl Into<String>) -> Fail {
    Fail {
        status,
        code,
        message: message.into(),
        retry_after: None,
    }
}

/// A request the API refuses as it reads it: `400 invalid`.
pub(super) fn bad(message: impl Into<String>) -> Fail {
    fail(StatusCode::BAD_REQUEST, "invalid", message)
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let mut r = error(self.status, self.code, self.message);
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// What an upstream failure means for the agent. The message names the
/// system and the kind of failure only: the API's own text is for the
/// logs, where an operator reads it next to the request it belongs to.
pub(super) fn upstream(e: &ApiError, what: &str) -> Fail {
    let system = match e {
        ApiError::Auth { system, .. }
        | ApiError::GrantRevoked { system, .. }
        | ApiError::Permission { system, .. }
        | ApiError::NotFound { system, .. }
        | ApiError::Validation { system, .. }
        | ApiError::Conflict { system, .. }
        | ApiError::RateLimited { system, .. }
        | ApiError::Transient { system, .. }
        | ApiError::QuotaExhausted { system, .. }
        | ApiError::Unconfirmed { system, .. }
        | ApiError::Protocol { system, .. }
        | ApiError::GaveUp { system, .. } => *system,
    };
    let kind = error_kind(e);
    tracing::warn!(target: LOG_TARGET, error = %e, "agent API: {what} failed");
    if crate::connectors::limit::is_budget_unreachable(e) {
        // This replica's link to the fleet's store, not the vendor: the
        // load balancer's next try may reach a replica that has one.
        return fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the fleet's store could not be reached to share {system}'s rate budget while reading {what}, so nothing was sent; try again"),
        );
    }
    Fail {
        retry_after: retry_after(e).map(|d| d.as_secs().max(1)),
        ..fail(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!("{system} could not be read ({kind}) while reading {what}; try again"),
        )
    }
}

fn retry_after(e: &ApiError) -> Option<Duration> {
    match e {
        ApiError::GaveUp { last, .. } => retry_after(last),
        other => other.retry_after(),
    }
}

pub(super) fn not_found(e: &ApiError) -> bool {
    match e {
        ApiError::NotFound { .. } => true,
        ApiError::GaveUp { last, .. } => not_found(last),
        _ => false,
    }
}
