//! A turn as the agent sends it, read and checked before any upstream
//! call: a turn refused here costs no Zendesk request and records nothing.

use super::fail::{bad, fail, Fail};
use crate::eval::convert::id_value;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value as JsonValue;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A turn id is the agent's; it ends up in the event id, logs and the
/// store, so it is kept short and printable.
const MAX_TURN_ID: usize = 128;

/// The most fields a turn names, and the longest name.
const MAX_FIELDS: usize = 100;
const MAX_FIELD_NAME: usize = 100;

/// `POST /v1/turns`'s body (docs/AGENT_API.md). Serialised again, as
/// read, for its digest: a retry must say the same thing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TurnRequest {
    #[serde(default)]
    pub turn_id: Option<String>,
    /// A number or a string of digits: agents' tool calls send both.
    #[serde(default)]
    pub ticket: Option<JsonValue>,
    #[serde(default)]
    pub case: Option<String>,
    pub intent: String,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub attempts: Vec<String>,
    #[serde(default)]
    pub sentiment: Option<String>,
    #[serde(default)]
    pub requested_status: Option<String>,
    #[serde(default)]
    pub refund_amount: Option<Money>,
    #[serde(default)]
    pub fields: BTreeMap<String, JsonValue>,
    #[serde(default)]
    pub confidence: Option<f64>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub product: Option<String>,
    /// Ticket fields to write, by the alias `fields` declares. Skipped when
    /// empty, so a turn's digest is what it was before they existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requested_fields: BTreeMap<String, JsonValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_escalation: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Money {
    pub amount: String,
    pub currency: String,
}

/// A turn that passed every check that needs no upstream call.
pub(super) struct Checked {
    pub req: TurnRequest,
    pub ticket: Option<u64>,
    /// What a retry with the same `turn_id` must match ([`parse_turn`]).
    pub digest: [u8; 32],
}

pub(super) fn parse_turn(body: &[u8]) -> Result<Checked, Fail> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let mut req: TurnRequest = serde_path_to_error::deserialize(de).map_err(|e| {
        let message = match e.path().to_string().as_str() {
            "." | "" | "?" => e.inner().to_string(),
            path => format!("{path}: {}", e.inner()),
        };
        fail(StatusCode::BAD_REQUEST, "malformed", message)
    })?;
    if let Some(id) = &req.turn_id {
        if id.is_empty() || id.len() > MAX_TURN_ID {
            return Err(bad(format!(
                "turn_id: must be 1 to {MAX_TURN_ID} bytes long"
            )));
        }
        if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad(
                "turn_id: must not contain spaces or control characters",
            ));
        }
    }
    let ticket = match &req.ticket {
        None | Some(JsonValue::Null) => None,
        Some(v) => Some(id_value(v, "ticket").map_err(|e| bad(e.message))?),
    };
    // One record, one spelling: the 15- and 18-character forms of a Case
    // Id (in any case) are one record, so its hand-off is keyed once.
    if let Some(case) = &mut req.case {
        match crate::connectors::salesforce_id::canonical(case) {
            // Every Case Id starts with the Case object's key prefix, 500.
            Some(id) if !id.starts_with("500") => {
                return Err(bad(format!(
                    "case: {case:?} is a Salesforce Id, but not a Case's (Case Ids start with 500)"
                )))
            }
            Some(id) => *case = id,
            None => {
                return Err(bad(format!(
                    "case: {case:?} is not a Salesforce Id (15 or 18 letters and digits, the last 3 matching the first 15)"
                )))
            }
        }
    }
    // Names are the mappings' aliases: short. A long one would be echoed
    // into refusals, logs and the store.
    for (map, name) in [
        (&req.fields, "fields"),
        (&req.requested_fields, "requested_fields"),
    ] {
        if map.len() > MAX_FIELDS {
            return Err(bad(format!("{name}: at most {MAX_FIELDS} fields")));
        }
        if let Some(long) = map.keys().find(|k| k.len() > MAX_FIELD_NAME) {
            return Err(bad(format!(
                "{name}: a field name of {} bytes; names are at most {MAX_FIELD_NAME}",
                long.len()
            )));
        }
    }
    if req
        .requested_escalation
        .as_ref()
        .is_some_and(|e| e.len() > MAX_FIELD_NAME)
    {
        return Err(bad(format!(
            "requested_escalation: at most {MAX_FIELD_NAME} bytes"
        )));
    }
    if ticket.is_none() && req.case.is_none() {
        return Err(bad(
            "name the conversation's record: `ticket` (a Zendesk ticket id) or `case` (a Salesforce Case Id)",
        ));
    }
    if req.intent.trim().is_empty() {
        return Err(bad("intent: must not be empty"));
    }
    if let Some(m) = &req.refund_amount {
        if crate::syntax::decimal_units(&m.amount).is_none() {
            return Err(bad(format!(
                "refund_amount.amount: {:?} is not a decimal amount such as \"250.00\"",
                m.amount
            )));
        }
        let c = &m.currency;
        if c.len() != 3 || !c.chars().all(|x| x.is_ascii_uppercase()) {
            return Err(bad(format!(
                "refund_amount.currency: {c:?} is not an ISO 4217 code such as \"USD\""
            )));
        }
    }
    if let Some(c) = req.confidence {
        if !(0.0..=1.0).contains(&c) {
            return Err(bad(format!("confidence: {c} is not between 0 and 1")));
        }
    }
    // The digest of the request as read, not as sent: a retry that only
    // spaces its JSON differently, or spells the same ticket or Case
    // another way (`"4213"`, a 15-character Id), is the same turn.
    if let Some(t) = ticket {
        req.ticket = Some(JsonValue::from(t));
    }
    let digest = Sha256::digest(serde_json::to_vec(&req).unwrap_or_default()).into();
    Ok(Checked {
        req,
        ticket,
        digest,
    })
}

