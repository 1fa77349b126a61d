//! Reading the counters back, for the runtime's own reports (`l3map e2e`'s
//! API cost and load step): straight from the typed handles the recording
//! methods write, never by rendering and parsing the exposition.

use super::counts::ApiCounts;
use super::labels::{label, CallLabels, ConnectionLabels, ErrorLabels};
use super::names::API_ERROR_KINDS;
use super::Metrics;

impl Metrics {
    /// One connection's API counters. Errors are added up over
    /// [`API_ERROR_KINDS`](super::API_ERROR_KINDS), every class the
    /// runtime records.
    pub fn api_counts(&self, connection: &str) -> ApiCounts {
        let f = &self.0;
        let connection = label(connection);
        let calls = ["ok", "error"]
            .into_iter()
            .filter_map(|outcome| {
                f.api_calls
                    .get(&CallLabels {
                        connection: connection.clone(),
                        outcome: outcome.into(),
                    })
                    .map(|c| c.get())
            })
            .sum();
        let errors = API_ERROR_KINDS
            .into_iter()
            .filter_map(|kind| {
                f.api_errors
                    .get(&ErrorLabels {
                        connection: connection.clone(),
                        kind: kind.into(),
                    })
                    .map(|c| c.get())
            })
            .sum();
        let c = ConnectionLabels { connection };
        ApiCounts {
            calls,
            errors,
            rate_limited: f.rate_limited.get(&c).map_or(0, |c| c.get()),
            retries: f.retries.get(&c).map_or(0, |c| c.get()),
        }
    }

    /// Every connection's API counters added up: the connections
    /// [`connection`](Self::connection) created series for, which is every
    /// client the runtime observes (`stack::observe`).
    pub fn api_totals(&self) -> ApiCounts {
        let names: Vec<String> = self
            .0
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        names
            .iter()
            .map(|n| self.api_counts(n))
            .fold(ApiCounts::default(), |a, b| a + b)
    }
}
