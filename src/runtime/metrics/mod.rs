//! `/metrics` for `l3map run`: what came in, what was applied, what the
//! platforms said back, and how far behind the outbox is, in the
//! OpenMetrics text format Prometheus scrapes.
//!
//! Every label value is chosen by our own code (an event source, an action
//! kind, an error class, a connection name declared in the mappings, the
//! compiled revision), never copied from an event or an API response: each
//! label value is a separate time series in Prometheus, so a ticket id or an
//! error message as a label would grow the series count without bound.

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// The git commit this binary was built from (`build.rs`), or `unknown`
/// when it was built outside a git checkout without `L3MAP_REVISION`.
pub const BUILD_REVISION: &str = env!("L3MAP_BUILD_REVISION");

/// The content type of [`Metrics::render`]'s output. prometheus-client
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
pub const ACTION_RESULTS: [&str; 5] = ["applied", "refused", "failed", "parked", "requeued"];

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
pub const HTTP_ROUTES: [(&str, &str); 5] = [
    ("/webhooks/zendesk", "POST"),
    ("/healthz", "GET"),
    ("/metrics", "GET"),
    ("/v1/turns", "POST"),
    ("/v1/context/{ticket}", "GET"),
];

/// Status classes every route starts with at 0 (`status` label).
const HTTP_STATUS_CLASSES: [&str; 3] = ["2xx", "4xx", "5xx"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    revision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectedLabels {
    source: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    connection: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    connection: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    connection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WhatLabels {
    what: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevisionLabels {
    revision: String,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    events: Family<SourceLabels, Counter>,
    duplicates: Family<SourceLabels, Counter>,
    rejected: Family<RejectedLabels, Counter>,
    actions: Family<ActionLabels, Counter>,
    api_calls: Family<CallLabels, Counter>,
    api_errors: Family<ErrorLabels, Counter>,
    rate_limited: Family<ConnectionLabels, Counter>,
    retries: Family<ConnectionLabels, Counter>,
    outbox_depth: Gauge,
    outbox_oldest_age: Gauge<f64, AtomicU64>,
    dead_letters: Gauge,
    store_writable: Gauge,
    store_write_failures: Counter,
    retention_deleted: Family<WhatLabels, Counter>,
    // The store counts these itself (it knows nothing of metrics); a scrape
    // brings the counters up to its totals, one scrape at a time.
    store_sync: Mutex<()>,
    reloads: Family<ResultLabels, Counter>,
    reload_compiles: Counter,
    revision: Family<RevisionLabels, Gauge>,
    turn_latency: Histogram,
    action_latency: Histogram,
    http: Family<HttpLabels, Histogram, fn() -> Histogram>,
    // Swapping the revision is clear-then-set; holding this across the swap
    // and across every render keeps a scrape from seeing no revision, and
    // two concurrent reloads from leaving two.
    revision_swap: Mutex<()>,
}

/// The runtime's metrics. Cloning is cheap and every clone records into, and
/// renders, the same series.
///
/// Every `&str` argument becomes a label value and must come from a small
/// fixed set our code owns (the values listed on each method, or a
/// connection name from the mappings); never pass user data, ids or error
/// text, which would make the number of series unbounded.
#[derive(Clone, Debug)]
pub struct Metrics(Arc<Inner>);

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let events = Family::default();
        let duplicates = Family::default();
        let rejected = Family::default();
        let actions = Family::default();
        let api_calls = Family::default();
        let api_errors = Family::default();
        let rate_limited = Family::default();
        let retries = Family::default();
        let outbox_depth = Gauge::default();
        let outbox_oldest_age = Gauge::<f64, AtomicU64>::default();
        let dead_letters = Gauge::default();
        let store_writable = Gauge::default();
        let store_write_failures = Counter::default();
        let retention_deleted = Family::default();
        let reloads = Family::default();
        let reload_compiles = Counter::default();
        let revision = Family::default();
        let turn_latency = Histogram::new(TURN_LATENCY_BUCKETS);
        let action_latency = Histogram::new(ACTION_LATENCY_BUCKETS);
        let http: Family<HttpLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(HTTP_LATENCY_BUCKETS));

        // `l3map_build_info{version,revision} 1`: which build is running,
        // to join on and to see a rollout progress.
        registry.register(
            "l3map_build",
            "The l3map build running (always 1): its version and the git commit it was built from",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                revision: label(BUILD_REVISION),
            }),
        );

        // Counter names go in without `_total`: the encoder appends it.
        registry.register(
            "l3map_events",
            "Events received, by source (webhook, zendesk_poll, salesforce_poll, agent)",
            events.clone(),
        );
        registry.register(
            "l3map_events_duplicate",
            "Events dropped because the inbox had already seen them, by source",
            duplicates.clone(),
        );
        registry.register(
            "l3map_events_rejected",
            "Events refused before evaluation, by source and reason (unsigned, bad_signature, replayed, malformed, ticket_not_found, unauthorized, busy, body_timeout)",
            rejected.clone(),
        );
        registry.register(
            "l3map_actions",
            "Actions by kind and result: applied, failed (will retry), parked, requeued (back from an outage park), or refused (a change the mappings refused when its event was decided)",
            actions.clone(),
        );
        registry.register(
            "l3map_api_calls",
            "Calls to the Zendesk and Salesforce APIs, by connection and outcome (ok, error)",
            api_calls.clone(),
        );
        registry.register(
            "l3map_api_errors",
            "Failed API calls by connection and error class (auth, permission, not_found, validation, rate_limited, transient, unconfirmed, ...)",
            api_errors.clone(),
        );
        registry.register(
            "l3map_api_429",
            "HTTP 429 responses, by connection",
            rate_limited.clone(),
        );
        registry.register(
            "l3map_retries",
            "API calls retried after a retryable failure, by connection",
            retries.clone(),
        );
        registry.register(
            "l3map_outbox_depth",
            "Actions in the outbox not yet applied",
            outbox_depth.clone(),
        );
        registry.register_with_unit(
            "l3map_outbox_oldest_age",
            "Age of the oldest action still in the outbox (0 when empty)",
            Unit::Seconds,
            outbox_oldest_age.clone(),
        );
        registry.register(
            "l3map_outbox_dead_letters",
            "Actions given up on and parked for an operator",
            dead_letters.clone(),
        );
        registry.register(
            "l3map_store_writable",
            "1 while the state store takes writes, 0 after a failed write until one succeeds (/healthz answers 503 meanwhile)",
            store_writable.clone(),
        );
        registry.register(
            "l3map_store_write_failures",
            "Write transactions on the state store that failed (disk full, I/O error, lock timeout)",
            store_write_failures.clone(),
        );
        registry.register(
            "l3map_retention_deleted",
            "Rows deleted by retention, by what (events, done_actions)",
            retention_deleted.clone(),
        );
        registry.register(
            "l3map_reloads",
            "Hot reloads of the mappings, by result (ok, failed)",
            reloads.clone(),
        );
        registry.register(
            "l3map_reload_compiles",
            "Compiles of the mappings by hot reload (a save whose bytes are unchanged compiles nothing)",
            reload_compiles.clone(),
        );
        registry.register(
            "l3map_mappings_revision_info",
            "The revision of the compiled mappings in use (always 1, on the current revision only)",
            revision.clone(),
        );
        registry.register_with_unit(
            "l3map_turn_latency",
            "Agent turns, from the request to the answer (Zendesk read, decision and store write included)",
            Unit::Seconds,
            turn_latency.clone(),
        );
        registry.register_with_unit(
            "l3map_action_latency",
            "Time from an action being decided to it being applied",
            Unit::Seconds,
            action_latency.clone(),
        );
        registry.register_with_unit(
            "l3map_http_request_duration",
            "Requests to the runtime's own HTTP API (webhooks, agent API, health, metrics), from the request to its response's head, by route template, method and status class",
            Unit::Seconds,
            http.clone(),
        );

        let m = Metrics(Arc::new(Inner {
            registry,
            events,
            duplicates,
            rejected,
            actions,
            api_calls,
            api_errors,
            rate_limited,
            retries,
            outbox_depth,
            outbox_oldest_age,
            dead_letters,
            store_writable,
            store_write_failures,
            retention_deleted,
            store_sync: Mutex::new(()),
            reloads,
            reload_compiles,
            revision,
            turn_latency,
            action_latency,
            http,
            revision_swap: Mutex::new(()),
        }));
        m.known_at_zero();
        m
    }

    /// Creates every series whose label values are known before anything
    /// happens, at 0 (Prometheus' advice: a series that appears only on
    /// its first increment makes `rate()` and absence alerts blind to it).
    fn known_at_zero(&self) {
        let i = &self.0;
        for source in SOURCES {
            let s = SourceLabels {
                source: source.into(),
            };
            drop(i.events.get_or_create(&s));
            drop(i.duplicates.get_or_create(&s));
        }
        for (source, reasons) in REJECTED {
            for reason in reasons {
                drop(i.rejected.get_or_create(&RejectedLabels {
                    source: source.into(),
                    reason: (*reason).into(),
                }));
            }
        }
        for kind in ACTION_KINDS {
            for result in ACTION_RESULTS {
                drop(i.actions.get_or_create(&ActionLabels {
                    kind: kind.into(),
                    result: result.into(),
                }));
            }
        }
        for what in ["events", "done_actions"] {
            drop(
                i.retention_deleted
                    .get_or_create(&WhatLabels { what: what.into() }),
            );
        }
        for result in ["ok", "failed"] {
            drop(i.reloads.get_or_create(&ResultLabels {
                result: result.into(),
            }));
        }
        for (route, method) in HTTP_ROUTES {
            for status in HTTP_STATUS_CLASSES {
                drop(i.http.get_or_create(&HttpLabels {
                    route: route.into(),
                    method: method.into(),
                    status: status.into(),
                }));
            }
        }
    }

    /// Creates a connection's series at 0: `l3map_api_calls_total`
    /// (ok, error), `l3map_api_errors_total` (every kind),
    /// `l3map_api_429_total` and `l3map_retries_total`. `name` comes from
    /// the mappings.
    pub fn connection(&self, name: &str) {
        let i = &self.0;
        for outcome in ["ok", "error"] {
            drop(i.api_calls.get_or_create(&CallLabels {
                connection: label(name),
                outcome: outcome.into(),
            }));
        }
        for kind in API_ERROR_KINDS {
            drop(i.api_errors.get_or_create(&ErrorLabels {
                connection: label(name),
                kind: kind.into(),
            }));
        }
        let c = ConnectionLabels {
            connection: label(name),
        };
        drop(i.rate_limited.get_or_create(&c));
        drop(i.retries.get_or_create(&c));
    }

    /// `l3map_http_request_duration_seconds{route,method,status}`: one
    /// request to the runtime's own API. `route` is the matched route's
    /// template (`/v1/context/{ticket}`), never the path; anything not in
    /// [`HTTP_ROUTES`] is `other`, and a method other than GET, HEAD or
    /// POST is `other`, so no client can add series.
    pub fn http_request(&self, route: Option<&str>, method: &str, status: u16, seconds: f64) {
        let route = route
            .and_then(|r| HTTP_ROUTES.iter().find(|(known, _)| *known == r))
            .map_or("other", |(known, _)| known);
        let method = match method {
            "GET" | "HEAD" | "POST" => method,
            _ => "other",
        };
        let status = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.0
            .http
            .get_or_create(&HttpLabels {
                route: route.into(),
                method: method.into(),
                status: status.into(),
            })
            .observe(non_negative(seconds));
    }

    /// `l3map_events_total{source}`; source: webhook, zendesk_poll,
    /// salesforce_poll, agent.
    pub fn events_in(&self, source: &str) {
        self.0
            .events
            .get_or_create(&SourceLabels {
                source: label(source),
            })
            .inc();
    }

    /// `l3map_events_duplicate_total{source}`.
    pub fn event_duplicate(&self, source: &str) {
        self.0
            .duplicates
            .get_or_create(&SourceLabels {
                source: label(source),
            })
            .inc();
    }

    /// `l3map_events_rejected_total{source,reason}`; reason: bad_signature,
    /// replayed, malformed, ticket_not_found (a webhook for a ticket the
    /// API answers 404 for).
    pub fn event_rejected(&self, source: &str, reason: &str) {
        self.0
            .rejected
            .get_or_create(&RejectedLabels {
                source: label(source),
                reason: label(reason),
            })
            .inc();
    }

    /// `l3map_actions_total{kind,result}`; kind: set_status, set_field,
    /// comment, assign_group, normalize_sku; result: applied, failed,
    /// parked, requeued (by the workers), or refused (a change the
    /// mappings refused when the event was decided, by the engine).
    pub fn action(&self, kind: &str, result: &str) {
        self.0
            .actions
            .get_or_create(&ActionLabels {
                kind: label(kind),
                result: label(result),
            })
            .inc();
    }

    /// `l3map_api_calls_total{connection,outcome}`; outcome: ok, error.
    pub fn api_call(&self, connection: &str, outcome: &str) {
        self.0
            .api_calls
            .get_or_create(&CallLabels {
                connection: label(connection),
                outcome: label(outcome),
            })
            .inc();
    }

    /// `l3map_api_errors_total{connection,kind}`; kind: the error class
    /// (auth, permission, not_found, validation, rate_limited, transient,
    /// unconfirmed, ...), never the error's message.
    pub fn api_error(&self, connection: &str, kind: &str) {
        self.0
            .api_errors
            .get_or_create(&ErrorLabels {
                connection: label(connection),
                kind: label(kind),
            })
            .inc();
    }

    /// `l3map_api_429_total{connection}`.
    pub fn rate_limited(&self, connection: &str) {
        self.0
            .rate_limited
            .get_or_create(&ConnectionLabels {
                connection: label(connection),
            })
            .inc();
    }

    /// `l3map_retries_total{connection}`.
    pub fn retry(&self, connection: &str) {
        self.0
            .retries
            .get_or_create(&ConnectionLabels {
                connection: label(connection),
            })
            .inc();
    }

    /// `l3map_outbox_depth` and `l3map_outbox_oldest_age_seconds`.
    pub fn set_outbox(&self, depth: i64, oldest_age_secs: f64) {
        self.0.outbox_depth.set(depth);
        self.0.outbox_oldest_age.set(oldest_age_secs);
    }

    /// `l3map_outbox_dead_letters`.
    pub fn set_dead_letters(&self, n: i64) {
        self.0.dead_letters.set(n);
    }

    /// `l3map_store_writable`, `l3map_store_write_failures_total` and
    /// `l3map_retention_deleted_total{what}` from the store's own totals.
    pub fn set_store(
        &self,
        writable: bool,
        write_failures: u64,
        deleted: &crate::runtime::store::Deleted,
    ) {
        use std::sync::atomic::Ordering;
        let _one = self.0.store_sync.lock().unwrap_or_else(|e| e.into_inner());
        self.0.store_writable.set(i64::from(writable));
        let up_to = |c: &Counter, total: u64| {
            let now = c.get();
            if total > now {
                c.inc_by(total - now);
            }
        };
        up_to(&self.0.store_write_failures, write_failures);
        for (what, n) in [
            ("events", deleted.events.load(Ordering::Relaxed)),
            ("done_actions", deleted.done_actions.load(Ordering::Relaxed)),
        ] {
            up_to(
                &self
                    .0
                    .retention_deleted
                    .get_or_create(&WhatLabels { what: label(what) }),
                n,
            );
        }
    }

    /// `l3map_reloads_total{result}`; result: ok, failed.
    pub fn reload(&self, result: &str) {
        self.0
            .reloads
            .get_or_create(&ResultLabels {
                result: label(result),
            })
            .inc();
    }

    /// `l3map_reload_compiles_total`: one more compile by hot reload.
    pub fn reload_compiled(&self) {
        self.0.reload_compiles.inc();
    }

    /// `l3map_mappings_revision_info{revision} 1`, for `revision` only: a
    /// stale revision left at 1 would make a dashboard join on it report
    /// two mappings in force.
    pub fn set_revision_info(&self, revision: &str) {
        let _swap = self.revision_swap();
        self.0.revision.clear();
        self.0
            .revision
            .get_or_create(&RevisionLabels {
                revision: label(revision),
            })
            .set(1);
    }

    /// `l3map_turn_latency_seconds`: an agent turn, request → answer.
    pub fn turn_latency(&self, seconds: f64) {
        self.0.turn_latency.observe(non_negative(seconds));
    }

    /// `l3map_action_latency_seconds`: action decided → applied.
    pub fn action_latency(&self, seconds: f64) {
        // Decided and applied can be on either side of a restart, so this
        // is measured on the wall clock, which can step back; a negative
        // sample would pull `_sum` down.
        self.0.action_latency.observe(non_negative(seconds));
    }

    /// The whole exposition, in the format [`CONTENT_TYPE`] names, ending
    /// with `# EOF`.
    pub fn render(&self) -> String {
        let _swap = self.revision_swap();
        let mut out = String::new();
        // Writing into a String cannot fail, and our label sets encode
        // infallibly, so an error here is a bug in the encoder.
        encode(&mut out, &self.0.registry).expect("encoding metrics into a String");
        out
    }

    /// The value of one counter sample as [`render`](Self::render) shows
    /// it, for tests and the CLI. `name` is the exposition name, with
    /// `_total` (`l3map_api_429_total`); `labels` must be the sample's
    /// whole label set, in any order. A series not in the exposition
    /// (a label value nobody used) reads 0, which is what it counts.
    pub fn counter_value(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let mut want: Vec<(&str, &str)> = labels.to_vec();
        want.sort_unstable();
        let text = self.render();
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(parse_sample)
            .find(|sample| {
                let mut got: Vec<(&str, &str)> = sample
                    .labels
                    .iter()
                    .map(|(k, v)| (*k, v.as_ref()))
                    .collect();
                got.sort_unstable();
                sample.name == name && got == want
            })
            .and_then(|sample| sample.value.parse().ok())
            .unwrap_or(0)
    }

    /// The sum of a counter's samples whose labels include `labels` (the
    /// others free): `l3map_api_errors_total` of one connection, all kinds.
    pub fn counter_sum(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let text = self.render();
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(parse_sample)
            .filter(|sample| {
                sample.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| sample.labels.iter().any(|(sk, sv)| sk == k && sv == v))
            })
            .filter_map(|sample| sample.value.parse::<u64>().ok())
            .sum()
    }

    fn revision_swap(&self) -> MutexGuard<'_, ()> {
        // The guarded data is `()`, so a panic elsewhere while holding the
        // lock leaves nothing inconsistent behind.
        self.0
            .revision_swap
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// prometheus-client writes label values verbatim; a quote, backslash or
/// newline would corrupt the whole exposition, and one bad value must not
/// cost every other metric its scrape.
fn label(value: &str) -> String {
    if !value.contains(['\\', '"', '\n']) {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn non_negative(seconds: f64) -> f64 {
    // `max` also turns NaN into 0, which would otherwise poison `_sum`.
    seconds.max(0.0)
}

struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, Cow<'a, str>)>,
    value: &'a str,
}

/// One sample line: `name{k="v",...} value [# exemplar]`.
fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            inner = inner.strip_prefix(',').unwrap_or(inner);
            let eq = inner.find('=')?;
            let key = &inner[..eq];
            let quoted = inner[eq + 1..].strip_prefix('"')?;
            let (value, after) = unquote(quoted)?;
            labels.push((key, value));
            inner = after;
        }
    }
    let value = rest.split_whitespace().next()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The label value up to its closing quote, unescaped, and what follows.
