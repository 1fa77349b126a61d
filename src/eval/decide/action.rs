//! What a decision is made of: actions (what to write where, and which
//! rule said so) and refusals.

use crate::ir::{FieldRef, Loc, Value};
use crate::model::Kind;
use serde::{Serialize, Serializer};
use std::fmt;

/// The record an action writes to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "system", rename_all = "snake_case")]
pub enum Record<'a> {
    Ticket { id: u64 },
    Salesforce { object: &'a str, id: &'a str },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ActionKind<'a> {
    SetStatus {
        connection: &'a str,
        from: &'a str,
        to: &'a str,
        /// What the API takes: Zendesk's status category (`open`, `hold`,
        /// ...), or the Salesforce picklist value (the status's label).
        value: &'a str,
        /// Zendesk: the custom status, when the table declares its `#id`.
        #[serde(skip_serializing_if = "Option::is_none")]
        custom_status_id: Option<u64>,
    },
    SetField {
        field: &'a FieldRef,
        value: Value,
    },
    /// A private Zendesk comment, or an internal Salesforce CaseComment.
    Comment {
        connection: &'a str,
        kind: Kind,
        body: String,
    },
    AssignGroup {
        connection: &'a str,
        group: &'a str,
    },
    /// A product id from a SKU table, written to a field.
    NormalizeSku {
        table: &'a str,
        input: &'a str,
        sku: String,
        field: &'a FieldRef,
    },
}

/// What produced an action; reads (and serialises) as `transition`,
/// `map crm -> desk`, `sku products`, `escalation refund_over_threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule<'a> {
    Transition,
    Map {
        from: &'a str,
        to: &'a str,
    },
    Sku(&'a str),
    Escalation(&'a str),
    /// The agent asked for it by name (`turn.requested_fields`), and the
    /// field's declaration allows it.
    Request,
}

impl fmt::Display for Rule<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Transition => f.write_str("transition"),
            Rule::Map { from, to } => write!(f, "map {from} -> {to}"),
            Rule::Sku(t) => write!(f, "sku {t}"),
            Rule::Escalation(e) => write!(f, "escalation {e}"),
            Rule::Request => f.write_str("agent request"),
        }
    }
}

impl Serialize for Rule<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action<'a> {
    #[serde(flatten)]
    pub kind: ActionKind<'a>,
    pub record: Record<'a>,
    pub rule: Rule<'a>,
    pub loc: Loc,
    /// The outbox applies a key once, so a redelivered event never writes
    /// twice, and a hand-off is applied once per record (see [`Keys`]).
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    pub what: String,
    pub reason: String,
    pub loc: Option<Loc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision<'a> {
    pub event: &'a str,
    pub revision: &'a str,
    pub actions: Vec<Action<'a>>,
    pub refused: Vec<Refusal>,
}
