//! The normalised event: one JSON shape for Zendesk ticket changes,
//! Salesforce record changes and AI-agent turns (see docs/EVENTS.md).
//! Time comes in with the event; the interpreter never reads a clock.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    TicketCreated,
    TicketUpdated,
    CommentAdded,
    RecordChanged,
    AgentTurn,
}

/// A Zendesk ticket as the event saw it. Its `id` is required: an action
/// must never be addressed to a ticket nobody named.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: u64,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub custom_status_id: Option<u64>,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(rename = "type")]
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub requester_email: Option<String>,
    #[serde(default)]
    pub requester_name: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Custom field values by field id (as text, the way Zendesk keys them).
    #[serde(default)]
    pub custom_fields: BTreeMap<String, Json>,
    /// The ticket form the ticket uses: which custom statuses it may take
    /// (a status table's `forms`, docs/LANGUAGE.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_form_id: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Comment {
    pub body: Option<String>,
    /// `end_user`, `agent` or `system`.
    pub author: Option<String>,
    pub public: Option<bool>,
}

/// An amount as JSON carries it: the decimal as text keeps it exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoneyJson {
    pub amount: String,
    pub currency: String,
}

/// One turn of the AI agent's conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Turn {
    pub intent: Option<String>,
    pub summary: Option<String>,
    pub attempts: Vec<String>,
    pub sentiment: Option<String>,
    pub refund_amount: Option<MoneyJson>,
    pub requested_status: Option<String>,
    pub confidence: Option<f64>,
    pub language: Option<String>,
    pub order_id: Option<String>,
    pub product: Option<String>,
    /// Ticket fields the agent asks to write, by alias: only fields the
    /// mappings declare, of their type, and not fed by a `map`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub requested_fields: BTreeMap<String, Json>,
    /// The escalation the agent asks for by name: it hands off only if it
    /// is the one whose condition holds first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_escalation: Option<String>,
}

/// The normalised event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The source's delivery or event id: redeliveries keep it.
    pub id: String,
    pub kind: EventKind,
    /// When it happened, RFC 3339, as the source stamped it.
    pub at: String,
    #[serde(default)]
    pub ticket: Option<Ticket>,
    #[serde(default)]
    pub comment: Option<Comment>,
    #[serde(default)]
    pub turn: Option<Turn>,
    /// Salesforce records by object name (`Case`, `Account`, ...), with
    /// their fields as Salesforce names them.
    #[serde(default)]
    pub records: BTreeMap<String, Map<String, Json>>,
    /// For record changes: the `Object.Field` paths that changed.
    #[serde(default)]
    pub changed: Vec<String>,
}

/// Why an event could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct EventError {
    pub message: String,
}

impl Event {
    /// Reads one event from JSON text, naming the field that is wrong.
    pub fn from_json(text: &str) -> Result<Event, EventError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let ev: Event = serde_path_to_error::deserialize(de).map_err(|e| EventError {
            message: match e.path().to_string().as_str() {
                "." | "" | "?" => e.inner().to_string(),
                path => format!("{path}: {}", e.inner()),
            },
        })?;
        if ev.at.parse::<jiff::Timestamp>().is_err() {
            return Err(EventError {
                message: format!(
                    "at: {:?} is not an RFC 3339 time such as \"2026-11-11T10:00:00Z\"",
                    ev.at
                ),
            });
        }
        if ev.id.trim().is_empty() {
            return Err(EventError {
                message: "id: must not be empty (it is what makes redeliveries harmless)".into(),
            });
        }
        if let Some(m) = ev.turn.as_ref().and_then(|t| t.refund_amount.as_ref()) {
            if crate::syntax::decimal_units(&m.amount).is_none() {
                return Err(EventError {
                    message: format!(
                        "turn.refund_amount.amount: {:?} is not a decimal amount such as \"250.00\"",
                        m.amount
                    ),
                });
            }
            let c = &m.currency;
            if c.len() != 3 || !c.chars().all(|x| x.is_ascii_uppercase()) {
                return Err(EventError {
                    message: format!(
                        "turn.refund_amount.currency: {c:?} is not an ISO 4217 code such as \"USD\""
                    ),
                });
            }
        }
        Ok(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_agent_turn() {
        let ev = Event::from_json(
            r#"{"id":"t-1","kind":"agent_turn","at":"2026-11-11T10:00:00Z",
                "ticket":{"id":42,"status":"open","tags":["vip"],"custom_fields":{"360001234":"enterprise"}},
                "turn":{"intent":"refund","refund_amount":{"amount":"250.00","currency":"USD"},
                        "attempts":["checked order"],"sentiment":"angry"}}"#,
        )
        .unwrap();
        assert_eq!(ev.kind, EventKind::AgentTurn);
        assert_eq!(ev.ticket.as_ref().unwrap().tags, vec!["vip"]);
        assert_eq!(ev.turn.unwrap().refund_amount.unwrap().amount, "250.00");
    }

    #[test]
    fn errors_name_the_field() {
        let e = Event::from_json(
            r#"{"id":"x","kind":"agent_turn","at":"2026-11-11T10:00:00Z","ticket":{"id":"forty-two"}}"#,
        )
        .unwrap_err();
        assert!(e.message.starts_with("ticket.id:"), "{}", e.message);
        let e = Event::from_json(r#"{"id":"x","kind":"explosion","at":"2026-11-11T10:00:00Z"}"#)
            .unwrap_err();
        assert!(e.message.starts_with("kind:"), "{}", e.message);
        let e =
            Event::from_json(r#"{"kind":"agent_turn","at":"2026-11-11T10:00:00Z"}"#).unwrap_err();
        assert!(e.message.contains("id"), "{}", e.message);
        assert!(Event::from_json("{not json").is_err());
        let e = Event::from_json(r#"{"id":" ","kind":"agent_turn","at":"2026-11-11T10:00:00Z"}"#)
            .unwrap_err();
        assert!(e.message.starts_with("id:"));
        let e = Event::from_json(
            r#"{"id":"x","kind":"agent_turn","at":"2026-11-11T10:00:00Z","turn":{"refund_amount":{"amount":"2,50","currency":"USD"}}}"#,
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("turn.refund_amount.amount:"),
            "{}",
            e.message
        );
        let e = Event::from_json(
            r#"{"id":"x","kind":"agent_turn","at":"2026-11-11T10:00:00Z","turn":{"refund_amount":{"amount":"2.50","currency":"usd"}}}"#,
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("turn.refund_amount.currency:"),
            "{}",
            e.message
        );
    }
}
