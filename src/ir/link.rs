//! Record links in the IR: which Salesforce record a Zendesk record is.

use super::Loc;
use serde::{Deserialize, Serialize};

/// `link desk.organization <-> crm.Account { on organization.external_id == Account.Id }`:
/// which Salesforce record a Zendesk record is, and back. A ticket reaches
/// the linked record through itself (`ticket`), its organization
/// (`organization`) or its requester (`user`); a change of the Salesforce
/// record reaches the tickets in `tickets` of every Zendesk record it
/// matches (fan-out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// The Zendesk connection.
    pub desk: String,
    pub zendesk: ZdObject,
    /// The Zendesk side of `on`.
    pub zendesk_key: ZdKey,
    /// The Salesforce connection.
    pub crm: String,
    /// The Salesforce object (`Account`, `Contact`, `Case`, a custom object).
    pub object: String,
    /// The Salesforce field of `on`, relative to `object` (`Id`, `Email`,
    /// `Zendesk_Ticket_Id__c`).
    pub field: String,
    /// What to do when the lookup from Zendesk to Salesforce matches more
    /// than one record.
    pub pick: Pick,
    /// The Zendesk statuses (`new`, `open`, `pending`, `hold`, `solved`,
    /// `closed`) of the tickets a Salesforce change reaches; by default the
    /// unsolved ones.
    pub tickets: Vec<String>,
    pub loc: Loc,
}

/// The Zendesk record a link starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZdObject {
    Ticket,
    Organization,
    User,
}

/// Which value of the Zendesk record the link compares.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "t")]
pub enum ZdKey {
    /// The record's id (`ticket.id`, `organization.id`, `user.id`).
    Id,
    /// `external_id`.
    ExternalId,
    /// `user.email`.
    Email,
    /// An organization or user field, by its key (`organization.fields.sf_account`).
    Field { key: String },
    /// A ticket field declared in `fields`, by alias and Zendesk id.
    TicketField { name: String, id: u64 },
}

/// How a lookup that may match several Salesforce records picks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    /// The field is unique (an Id, or declared `unique`): at most one matches.
    One,
    /// `pick newest`: the most recently modified (`SystemModstamp`) wins.
    Newest,
}

impl Link {
    /// `desk.organization <-> crm.Account`, for logs and answers.
    pub fn describe(&self) -> String {
        let zd = match self.zendesk {
            ZdObject::Ticket => "ticket",
            ZdObject::Organization => "organization",
            ZdObject::User => "user",
        };
        format!("{}.{} <-> {}.{}", self.desk, zd, self.crm, self.object)
    }
}
