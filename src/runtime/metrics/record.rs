//! Recording: one method per metric, each taking label values from the
//! fixed sets of `names.rs` (or a connection name from the mappings).

use prometheus_client::metrics::counter::Counter;

use super::labels::{
    label, non_negative, ActionLabels, CallLabels, ConnectionLabels, ErrorLabels, RejectedLabels,
    ResultLabels, RevisionLabels, SourceLabels, WhatLabels,
};
use super::Metrics;

impl Metrics {
    /// Creates a connection's series at 0: `l3map_api_calls_total`
    /// (ok, error), `l3map_api_errors_total` (every kind),
    /// `l3map_api_429_total` and `l3map_retries_total`. `name` comes from
    /// the mappings.
    pub fn connection(&self, name: &str) {
        self.0.connection(name);
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

    /// `l3map_fanout_changes_total{result}`; result: applied, own (l3map's
    /// own write, skipped), unlinked (no link reaches a ticket), deleted
    /// (the record was deleted: no values to decide on), failed.
    pub fn fanout_change(&self, result: &str) {
        self.0
            .fanout_changes
            .get_or_create(&ResultLabels {
                result: label(result),
            })
            .inc();
    }

    /// `l3map_fanout_tickets_total` and `l3map_fanout_new_events_total`.
    pub fn fanout_tickets(&self, tickets: u64, new_events: u64) {
        self.0.fanout_tickets.inc_by(tickets);
        self.0.fanout_new_events.inc_by(new_events);
    }

    /// `l3map_batches_total{result}`; result: completed, failed (the job
    /// or its request failed), unknown (the outcome could not be read).
    pub fn batch(&self, result: &str) {
        self.0
            .batches
            .get_or_create(&ResultLabels {
                result: label(result),
            })
            .inc();
    }

    /// `l3map_batch_tickets_total{result}`; result: applied, retried, parked.
    pub fn batch_tickets(&self, result: &str, n: u64) {
        self.0
            .batch_tickets
            .get_or_create(&ResultLabels {
                result: label(result),
            })
            .inc_by(n);
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
}