fn unquote(s: &str) -> Option<(Cow<'_, str>, &str)> {
    let mut escaped = false;
    let mut needs_unescape = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => {
                escaped = true;
                needs_unescape = true;
            }
            '"' => {
                let raw = &s[..i];
                let value = if needs_unescape {
                    Cow::Owned(unescape(raw))
                } else {
                    Cow::Borrowed(raw)
                };
                return Some((value, &s[i + 1..]));
            }
            _ => {}
        }
    }
    None
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[track_caller]
    fn assert_line(m: &Metrics, line: &str) {
        let text = m.render();
        assert!(has_line(&text, line), "no line {line:?} in:\n{text}");
    }

    /// Calls every recording method once.
    fn exercise(m: &Metrics) {
        m.events_in("webhook");
        m.event_duplicate("webhook");
        m.event_rejected("webhook", "replayed");
        m.action("set_field", "failed");
        m.api_call("desk", "ok");
        m.api_error("desk", "transient");
        m.rate_limited("desk");
        m.retry("desk");
        m.set_outbox(1, 1.0);
        m.set_dead_letters(1);
        m.reload("ok");
        m.set_revision_info("r1");
        m.turn_latency(0.1);
        m.action_latency(0.1);
        let deleted = crate::runtime::store::Deleted::default();
        deleted
            .events
            .store(3, std::sync::atomic::Ordering::Relaxed);
        m.set_store(false, 2, &deleted);
    }

    #[test]
    fn a_fresh_registry_has_every_known_series_at_zero() {
        let m = Metrics::new();
        m.connection("desk");
        let text = m.render();
        assert!(text.ends_with("\n# EOF\n"), "{text}");
        for line in [
            "l3map_outbox_depth 0",
            "l3map_turn_latency_seconds_count 0",
            r#"l3map_events_total{source="agent"} 0"#,
            r#"l3map_events_duplicate_total{source="salesforce_poll"} 0"#,
            r#"l3map_events_rejected_total{source="webhook",reason="bad_signature"} 0"#,
            r#"l3map_actions_total{kind="set_status",result="refused"} 0"#,
            r#"l3map_actions_total{kind="normalize_sku",result="requeued"} 0"#,
            r#"l3map_retention_deleted_total{what="done_actions"} 0"#,
            r#"l3map_reloads_total{result="failed"} 0"#,
            r#"l3map_api_calls_total{connection="desk",outcome="error"} 0"#,
            r#"l3map_api_errors_total{connection="desk",kind="budget"} 0"#,
            r#"l3map_api_429_total{connection="desk"} 0"#,
            r#"l3map_retries_total{connection="desk"} 0"#,
            r#"l3map_http_request_duration_seconds_count{route="/v1/turns",method="POST",status="5xx"} 0"#,
        ] {
            assert!(has_line(&text, line), "no {line:?} in:\n{text}");
        }
        let build = text
            .lines()
            .find(|l| l.starts_with("l3map_build_info{"))
            .unwrap_or_else(|| panic!("no build info in:\n{text}"));
        assert!(
            build.starts_with(&format!(
                "l3map_build_info{{version=\"{}\",revision=\"",
                env!("CARGO_PKG_VERSION")
            )) && build.ends_with("\"} 1"),
            "{build}"
        );
        assert!(has_line(&text, "# TYPE l3map_build info"), "{text}");
    }

    #[test]
    fn http_labels_are_route_templates_from_a_fixed_set() {
        let m = Metrics::new();
        m.http_request(Some("/v1/context/{ticket}"), "GET", 200, 0.02);
        m.http_request(Some("/v1/turns"), "POST", 422, 0.01);
        // An unknown path, an odd method: one bounded series each.
        m.http_request(None, "PROPFIND", 404, 0.001);
        m.http_request(Some("/wp-admin/x.php"), "GET", 404, 0.001);
        let count = |labels: &str| {
            let line = format!("l3map_http_request_duration_seconds_count{{{labels}}} ");
            m.render()
                .lines()
                .find_map(|l| l.strip_prefix(&line).map(str::to_owned))
                .unwrap_or_else(|| panic!("no {line}"))
        };
        assert_eq!(
            count(r#"route="/v1/context/{ticket}",method="GET",status="2xx""#),
            "1"
        );
        assert_eq!(
            count(r#"route="/v1/turns",method="POST",status="4xx""#),
            "1"
        );
        assert_eq!(count(r#"route="other",method="other",status="4xx""#), "1");
        assert_eq!(count(r#"route="other",method="GET",status="4xx""#), "1");
        assert!(!m.render().contains("wp-admin"));
    }

    #[test]
    fn every_metric_has_help_and_type_and_the_text_parses() {
        let m = Metrics::new();
        exercise(&m);
        let text = m.render();
        assert!(text.ends_with("\n# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
        for (family, kind) in [
            ("l3map_events", "counter"),
            ("l3map_events_duplicate", "counter"),
            ("l3map_events_rejected", "counter"),
            ("l3map_actions", "counter"),
            ("l3map_api_calls", "counter"),
            ("l3map_api_errors", "counter"),
            ("l3map_api_429", "counter"),
            ("l3map_retries", "counter"),
            ("l3map_outbox_depth", "gauge"),
            ("l3map_outbox_oldest_age_seconds", "gauge"),
            ("l3map_outbox_dead_letters", "gauge"),
            ("l3map_reloads", "counter"),
            ("l3map_reload_compiles", "counter"),
            ("l3map_mappings_revision_info", "gauge"),
            ("l3map_turn_latency_seconds", "histogram"),
            ("l3map_action_latency_seconds", "histogram"),
            ("l3map_store_writable", "gauge"),
            ("l3map_store_write_failures", "counter"),
            ("l3map_retention_deleted", "counter"),
            ("l3map_build", "info"),
            ("l3map_http_request_duration_seconds", "histogram"),
        ] {
            let help = format!("# HELP {family} ");
            let line = text
                .lines()
                .find(|l| l.starts_with(&help))
                .unwrap_or_else(|| panic!("no help for {family} in:\n{text}"));
            assert!(line.len() > help.len() + 10, "thin help: {line}");
            assert!(
                has_line(&text, &format!("# TYPE {family} {kind}")),
                "{family} is not a {kind}"
            );
        }
        // 21 families, each HELP and TYPE, plus # EOF and four # UNIT.
        assert_eq!(text.lines().filter(|l| l.starts_with('#')).count(), 47);
        // The store's totals, brought up to by a scrape, never past them.
        assert!(has_line(&text, "l3map_store_writable 0"), "{text}");
        assert!(
            has_line(&text, "l3map_store_write_failures_total 2"),
            "{text}"
        );
        assert!(
            has_line(&text, "l3map_retention_deleted_total{what=\"events\"} 3"),
            "{text}"
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let sample = parse_sample(line).unwrap_or_else(|| panic!("unparsable {line:?}"));
            assert!(sample.name.starts_with("l3map_"), "{line}");
            assert!(sample.value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn counters_show_up_with_their_labels() {
        let m = Metrics::new();
        m.events_in("webhook");
        m.events_in("webhook");
        m.events_in("zendesk_poll");
        m.event_duplicate("salesforce_poll");
        m.event_rejected("webhook", "bad_signature");
        m.action("comment", "applied");
        m.action("comment", "applied");
        m.action("set_status", "refused");
        m.api_call("desk", "ok");
        m.api_call("desk", "error");
        m.api_error("desk", "rate_limited");
        m.rate_limited("desk");
        m.retry("crm");
        m.reload("ok");
        m.reload("failed");

        for line in [
            r#"l3map_events_total{source="webhook"} 2"#,
            r#"l3map_events_total{source="zendesk_poll"} 1"#,
            r#"l3map_events_duplicate_total{source="salesforce_poll"} 1"#,
            r#"l3map_events_rejected_total{source="webhook",reason="bad_signature"} 1"#,
            r#"l3map_actions_total{kind="comment",result="applied"} 2"#,
            r#"l3map_actions_total{kind="set_status",result="refused"} 1"#,
            r#"l3map_api_calls_total{connection="desk",outcome="ok"} 1"#,
            r#"l3map_api_calls_total{connection="desk",outcome="error"} 1"#,
            r#"l3map_api_errors_total{connection="desk",kind="rate_limited"} 1"#,
            r#"l3map_api_429_total{connection="desk"} 1"#,
            r#"l3map_retries_total{connection="crm"} 1"#,
            r#"l3map_reloads_total{result="ok"} 1"#,
            r#"l3map_reloads_total{result="failed"} 1"#,
        ] {
            assert_line(&m, line);
        }
    }

    #[test]
    fn gauges_show_the_last_value_set() {
        let m = Metrics::new();
        assert_line(&m, "l3map_outbox_depth 0");
        m.set_outbox(7, 12.5);
        m.set_dead_letters(3);
        assert_line(&m, "l3map_outbox_depth 7");
        assert_line(&m, "l3map_outbox_oldest_age_seconds 12.5");
        assert_line(&m, "l3map_outbox_dead_letters 3");
        m.set_outbox(0, 0.0);
        m.set_dead_letters(0);
        assert_line(&m, "l3map_outbox_depth 0");
        assert_line(&m, "l3map_outbox_oldest_age_seconds 0.0");
        assert_line(&m, "l3map_outbox_dead_letters 0");
        assert!(m
            .render()
            .contains("# UNIT l3map_outbox_oldest_age_seconds seconds\n"));
    }

    #[test]
    fn revision_gauge_keeps_only_the_current_revision() {
        let m = Metrics::new();
        m.set_revision_info("r1");
        assert_line(&m, r#"l3map_mappings_revision_info{revision="r1"} 1"#);
        m.set_revision_info("r2");
        let text = m.render();
        assert!(has_line(
            &text,
            r#"l3map_mappings_revision_info{revision="r2"} 1"#
        ));
        assert!(!text.contains(r#"revision="r1""#), "{text}");
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("l3map_mappings_revision_info{"))
                .count(),
            1
        );
    }

    #[test]
    fn turn_latency_buckets_bracket_the_three_second_target() {
        let m = Metrics::new();
        m.turn_latency(0.2);
        m.turn_latency(2.5);
        m.turn_latency(4.0);
        for line in [
            "l3map_turn_latency_seconds_count 3",
            "l3map_turn_latency_seconds_sum 6.7",
            r#"l3map_turn_latency_seconds_bucket{le="0.005"} 0"#,
            r#"l3map_turn_latency_seconds_bucket{le="0.25"} 1"#,
            r#"l3map_turn_latency_seconds_bucket{le="2.0"} 1"#,
            r#"l3map_turn_latency_seconds_bucket{le="3.0"} 2"#,
            r#"l3map_turn_latency_seconds_bucket{le="5.0"} 3"#,
            r#"l3map_turn_latency_seconds_bucket{le="10.0"} 3"#,
            r#"l3map_turn_latency_seconds_bucket{le="+Inf"} 3"#,
        ] {
            assert_line(&m, line);
        }
        let text = m.render();
        let buckets: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("l3map_turn_latency_seconds_bucket"))
            .collect();
        assert_eq!(buckets.len(), TURN_LATENCY_BUCKETS.len() + 1, "{text}");
    }

    #[test]
    fn action_latency_goes_up_to_a_minute_and_ignores_clock_steps_back() {
        let m = Metrics::new();
        m.action_latency(0.005);
        m.action_latency(45.0);
        m.action_latency(-3.0);
        m.action_latency(f64::NAN);
        for line in [
            "l3map_action_latency_seconds_count 4",
            "l3map_action_latency_seconds_sum 45.005",
            r#"l3map_action_latency_seconds_bucket{le="0.01"} 3"#,
            r#"l3map_action_latency_seconds_bucket{le="30.0"} 3"#,
            r#"l3map_action_latency_seconds_bucket{le="60.0"} 4"#,
            r#"l3map_action_latency_seconds_bucket{le="+Inf"} 4"#,
        ] {
            assert_line(&m, line);
        }
    }

    #[test]
    fn counter_value_reads_back_what_was_counted() {
        let m = Metrics::new();
        assert_eq!(
            m.counter_value("l3map_api_429_total", &[("connection", "desk")]),
            0
        );
        m.rate_limited("desk");
        m.rate_limited("desk");
        m.rate_limited("crm");
        m.action("comment", "applied");
        assert_eq!(
            m.counter_value("l3map_api_429_total", &[("connection", "desk")]),
            2
        );
        assert_eq!(
            m.counter_value("l3map_api_429_total", &[("connection", "crm")]),
            1
        );
        // Label order does not matter; a partial label set is not a match.
        assert_eq!(
            m.counter_value(
                "l3map_actions_total",
                &[("result", "applied"), ("kind", "comment")]
            ),
            1
        );
        assert_eq!(
            m.counter_value("l3map_actions_total", &[("kind", "comment")]),
            0
        );
        assert_eq!(
            m.counter_value("l3map_api_429", &[("connection", "desk")]),
            0
        );
    }

    #[test]
    fn clones_share_state() {
        let m = Metrics::new();
        let c = m.clone();
        c.events_in("agent");
        c.set_revision_info("abc");
        m.events_in("agent");
        assert_eq!(
            m.counter_value("l3map_events_total", &[("source", "agent")]),
            2
        );
        assert_eq!(m.render(), c.render());
        assert_line(&m, r#"l3map_mappings_revision_info{revision="abc"} 1"#);
    }

    #[test]
    fn a_stray_quote_does_not_break_the_exposition() {
        let m = Metrics::new();
        m.api_error("desk", "odd\"kind\\\n");
        assert_line(
            &m,
            r#"l3map_api_errors_total{connection="desk",kind="odd\"kind\\\n"} 1"#,
        );
        assert_eq!(
            m.counter_value(
                "l3map_api_errors_total",
                &[("connection", "desk"), ("kind", "odd\"kind\\\n")]
            ),
            1
        );
    }

    #[test]
    fn content_type_names_openmetrics() {
        assert!(CONTENT_TYPE.starts_with("application/openmetrics-text; version=1.0.0"));
    }
}
