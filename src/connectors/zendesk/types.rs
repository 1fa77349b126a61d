//! Zendesk's resources as the API answers them, and the changes a client
//! sends.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomFieldValue {
    pub id: u64,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Ticket {
    pub id: u64,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub status: String,
    #[serde(default)]
    pub custom_status_id: Option<u64>,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub group_id: Option<u64>,
    #[serde(default)]
    pub assignee_id: Option<u64>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub custom_fields: Vec<CustomFieldValue>,
    #[serde(default)]
    pub updated_at: Option<String>,
    /// The ticket's organization (its requester's, unless set otherwise):
    /// the way to a linked Salesforce Account.
    #[serde(default)]
    pub organization_id: Option<u64>,
    #[serde(default)]
    pub requester_id: Option<u64>,
    #[serde(default)]
    pub external_id: Option<String>,
    /// The ticket form the ticket uses (which custom statuses it may take:
    /// see `forms.rs`).
    #[serde(default)]
    pub ticket_form_id: Option<u64>,
}

impl Ticket {
    /// A custom field's value, `None` if unset.
    pub fn field(&self, id: u64) -> Option<&Value> {
        self.custom_fields
            .iter()
            .find(|f| f.id == id)
            .map(|f| &f.value)
            .filter(|v| !v.is_null())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewComment {
    pub body: String,
    pub public: bool,
}

/// What to set on a ticket: create, update and bulk update take it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TicketChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The status category: new, open, pending, hold, solved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_status_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_fields: Vec<CustomFieldValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<NewComment>,
    /// With `updated_stamp`: Zendesk refuses the update with 409 Conflict
    /// when the ticket changed since that stamp, instead of writing over a
    /// person's newer change ("Protecting against ticket update
    /// collisions",
    /// developer.zendesk.com/documentation/ticketing/managing-tickets/creating-and-updating-tickets/).
    /// Single-ticket `PUT` only: `update_many` does not document it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safe_update: Option<bool>,
    /// The ticket's `updated_at` as the Tickets API returned it for the
    /// state the change was decided on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_stamp: Option<String>,
}

impl TicketChanges {
    /// A status by category, with the custom status when the table has one.
    pub fn status(mut self, category: &str, custom_status_id: Option<u64>) -> Self {
        self.status = Some(category.into());
        self.custom_status_id = custom_status_id;
        self
    }

    /// Sets custom field `id`; a later value for the same field replaces
    /// an earlier one (coalesced writes: the later decision wins), so an
    /// update never names a field twice.
    pub fn field(mut self, id: u64, value: impl Into<Value>) -> Self {
        let value = value.into();
        match self.custom_fields.iter_mut().find(|f| f.id == id) {
            Some(f) => f.value = value,
            None => self.custom_fields.push(CustomFieldValue { id, value }),
        }
        self
    }

    /// An internal note: `public: false`, agents only.
    pub fn private_comment(mut self, body: impl Into<String>) -> Self {
        self.comment = Some(NewComment {
            body: body.into(),
            public: false,
        });
        self
    }

    pub fn public_comment(mut self, body: impl Into<String>) -> Self {
        self.comment = Some(NewComment {
            body: body.into(),
            public: true,
        });
        self
    }

    pub fn group(mut self, group_id: u64) -> Self {
        self.group_id = Some(group_id);
        self
    }

    /// Refused with 409 if the ticket changed since `updated_at` (the
    /// ticket's stamp as the API returned it).
    pub fn safe(mut self, updated_at: impl Into<String>) -> Self {
        self.safe_update = Some(true);
        self.updated_stamp = Some(updated_at.into());
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub author_id: Option<u64>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FieldOption {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TicketField {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub custom_field_options: Vec<FieldOption>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CustomStatus {
    pub id: u64,
    pub status_category: String,
    pub agent_label: String,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub default: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Group {
    pub id: u64,
    pub name: String,
}

/// Where an incremental export starts.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportFrom {
    /// Unix seconds: tickets changed at or after this time.
    StartTime(i64),
    /// The `after_cursor` of the previous page.
    Cursor(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExportPage {
    pub tickets: Vec<Ticket>,
    /// The same tickets as the API sent them, every attribute kept, for
    /// the event converters.
    pub raw: Vec<Value>,
    /// Where the next poll starts; keep it even at the end of the stream.
    pub after_cursor: Option<String>,
    pub end_of_stream: bool,
    /// Side-loaded with `include=users,organizations`
    /// ([`ZendeskClient::export_tickets_with_parties`](super::ZendeskClient::export_tickets_with_parties)):
    /// the tickets' users and organizations; empty otherwise.
    pub users: Vec<Value>,
    pub organizations: Vec<Value>,
}
