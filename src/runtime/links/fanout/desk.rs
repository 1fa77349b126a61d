//! What the fan-out reads from Zendesk: the records a link value matches
//! and their tickets, a page at a time. A trait so the fan-out's logic is
//! tested against a desk of fixed records; the one real implementation is
//! [`ZendeskClient`](crate::connectors::zendesk::ZendeskClient) (`zendesk.rs`).

use crate::connectors::error::ApiError;
use crate::connectors::zendesk::Ticket;
use crate::ir::ZdKey;
use std::future::Future;

/// Which tickets one page request covers (the search export's query:
/// `type:ticket organization:ID status:open …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub organization: Option<u64>,
    pub requester: Option<u64>,
    /// A ticket custom field (id, value).
    pub field: Option<(u64, String)>,
    pub external_id: Option<String>,
    /// Zendesk status categories (`new`, `open`, …); never empty.
    pub statuses: Vec<String>,
}

impl Scope {
    pub fn new(statuses: &[String]) -> Scope {
        Scope {
            organization: None,
            requester: None,
            field: None,
            external_id: None,
            statuses: statuses.to_vec(),
        }
    }
}

/// One page of tickets and where the next starts (`None`: the last).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub tickets: Vec<Ticket>,
    pub next: Option<String>,
}

/// How a record's key must equal the link value to be matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Same {
    /// Character for character.
    Exactly,
    /// As one Salesforce record id: the 15-character id (case-sensitive)
    /// or the 18-character one in any case (its last three characters
    /// encode the case of the first fifteen), e.g. `0015e0000000001`,
    /// `0015e0000000001AAA` and `0015e0000000001aaa` are one Account.
    RecordId,
}

impl Same {
    pub fn holds(self, key: &str, value: &str) -> bool {
        match self {
            Same::Exactly => key == value,
            Same::RecordId => {
                use crate::connectors::salesforce::id::canonical;
                key == value || canonical(key).is_some_and(|k| Some(k) == canonical(value))
            }
        }
    }
}

/// The Zendesk reads of a fan-out. Each goes through the connector's
/// transport (budget, retries, metrics) in the real implementation.
pub trait Desk: Sync {
    /// Ids of the organizations whose `key` (external_id, a field) is `value`.
    fn organizations(
        &self,
        key: &ZdKey,
        value: &str,
        same: Same,
    ) -> impl Future<Output = Result<Vec<u64>, ApiError>> + Send;
    /// Ids of the users whose `key` (email, external_id, a field) is `value`.
    fn users(
        &self,
        key: &ZdKey,
        value: &str,
        same: Same,
    ) -> impl Future<Output = Result<Vec<u64>, ApiError>> + Send;
    /// One ticket by id; `None` when there is no such ticket.
    fn ticket(&self, id: u64) -> impl Future<Output = Result<Option<Ticket>, ApiError>> + Send;
    /// The tickets in `scope`, one page from `cursor`.
    fn tickets_page(
        &self,
        scope: &Scope,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<Page, ApiError>> + Send;
}
