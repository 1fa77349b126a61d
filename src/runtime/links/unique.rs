//! A link that allows one record (`on` a field declared `unique`, no
//! `pick`) matching two is bad data, and l3map never picks one silently:
//! the agent turn reports it (`resolve.rs`, `Lookup::Many`), and so does
//! the fan-out. Before a changed record's values reach the tickets of its
//! link value, one query asks whether another record has the same value
//! (`SELECT Id FROM Case WHERE Zendesk_Ticket_Id__c = '4105' LIMIT 2`);
//! if one does, the record reaches no ticket through that link, and the
//! refusal is logged with the turn's message and counted
//! (`l3map_fanout_refused_total{link}`). Without it each duplicate's
//! changes would be written to the ticket in turn, while turns on the
//! ticket decide without either.
//!
//! Links `on` an `Id` need no check: Salesforce Ids are unique. A field
//! that Salesforce itself marks Unique cannot hold a duplicate either,
//! but l3map only has the mappings' word for that (`unique` in `fields`),
//! so it asks: one query per changed record of such a link, answered from
//! the index of the unique field.

use super::resolve::{many_message, soql_of, LookupKey};
use crate::connectors::error::ApiError;
use crate::connectors::salesforce::SalesforceClient;
use crate::ir::{Link, Pick};
use crate::runtime::metrics::Metrics;
use std::collections::HashMap;

/// The check of one link over one change: the answers by link value (the
/// records of one change usually share it).
pub struct UniqueCheck<'a> {
    crm: Option<&'a SalesforceClient>,
    link: &'a Link,
    metrics: &'a Metrics,
    /// Link value -> whether several records have it.
    seen: HashMap<String, bool>,
}

impl<'a> UniqueCheck<'a> {
    /// `crm`: the link's Salesforce connection; without one (a fan-out
    /// tested against fixed records) nothing is asked and nothing refused.
    pub fn new(crm: Option<&'a SalesforceClient>, link: &'a Link, metrics: &'a Metrics) -> Self {
        UniqueCheck {
            crm,
            link,
            metrics,
            seen: HashMap::new(),
        }
    }

    /// Whether the change of record `id`, whose link value is `value`,
    /// must reach no ticket: another record has the value. Logged and
    /// counted each time it says so. A failed query is an error: the
    /// change is tried again, as when a ticket page cannot be read.
    pub async fn refuses(&mut self, id: &str, value: &str) -> Result<bool, ApiError> {
        let (Some(crm), true) = (self.crm, needs_check(self.link)) else {
            return Ok(false);
        };
        let many = match self.seen.get(value) {
            Some(many) => *many,
            None => {
                let many = match query(self.link, value) {
                    Some(q) => crm.query(&q).await?.records.len() > 1,
                    None => false,
                };
                self.seen.insert(value.to_string(), many);
                many
            }
        };
        if many {
            let link = self.link.describe();
            tracing::error!(
                link = %link,
                record = %id,
                error = %many_message(self.link, value),
                "a changed record reaches no ticket: another record has its link value"
            );
            self.metrics.fanout_refused(&link);
        }
        Ok(many)
    }
}

/// Whether a link's changes are checked: it allows one record and its
/// field is not the Id.
pub fn needs_check(link: &Link) -> bool {
    link.pick == Pick::One && link.field != "Id"
}

/// `SELECT Id, <field> FROM <object> WHERE <field> = '<value>' LIMIT 2`,
/// built and escaped as the resolver's lookups are.
fn query(link: &Link, value: &str) -> Option<String> {
    let key = LookupKey {
        connection: link.crm.clone(),
        object: link.object.clone(),
        field: link.field.clone(),
        value: value.to_string(),
        fields: vec!["Id".to_string(), link.field.clone()],
        newest: false,
    };
    soql_of(&key).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Loc, ZdKey, ZdObject};

    fn case_link(pick: Pick, field: &str) -> Link {
        Link {
            desk: "desk".into(),
            zendesk: ZdObject::Ticket,
            zendesk_key: ZdKey::Id,
            crm: "crm".into(),
            object: "Case".into(),
            field: field.into(),
            pick,
            tickets: vec![],
            loc: Loc {
                file: 0,
                line: 1,
                col: 1,
                start: 0,
                end: 0,
            },
        }
    }

    #[test]
    fn only_unique_links_on_a_field_are_checked() {
        assert!(needs_check(&case_link(Pick::One, "Zendesk_Ticket_Id__c")));
        assert!(!needs_check(&case_link(
            Pick::Newest,
            "Zendesk_Ticket_Id__c"
        )));
        assert!(!needs_check(&case_link(Pick::One, "Id")));
    }

    #[test]
    fn the_query_asks_for_two_and_escapes_the_value() {
        let q = query(&case_link(Pick::One, "Zendesk_Ticket_Id__c"), "41'05").unwrap();
        assert_eq!(
            q,
            "SELECT Id, Zendesk_Ticket_Id__c FROM Case WHERE Zendesk_Ticket_Id__c = '41\\'05' LIMIT 2"
        );
    }
}
