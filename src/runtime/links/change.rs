//! A Salesforce record change, whichever way it was learned: a Change Data
//! Capture event (`runtime::cdc`) or a `SystemModstamp` poll
//! (`runtime::poll::soql`). The fan-out takes these and nothing else, so
//! both sources reach tickets the same way.

use serde_json::{Map, Value as Json};

/// What happened to the records (CDC's `ChangeEventHeader.changeType`; a
/// poll reports `Update`, or `Create` when `CreatedDate` equals the stamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Create,
    Update,
    Delete,
    Undelete,
    /// `GAP_*`: something changed but the event does not say what; the
    /// records were read again and `fields` holds what they are now.
    Gap,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CrmChange {
    /// The Salesforce connection's name in the mappings.
    pub connection: String,
    /// The object, as the mappings name it (`Account`, `Case`).
    pub object: String,
    /// The records changed (a CDC event may name several with the same
    /// change; a poll names one).
    pub ids: Vec<String>,
    pub change_type: ChangeType,
    /// The record's values as Salesforce names them, relative to the
    /// object (`SLA_Tier__c`; a relationship nested: `{"Account": {...}}`):
    /// the changed fields, and whatever else the source has. The same
    /// values for every id.
    pub fields: Map<String, Json>,
    /// The fields that changed, relative to the object (`SLA_Tier__c`),
    /// from CDC's `changedFields` bitmap or, for a poll, every field read.
    pub changed: Vec<String>,
    /// Identifies this change across redeliveries and restarts: CDC's
    /// `transactionKey` and `sequenceNumber`; a poll's
    /// `OBJECT:ID:SYSTEMMODSTAMP`. Event ids are built from it, so a
    /// replayed change decides nothing twice.
    pub key: String,
    /// When it was committed (RFC 3339): CDC's `commitTimestamp`, a poll's
    /// `SystemModstamp`.
    pub at: String,
    /// CDC's `changeOrigin` (`com/salesforce/api/rest/60.0;client=l3map`):
    /// l3map's own writes are recognised by it and never come back as work.
    pub origin: Option<String>,
}
