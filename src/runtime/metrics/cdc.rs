//! Change Data Capture's series (`runtime::cdc`): one set per
//! (connection, channel), both from the mappings (a channel is an object's
//! change-event topic), so the series stay few. Registered with the rest
//! in `families.rs`; recorded here.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::labels::label;
use super::Metrics;

/// What became of an event (`l3map_cdc_events_total{outcome}`).
pub const CDC_OUTCOMES: [&str; 5] = ["applied", "own", "refused", "retried", "undecodable"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ChannelLabels {
    pub(super) connection: String,
    pub(super) channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OutcomeLabels {
    pub(super) connection: String,
    pub(super) channel: String,
    pub(super) outcome: String,
}

#[derive(Debug, Default)]
pub(super) struct CdcFamilies {
    events: Family<OutcomeLabels, Counter>,
    gaps: Family<ChannelLabels, Counter>,
    overflows: Family<ChannelLabels, Counter>,
    reconnects: Family<ChannelLabels, Counter>,
    catch_ups: Family<ChannelLabels, Counter>,
    up: Family<ChannelLabels, Gauge>,
}

impl CdcFamilies {
    pub(super) fn register(registry: &mut Registry) -> CdcFamilies {
        let f = CdcFamilies::default();
        registry.register(
            "l3map_cdc_events",
            "Change Data Capture events by connection, channel and outcome: applied (passed to the fan-out, replay id stored), own (l3map's own write, by changeOrigin, skipped), refused (a lookup the change needs was refused for good, HTTP 400/422: passed over, logged), retried (the fan-out failed; the same event is tried again), undecodable (skipped, logged)",
            f.events.clone(),
        );
        registry.register(
            "l3map_cdc_gaps",
            "GAP_* events, whose records were read again",
            f.gaps.clone(),
        );
        registry.register(
            "l3map_cdc_overflows",
            "GAP_OVERFLOW events, healed by a SystemModstamp catch-up poll",
            f.overflows.clone(),
        );
        registry.register(
            "l3map_cdc_reconnects",
            "Subscriptions that ended (a stream error, a cut, a refused replay id) and were opened again",
            f.reconnects.clone(),
        );
        registry.register(
            "l3map_cdc_catch_up_polls",
            "SystemModstamp catch-up polls (after an overflow, or a replay id beyond retention)",
            f.catch_ups.clone(),
        );
        registry.register(
            "l3map_cdc_stream_up",
            "1 while the channel's Subscribe stream is open",
            f.up.clone(),
        );
        f
    }
}

fn channel(connection: &str, channel: &str) -> ChannelLabels {
    ChannelLabels {
        connection: label(connection),
        channel: label(channel),
    }
}

impl Metrics {
    /// Creates a channel's series at 0. `connection` and `channel` come
    /// from the mappings and `l3map.toml`.
    pub fn cdc_channel(&self, connection: &str, ch: &str) {
        let f = &self.0.cdc;
        for outcome in CDC_OUTCOMES {
            drop(f.events.get_or_create(&OutcomeLabels {
                connection: label(connection),
                channel: label(ch),
                outcome: outcome.into(),
            }));
        }
        let c = channel(connection, ch);
        for family in [&f.gaps, &f.overflows, &f.reconnects, &f.catch_ups] {
            drop(family.get_or_create(&c));
        }
        drop(f.up.get_or_create(&c));
    }

    /// `outcome`: one of [`CDC_OUTCOMES`].
    pub fn cdc_event(&self, connection: &str, ch: &str, outcome: &str) {
        self.0
            .cdc
            .events
            .get_or_create(&OutcomeLabels {
                connection: label(connection),
                channel: label(ch),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn cdc_gap(&self, connection: &str, ch: &str) {
        self.0
            .cdc
            .gaps
            .get_or_create(&channel(connection, ch))
            .inc();
    }

    pub fn cdc_overflow(&self, connection: &str, ch: &str) {
        self.0
            .cdc
            .overflows
            .get_or_create(&channel(connection, ch))
            .inc();
    }

    pub fn cdc_reconnect(&self, connection: &str, ch: &str) {
        self.0
            .cdc
            .reconnects
            .get_or_create(&channel(connection, ch))
            .inc();
    }

    pub fn cdc_catch_up(&self, connection: &str, ch: &str) {
        self.0
            .cdc
            .catch_ups
            .get_or_create(&channel(connection, ch))
            .inc();
    }

    pub fn cdc_up(&self, connection: &str, ch: &str, up: bool) {
        self.0
            .cdc
            .up
            .get_or_create(&channel(connection, ch))
            .set(i64::from(up));
    }

    /// A channel's count of `outcome` events (tests and reports).
    pub fn cdc_events(&self, connection: &str, ch: &str, outcome: &str) -> u64 {
        self.0
            .cdc
            .events
            .get(&OutcomeLabels {
                connection: label(connection),
                channel: label(ch),
                outcome: outcome.into(),
            })
            .map_or(0, |c| c.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_has_every_series_from_the_start() {
        let m = Metrics::new();
        m.cdc_channel("crm", "/data/AccountChangeEvent");
        m.cdc_event("crm", "/data/AccountChangeEvent", "applied");
        m.cdc_up("crm", "/data/AccountChangeEvent", true);
        let text = m.render();
        for line in [
            r#"l3map_cdc_events_total{connection="crm",channel="/data/AccountChangeEvent",outcome="applied"} 1"#,
            r#"l3map_cdc_events_total{connection="crm",channel="/data/AccountChangeEvent",outcome="own"} 0"#,
            r#"l3map_cdc_gaps_total{connection="crm",channel="/data/AccountChangeEvent"} 0"#,
            r#"l3map_cdc_catch_up_polls_total{connection="crm",channel="/data/AccountChangeEvent"} 0"#,
            r#"l3map_cdc_stream_up{connection="crm",channel="/data/AccountChangeEvent"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert_eq!(
            m.cdc_events("crm", "/data/AccountChangeEvent", "applied"),
            1
        );
    }
}
