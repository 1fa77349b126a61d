//! Record links' series (`runtime::links`): the resolver's lookups from a
//! ticket to its Salesforce records, and the fan-out's refusals of a
//! record that shares a unique link's value with another. One set per
//! link, named as the mappings declare it (`desk.organization <->
//! crm.Account`), so the series stay few. Registered with the rest in
//! `families.rs`; recorded here.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::labels::label;
use super::Metrics;

/// What a lookup came to (`l3map_link_lookups_total{result}`): `hit` (a
/// record from the cache), `negative_hit` (a cached "no record"), `miss`
/// (not cached: Salesforce was asked, and the answer cached), `many`
/// (several records where the link allows one; not cached), `error` (the
/// read failed; not cached).
pub const LINK_LOOKUP_RESULTS: [&str; 5] = ["hit", "negative_hit", "miss", "many", "error"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct LinkResultLabels {
    pub(super) link: String,
    pub(super) result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct LinkLabels {
    pub(super) link: String,
}

#[derive(Debug, Default)]
pub(super) struct LinkFamilies {
    lookups: Family<LinkResultLabels, Counter>,
    refused: Family<LinkLabels, Counter>,
}

impl LinkFamilies {
    pub(super) fn register(registry: &mut Registry) -> LinkFamilies {
        let f = LinkFamilies::default();
        registry.register(
            "l3map_link_lookups",
            "Lookups of a ticket's linked Salesforce record (agent turns, context reads, ticket events), by link and result: hit (from the 15-minute cache), negative_hit (a cached no-match), miss (Salesforce asked), many (several records where the link allows one), error (the read failed)",
            f.lookups.clone(),
        );
        registry.register(
            "l3map_fanout_refused",
            "Changed Salesforce records that reached no ticket through a link that allows one record, because another record has the same value (logged as an error naming the records and the fix)",
            f.refused.clone(),
        );
        f
    }
}

impl Metrics {
    /// `l3map_link_lookups_total{link, result}`; `link` as
    /// [`Link::describe`](crate::ir::Link::describe) writes it (from the
    /// mappings), `result` one of [`LINK_LOOKUP_RESULTS`]. The link's other
    /// results are created at 0 with it, so a rate over any of them works
    /// from the first lookup.
    pub fn link_lookup(&self, link: &str, result: &str) {
        let f = &self.0.links;
        for r in LINK_LOOKUP_RESULTS {
            let series = f.lookups.get_or_create(&LinkResultLabels {
                link: label(link),
                result: r.into(),
            });
            if r == result {
                series.inc();
            }
        }
    }

    /// Creates `link`'s lookup series at 0 (every link of the mappings,
    /// at start and on reload), so they exist from the first scrape.
    pub fn link_declared(&self, link: &str) {
        let f = &self.0.links;
        for r in LINK_LOOKUP_RESULTS {
            let _ = f.lookups.get_or_create(&LinkResultLabels {
                link: label(link),
                result: r.into(),
            });
        }
    }

    /// `l3map_fanout_refused_total{link}`: one changed record not fanned
    /// out through `link`.
    pub fn fanout_refused(&self, link: &str) {
        self.0
            .links
            .refused
            .get_or_create(&LinkLabels { link: label(link) })
            .inc();
    }

    /// A link's count of `result` lookups (tests and reports).
    pub fn link_lookups(&self, link: &str, result: &str) -> u64 {
        self.0
            .links
            .lookups
            .get(&LinkResultLabels {
                link: label(link),
                result: result.into(),
            })
            .map_or(0, |c| c.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_links_lookups_have_every_result_from_the_first() {
        let m = Metrics::new();
        let link = "desk.organization <-> crm.Account";
        m.link_lookup(link, "miss");
        m.link_lookup(link, "hit");
        m.link_lookup(link, "hit");
        m.fanout_refused("desk.ticket <-> crm.Case");
        let text = m.render();
        for line in [
            r#"l3map_link_lookups_total{link="desk.organization <-> crm.Account",result="hit"} 2"#,
            r#"l3map_link_lookups_total{link="desk.organization <-> crm.Account",result="miss"} 1"#,
            r#"l3map_link_lookups_total{link="desk.organization <-> crm.Account",result="negative_hit"} 0"#,
            r#"l3map_link_lookups_total{link="desk.organization <-> crm.Account",result="many"} 0"#,
            r#"l3map_link_lookups_total{link="desk.organization <-> crm.Account",result="error"} 0"#,
            r#"l3map_fanout_refused_total{link="desk.ticket <-> crm.Case"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert_eq!(m.link_lookups(link, "hit"), 2);
    }
}
