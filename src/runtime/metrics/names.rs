//! The fixed sets every label value comes from, and the histograms'
//! buckets. A series exists for each value from the start, at 0
//! (`families.rs`); a value outside these sets is still counted, as a
//! series of its own, but nothing creates it ahead.

/// The git commit this binary was built from (`build.rs`), or `unknown`
/// when it was built outside a git checkout without `L3MAP_REVISION`.
pub const BUILD_REVISION: &str = env!("L3MAP_BUILD_REVISION");

/// The content type of [`Metrics::render`](super::Metrics::render)'s output. prometheus-client
/// writes OpenMetrics, not the older Prometheus 0.0.4 format (`# EOF`, and
/// counters' `_total` suffix in the exposition, are OpenMetrics-only), and
/// Prometheus only parses it as such when told so.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Turn latency buckets: dense below the 3 s target, where a regression
/// shows first, with 3 itself a bucket bound so "share of turns within
/// target" is one `le="3.0"` bucket divided by the count.
pub const TURN_LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0,
];

/// Decided → applied latency buckets: up to a minute, because an action
/// waits in the outbox through rate-limit pauses and retries.
pub const ACTION_LATENCY_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The runtime's own HTTP API latency buckets (the Prometheus client
/// libraries' defaults): a health check or scrape takes milliseconds, a
/// turn includes a Zendesk read and so can take seconds.
pub const HTTP_LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Event sources (`source` label).
pub const SOURCES: [&str; 4] = ["webhook", "zendesk_poll", "salesforce_poll", "agent"];

/// The `reason`s each source can be refused for (`l3map_events_rejected_total`).
pub const REJECTED: [(&str, &[&str]); 3] = [
    (
        "webhook",
        &[
            "unsigned",
            "bad_signature",
            "replayed",
            "malformed",
            "ticket_not_found",
            "links_unavailable",
            "busy",
            "body_timeout",
        ],
    ),
    (
        "agent",
        &["unauthorized", "malformed", "busy", "body_timeout"],
    ),
    ("zendesk_poll", &["malformed"]),
];

/// Action kinds (`kind` of `l3map_actions_total`), as the outbox names them.
pub const ACTION_KINDS: [&str; 5] = [
    "set_status",
    "set_field",
    "comment",
    "assign_group",
    "normalize_sku",
];

/// What became of an action (`result` of `l3map_actions_total`).
pub const ACTION_RESULTS: [&str; 6] = [
    "applied",
    "refused",
    "failed",
    "parked",
    "requeued",
    "superseded",
];

/// Error classes of `l3map_api_errors_total` (`runtime::apply::error_kind`,
/// plus `budget`: held by our own rate limiter, never sent).
pub const API_ERROR_KINDS: [&str; 10] = [
    "auth",
    "permission",
    "not_found",
    "validation",
    "rate_limited",
    "transient",
    "protocol",
    "quota",
    "unconfirmed",
    "budget",
];

/// The runtime's routes, as their templates (`route` label of
/// `l3map_http_request_duration_seconds`), with the method each serves.
/// Anything else is `other`, so a scanner trying random paths adds no
/// series. A new route in `server::router_with` belongs here too, or its
/// requests count as `other`.
pub const HTTP_ROUTES: [(&str, &str); 6] = [
    ("/webhooks/zendesk", "POST"),
    ("/healthz", "GET"),
    ("/readyz", "GET"),
    ("/metrics", "GET"),
    ("/v1/turns", "POST"),
    ("/v1/context/{ticket}", "GET"),
];

/// Status classes every route starts with at 0 (`status` label).
pub(super) const HTTP_STATUS_CLASSES: [&str; 3] = ["2xx", "4xx", "5xx"];
