//! Singleton leases' series (a fleet on PostgreSQL: each poll source and
//! each Change Data Capture channel is worked by one replica at a time,
//! docs/RUNTIME.md, "Running several replicas"). A lease that keeps moving
//! between replicas is churn: every take-over re-reads a cursor, restarts
//! a subscription, and may repeat a poll round. Registered from `mod.rs`;
//! recorded by whoever asks the store for a lease (`runtime::poll`,
//! `runtime::cdc`), with the answer it got.
//!
//! Only a fleet's leases are recorded: see [`Metrics::lease_seen`].
//! The lease name is the label (`zendesk_poll:desk`, a channel's replay
//! key): built from connection and channel names of the mappings and
//! `l3map.toml`, so the series stay few.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::labels::label;
use super::Metrics;

/// `l3map_lease_changes_total{change}`: `taken` (this replica took a lease
/// it did not hold: at its start, or over from a replica that stopped
/// renewing it), `lost` (a lease it held went to another replica, or was
/// given up to spread the fleet's leases).
pub const LEASE_CHANGES: [&str; 2] = ["taken", "lost"];

/// The epoch of every lease on the one-process store.
const SINGLE_PROCESS_EPOCH: i64 = 0;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    lease: String,
    change: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseLabels {
    lease: String,
}

#[derive(Debug, Default)]
pub(super) struct LeaseFamilies {
    changes: Family<ChangeLabels, Counter>,
    held: Family<LeaseLabels, Gauge>,
    /// The epoch this process last held each lease under: a take-over is
    /// a new epoch (the store's fencing token), a renewal the same one.
    epochs: Mutex<HashMap<String, i64>>,
}

impl LeaseFamilies {
    pub(super) fn register(registry: &mut Registry) -> LeaseFamilies {
        let f = LeaseFamilies::default();
        registry.register(
            "l3map_lease_changes",
            "Singleton leases (a poll source, a CDC channel) this replica took (taken: at start, or over from a replica that stopped renewing) or lost (taken by another replica, or given up to spread the fleet's leases), by lease",
            f.changes.clone(),
        );
        registry.register(
            "l3map_lease_held",
            "1 while this replica holds the singleton lease, else 0 (summed over the fleet: 1 per lease)",
            f.held.clone(),
        );
        f
    }
}

impl Metrics {
    /// What the store answered when this process asked for (or renewed)
    /// the lease `name`: `Some(epoch)` held, `None` held by another
    /// replica (or given up). Counts a change when the answer differs
    /// from the last one; a store that could not answer is not recorded.
    ///
    /// The one-process store (SQLite) answers every lease with epoch 0,
    /// for good (`store/sqlite/lock.rs`; PostgreSQL's epochs come from a
    /// sequence starting at 1): it has nothing to churn, so its answers
    /// are not recorded and these series exist in a fleet only.
    pub fn lease_seen(&self, name: &str, held: Option<i64>) {
        if held == Some(SINGLE_PROCESS_EPOCH) {
            return;
        }
        let f = &self.1;
        let before = {
            let mut epochs = f.epochs.lock().unwrap_or_else(|e| e.into_inner());
            match held {
                Some(epoch) => epochs.insert(name.to_owned(), epoch),
                None => epochs.remove(name),
            }
        };
        let lease = label(name);
        let change = match (before, held) {
            (Some(was), Some(now)) if was == now => None,
            // Another epoch under the same holder: lost in between (and
            // taken back) without this process seeing the loss.
            (Some(_), Some(_)) => Some(["lost", "taken"].as_slice()),
            (None, Some(_)) => Some(["taken"].as_slice()),
            (Some(_), None) => Some(["lost"].as_slice()),
            (None, None) => None,
        };
        for change in change.unwrap_or_default() {
            f.changes
                .get_or_create(&ChangeLabels {
                    lease: lease.clone(),
                    change: (*change).into(),
                })
                .inc();
        }
        f.held
            .get_or_create(&LeaseLabels {
                lease: lease.clone(),
            })
            .set(i64::from(held.is_some()));
        // Both changes exist from a lease's first answer, so `increase()`
        // sees the first take-over.
        for change in LEASE_CHANGES {
            drop(f.changes.get_or_create(&ChangeLabels {
                lease: lease.clone(),
                change: change.into(),
            }));
        }
    }

    /// How often this process took (or lost) `name` (tests and reports).
    pub fn lease_changes(&self, name: &str, change: &str) -> u64 {
        self.1
            .changes
            .get(&ChangeLabels {
                lease: label(name),
                change: change.into(),
            })
            .map_or(0, |c| c.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_overs_are_counted_and_renewals_are_not() {
        let m = Metrics::new();
        // SQLite: one process holds every lease under epoch 0; no series.
        m.lease_seen("zendesk_poll:desk", Some(0));
        assert!(!m.render().contains("l3map_lease"), "{}", m.render());

        // Taken at start, renewed twice under the same epoch.
        for _ in 0..3 {
            m.lease_seen("zendesk_poll:desk", Some(7));
        }
        assert_eq!(m.lease_changes("zendesk_poll:desk", "taken"), 1);
        assert_eq!(m.lease_changes("zendesk_poll:desk", "lost"), 0);
        // Another replica holds it now; asking again changes nothing.
        m.lease_seen("zendesk_poll:desk", None);
        m.lease_seen("zendesk_poll:desk", None);
        assert_eq!(m.lease_changes("zendesk_poll:desk", "lost"), 1);
        let text = m.render();
        assert!(
            text.contains(r#"l3map_lease_held{lease="zendesk_poll:desk"} 0"#),
            "{text}"
        );
        // Taken back under a new epoch; then a new epoch with no loss seen
        // in between is a loss and a take-over.
        m.lease_seen("zendesk_poll:desk", Some(9));
        m.lease_seen("zendesk_poll:desk", Some(12));
        assert_eq!(m.lease_changes("zendesk_poll:desk", "taken"), 3);
        assert_eq!(m.lease_changes("zendesk_poll:desk", "lost"), 2);
        let text = m.render();
        assert!(
            text.contains("# TYPE l3map_lease_changes counter"),
            "{text}"
        );
        assert!(text.contains("# TYPE l3map_lease_held gauge"), "{text}");
        for line in [
            r#"l3map_lease_changes_total{lease="zendesk_poll:desk",change="taken"} 3"#,
            r#"l3map_lease_changes_total{lease="zendesk_poll:desk",change="lost"} 2"#,
            r#"l3map_lease_held{lease="zendesk_poll:desk"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }

        // A lease never held (another replica has had it all along) has
        // its series at 0.
        m.lease_seen("salesforce_poll:crm", None);
        let text = m.render();
        for line in [
            r#"l3map_lease_changes_total{lease="salesforce_poll:crm",change="taken"} 0"#,
            r#"l3map_lease_held{lease="salesforce_poll:crm"} 0"#,
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