/// Refuses a `fields` name the mappings do not know: the agent would
/// otherwise believe a value it sent was taken into account. Checked
/// before any upstream call, like the rest of the request.
pub(super) fn known_fields(
    agent: &BTreeMap<String, JsonValue>,
    names: &BTreeMap<String, u64>,
) -> Result<(), Fail> {
    match agent.keys().find(|n| !names.contains_key(*n)) {
        None => Ok(()),
        Some(name) => {
            let known: Vec<&str> = names.keys().map(String::as_str).collect();
            Err(bad(format!(
                "fields.{name}: not a ticket field of the mappings (known: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )))
        }
    }
}

/// A turn's event key, `agent:{agent}:{turn}`: a namespace no other
/// source can write in (a webhook's keys are `zendesk:...`, and it accepts
/// no payload that names its own key; see `eval::convert::zendesk`), so no
/// one can claim an agent's turn id before the agent sends it. A `%` or
/// `:` in the agent's name is escaped, so agent `a` with turn `b:1` and
/// agent `a:b` with turn `1` have different keys.
pub(super) fn turn_key(agent: &str, turn: &str) -> String {
    let agent = agent.replace('%', "%25").replace(':', "%3A");
    format!("agent:{agent}:{turn}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_keys_of_two_agents_never_meet() {
        assert_eq!(turn_key("e2e", "conv-1"), "agent:e2e:conv-1");
        assert_ne!(turn_key("a", "b:1"), turn_key("a:b", "1"));
        assert_ne!(turn_key("a%3A", "1"), turn_key("a:", "1"));
    }

    #[test]
    fn turns_are_checked_before_any_upstream_call() {
        let ok = parse_turn(br#"{"ticket": "4211", "intent": "refund"}"#).unwrap();
        assert_eq!(ok.ticket, Some(4211));
        let err = |body: &str| parse_turn(body.as_bytes()).err().unwrap();
        let e = err(r#"{"ticket": 1, "intent": "x", "bogus": 1}"#);
        assert_eq!((e.code, e.status), ("malformed", StatusCode::BAD_REQUEST));
        assert!(e.message.contains("bogus"), "{}", e.message);
        let e = err(
            r#"{"ticket": 1, "intent": "x", "refund_amount": {"amount": "2,50", "currency": "USD"}}"#,
        );
        assert!(
            e.message.starts_with("refund_amount.amount:"),
            "{}",
            e.message
        );
        let e = err(
            r#"{"ticket": 1, "intent": "x", "refund_amount": {"amount": "2.50", "currency": "usd"}}"#,
        );
        assert!(
            e.message.starts_with("refund_amount.currency:"),
            "{}",
            e.message
        );
        assert!(err(r#"{"intent": "x"}"#).message.contains("ticket"));
        assert!(err(r#"{"ticket": 1, "intent": " "}"#)
            .message
            .starts_with("intent"));
        assert!(err(r#"{"ticket": -1, "intent": "x"}"#)
            .message
            .starts_with("ticket"));
        assert!(err(r#"{"ticket": 1, "intent": "x", "case": "500'; DROP"}"#)
            .message
            .starts_with("case"));
        assert!(err(r#"{"ticket": 1, "intent": "x", "confidence": 1.5}"#)
            .message
            .starts_with("confidence"));
        assert!(err(r#"{"ticket": 1, "intent": "x", "turn_id": "a b"}"#)
            .message
            .starts_with("turn_id"));
        for hostile in ["", "null", "[]", "{", "\"x\"", "{\"ticket\":1e400}"] {
            assert_eq!(err(hostile).status, StatusCode::BAD_REQUEST, "{hostile}");
        }
    }

    #[test]
    fn the_same_turn_spaced_differently_has_the_same_digest() {
        let a = parse_turn(br#"{"ticket":1,"intent":"x","fields":{"b":1,"a":2}}"#).unwrap();
        let b =
            parse_turn(b"{ \"intent\": \"x\", \"ticket\": 1, \"fields\": {\"a\": 2, \"b\": 1} }")
                .unwrap();
        let c = parse_turn(br#"{"ticket":1,"intent":"y"}"#).unwrap();
        assert_eq!(a.digest, b.digest);
        assert_ne!(a.digest, c.digest);
    }
}
