//! `/metrics` for `l3map run`: what came in, what was applied, what the
//! platforms said back, and how far behind the outbox is, in the
//! OpenMetrics text format Prometheus scrapes.
//!
//! Every label value is chosen by our own code (an event source, an action
//! kind, an error class, a connection name declared in the mappings, the
//! compiled revision), never copied from an event or an API response: each
//! label value is a separate time series in Prometheus, so a ticket id or an
//! error message as a label would grow the series count without bound.
//!
//! Where each part lives: `names.rs` the fixed label values and buckets;
//! `labels.rs` the label sets; `families.rs` the registry and every metric
//! in it as a typed handle; `record.rs` and `http.rs` the recording
//! methods; `read.rs` reading counters back for the runtime's own reports (into
//! `counts.rs`);
//! `scrape.rs` reading the rendered text, as a scraper (and a test) does;
//! `leases.rs` the fleet's singleton leases, registered here beside the
//! families.

use std::sync::{Arc, MutexGuard};

use prometheus_client::encoding::text::encode;

mod cdc;
mod counts;
mod credentials;
mod families;
mod http;
mod labels;
mod leases;
mod links;
mod mcp;
mod names;
mod read;
mod record;
mod scrape;

pub use cdc::CDC_OUTCOMES;
pub use counts::ApiCounts;
pub use credentials::CREDENTIAL_REFRESH_RESULTS;
use families::Families;
pub use leases::LEASE_CHANGES;
pub use links::LINK_LOOKUP_RESULTS;
pub use mcp::MCP_RESULTS;
pub use names::{
    ACTION_KINDS, ACTION_LATENCY_BUCKETS, ACTION_RESULTS, API_ERROR_KINDS, BUILD_REVISION,
    CONTENT_TYPE, HTTP_LATENCY_BUCKETS, HTTP_ROUTES, REJECTED, SOURCES, TURN_LATENCY_BUCKETS,
};

/// The runtime's metrics. Cloning is cheap and every clone records into, and
/// renders, the same series.
///
/// Every `&str` argument becomes a label value and must come from a small
/// fixed set our code owns (the values listed on each method, or a
/// connection name from the mappings); never pass user data, ids or error
/// text, which would make the number of series unbounded.
#[derive(Clone, Debug)]
pub struct Metrics(Arc<Families>, Arc<leases::LeaseFamilies>);

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut families = Families::new();
        let leases = leases::LeaseFamilies::register(&mut families.registry);
        Metrics(Arc::new(families), Arc::new(leases))
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

    fn revision_swap(&self) -> MutexGuard<'_, ()> {
        // The guarded data is `()`, so a panic elsewhere while holding the
        // lock leaves nothing inconsistent behind.
        self.0
            .revision_swap
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests;
