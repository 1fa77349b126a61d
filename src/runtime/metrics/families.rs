//! The registry and every metric in it, held as typed handles: recording
//! (`record.rs`, `http.rs`) and reading (`read.rs`) go to these fields,
//! and `/metrics` encodes the registry they are registered in. A new
//! metric is a field here, its registration in [`Families::new`], and a
//! recording method.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use super::labels::{
    label, ActionLabels, BuildLabels, CallLabels, ConnectionLabels, ErrorLabels, HttpLabels,
    RejectedLabels, ResultLabels, RevisionLabels, SourceLabels, WhatLabels,
};
use super::names::{
    ACTION_KINDS, ACTION_LATENCY_BUCKETS, ACTION_RESULTS, API_ERROR_KINDS, BUILD_REVISION,
    HTTP_LATENCY_BUCKETS, HTTP_ROUTES, HTTP_STATUS_CLASSES, REJECTED, SOURCES,
    TURN_LATENCY_BUCKETS,
};

#[derive(Debug)]
pub(super) struct Families {
    pub(super) registry: Registry,
    pub(super) events: Family<SourceLabels, Counter>,
    pub(super) duplicates: Family<SourceLabels, Counter>,
    pub(super) rejected: Family<RejectedLabels, Counter>,
    pub(super) actions: Family<ActionLabels, Counter>,
    pub(super) api_calls: Family<CallLabels, Counter>,
    pub(super) api_errors: Family<ErrorLabels, Counter>,
    pub(super) rate_limited: Family<ConnectionLabels, Counter>,
    pub(super) retries: Family<ConnectionLabels, Counter>,
    pub(super) outbox_depth: Gauge,
    pub(super) outbox_oldest_age: Gauge<f64, AtomicU64>,
    pub(super) dead_letters: Gauge,
    pub(super) store_writable: Gauge,
    pub(super) store_write_failures: Counter,
    pub(super) retention_deleted: Family<WhatLabels, Counter>,
    // The store counts these itself (it knows nothing of metrics); a scrape
    // brings the counters up to its totals, one scrape at a time.
    pub(super) store_sync: Mutex<()>,
    pub(super) reloads: Family<ResultLabels, Counter>,
    pub(super) reload_compiles: Counter,
    pub(super) fanout_changes: Family<ResultLabels, Counter>,
    pub(super) fanout_tickets: Counter,
    pub(super) fanout_new_events: Counter,
    pub(super) batches: Family<ResultLabels, Counter>,
    pub(super) batch_tickets: Family<ResultLabels, Counter>,
    pub(super) revision: Family<RevisionLabels, Gauge>,
    pub(super) turn_latency: Histogram,
    pub(super) action_latency: Histogram,
    pub(super) http: Family<HttpLabels, Histogram, fn() -> Histogram>,
    // Swapping the revision is clear-then-set; holding this across the swap
    // and across every render keeps a scrape from seeing no revision, and
    // two concurrent reloads from leaving two.
    pub(super) revision_swap: Mutex<()>,
    /// The connections [`Families::connection`] created series for: the
    /// label values the API readers add up (a family cannot be iterated).
    pub(super) connections: Mutex<BTreeSet<String>>,
    /// Change Data Capture's series (`cdc.rs`).
    pub(super) cdc: super::cdc::CdcFamilies,
    /// Record links' series (`links.rs`).
    pub(super) links: super::links::LinkFamilies,
    /// The MCP server's series (`mcp.rs`).
    pub(super) mcp: super::mcp::McpFamilies,
    /// OAuth grants' series (`credentials.rs`).
    pub(super) credentials: super::credentials::CredentialFamilies,
}

impl Families {
    /// Every metric, registered, with every series whose label values are
    /// known ahead at 0.
    pub(super) fn new() -> Families {
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
        let fanout_changes = Family::default();
        let fanout_tickets = Counter::default();
        let fanout_new_events = Counter::default();
        let batches = Family::default();
        let batch_tickets = Family::default();
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
            "Events refused before evaluation, by source and reason (unsigned, bad_signature, replayed, malformed, ticket_not_found, links_unavailable, unauthorized, busy, body_timeout)",
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
            "l3map_fanout_changes",
            "Salesforce changes taken by the fan-out, by result (applied, own, unlinked, deleted: the record is gone, refused: a lookup refused for good, passed over; failed: tried again)",
            fanout_changes.clone(),
        );
        registry.register(
            "l3map_fanout_tickets",
            "Tickets Salesforce changes reached through links (each one event)",
            fanout_tickets.clone(),
        );
        registry.register(
            "l3map_fanout_new_events",
            "Events the fan-out recorded for the first time (a replayed change adds none)",
            fanout_new_events.clone(),
        );
        registry.register(
            "l3map_batches",
            "Zendesk update_many jobs, by result (completed, failed, unknown)",
            batches.clone(),
        );
        registry.register(
            "l3map_batch_tickets",
            "Tickets in Zendesk update_many jobs, by result (applied, retried, parked)",
            batch_tickets.clone(),
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
        let cdc = super::cdc::CdcFamilies::register(&mut registry);
        let links = super::links::LinkFamilies::register(&mut registry);
        let mcp = super::mcp::McpFamilies::register(&mut registry);
        let credentials = super::credentials::CredentialFamilies::register(&mut registry);
        let families = Families {
            cdc,
            links,
            mcp,
            credentials,
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
            fanout_changes,
            fanout_tickets,
            fanout_new_events,
            batches,
            batch_tickets,
            revision,
            turn_latency,
            action_latency,
            http,
            revision_swap: Mutex::new(()),
            connections: Mutex::new(BTreeSet::new()),
        };
        families.known_at_zero();
        families
    }

    /// Creates every series whose label values are known before anything
    /// happens, at 0 (Prometheus' advice: a series that appears only on
    /// its first increment makes `rate()` and absence alerts blind to it).
    fn known_at_zero(&self) {
        let i = self;
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
    pub(super) fn connection(&self, name: &str) {
        let i = self;
        i.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned());
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
}
