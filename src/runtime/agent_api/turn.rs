//! Deciding a turn: the ticket as Zendesk has it now, the agent's turn as
//! an event, decided and recorded by the engine like any other.

use super::answer::{Read, SeenTicket, Stale, TurnAnswer};
use super::fail::{fail, Fail};
use super::reads::{convert_ticket, read_linked, resolve_links};
use super::request::Checked;
use crate::connectors::zendesk::CustomFieldValue;
use crate::eval::event::{Event, EventKind, MoneyJson, Turn};
use crate::runtime::app::App;
use axum::http::StatusCode;
use serde_json::{Map, Value as JsonValue};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The target its log lines had before the module was split, so operators'
/// filters (`RUST_LOG`, alerts on the JSON `target`) keep matching.
const LOG_TARGET: &str = "l3map::runtime::agent_api";

/// The event source the store and the metrics know agent turns by.
pub(super) const SOURCE: &str = "agent";

/// Reads the ticket, decides the turn and records it: the part of a turn
/// that runs once per turn id.
pub(super) async fn execute(
    app: &App,
    event_id: &str,
    checked: Checked,
    versioned: bool,
) -> Result<TurnAnswer, Fail> {
    let Checked {
        req,
        ticket,
        digest,
    } = checked;
    let live = app.engine.live();
    // A Case-only turn has no ticket to compare the agent's fields with.
    let (ticket, stale_fields, linked) = match ticket {
        Some(id) => {
            let (raw, side) = read_linked(app, id).await?;
            let seen = convert_ticket(&raw, &live.convert.statuses)?;
            let names = live.program.index().ticket_field_ids();
            let linked = resolve_links(app, &side).await;
            (
                Some(seen),
                stale(&req.fields, names, &raw.custom_fields),
                linked,
            )
        }
        None => (None, Vec::new(), None),
    };
    // The linked records (the ticket's Account, Contact, Case), as a
    // record change would carry them.
    let mut records: BTreeMap<String, Map<String, JsonValue>> = linked
        .as_ref()
        .map(|l| l.records.clone())
        .unwrap_or_default();
    if let Some(case) = &req.case {
        // The Case the agent names wins over a linked one.
        let mut m = Map::new();
        m.insert("Id".into(), JsonValue::String(case.clone()));
        records.insert("Case".to_string(), m);
    }
    // A call without a key of its own is the same call only on the same
    // ticket: its id ends with the ticket's version as read.
    let versioned_id;
    let event_id = match (versioned, &ticket) {
        (true, Some(t)) => {
            versioned_id = format!("{event_id}@{}", t.updated_at.as_deref().unwrap_or("-"));
            versioned_id.as_str()
        }
        _ => event_id,
    };
    let seen_ticket = ticket.as_ref().map(|t| SeenTicket {
        id: t.id,
        status: t.status.clone(),
    });
    let ev = Event {
        id: event_id.to_string(),
        kind: EventKind::AgentTurn,
        at: jiff::Timestamp::now().to_string(),
        ticket,
        comment: None,
        turn: Some(Turn {
            intent: Some(req.intent),
            summary: req.summary,
            attempts: req.attempts,
            sentiment: req.sentiment,
            refund_amount: req.refund_amount.map(|m| MoneyJson {
                amount: m.amount,
                currency: m.currency,
            }),
            requested_status: req.requested_status,
            confidence: req.confidence,
            language: req.language,
            order_id: req.order_id,
            product: req.product,
            requested_fields: req.requested_fields,
            requested_escalation: req.requested_escalation,
        }),
        records,
        changed: vec![],
    };
    let decided = ev.clone();
    let ingested = app.engine.ingest(SOURCE, ev, None).await.map_err(|e| {
        tracing::error!(target: LOG_TARGET, error = %e, "agent API: cannot record a turn");
        fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the turn could not be recorded; send it again with the same turn_id",
        )
    })?;
    // `source` is computed from the revision that decided, which a reload
    // may have replaced since; the one now live is used only if it is that
    // revision.
    let live = app.engine.live();
    let files: &[String] = if live.program.revision == ingested.revision {
        &live.program.files
    } else {
        &[]
    };
    let new = matches!(
        ingested.accepted,
        crate::runtime::store::Accepted::New { .. }
    );
    if !new {
        // Decided by another replica of the fleet: its answer, when kept.
        if let Some(kept) = kept_answer(app, event_id).await {
            return replay(event_id, kept, digest);
        }
    }
    let read = Read {
        ticket: seen_ticket,
        linked,
        stale_fields,
        digest,
    };
    let mut answer = TurnAnswer::new(event_id, ingested, read, files);
    answer.event = Some(Arc::new(decided));
    if new {
        keep_answer(app, event_id, &answer).await;
    }
    Ok(answer)
}

/// Keeps `answer` in the store for a retry another replica takes (a
/// fleet's store; nothing on SQLite). Before the turn is answered, so a
/// retry that finds the event finds the answer too.
async fn keep_answer(app: &App, event_id: &str, answer: &TurnAnswer) {
    // One process answers its own retries from memory: no hop to a store
    // that keeps nothing.
    if !app.engine.store.path().starts_with("postgres:") {
        return;
    }
    let Ok(json) = serde_json::to_string(answer) else {
        return;
    };
    let (store, key, digest) = (
        app.engine.store.clone(),
        event_id.to_string(),
        hex(&answer.digest),
    );
    match tokio::task::spawn_blocking(move || store.keep_answer(&key, &json, &digest)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(target: LOG_TARGET, error = %e, "agent API: the turn's answer could not be kept for a retry on another replica")
        }
        Err(_) => {}
    }
}

/// The answer kept for `event_id` by the replica that decided it, waited
/// for a moment: its event commits a little before its answer is kept.
async fn kept_answer(app: &App, event_id: &str) -> Option<(String, String)> {
    for _ in 0..20 {
        let (store, key) = (app.engine.store.clone(), event_id.to_string());
        match tokio::task::spawn_blocking(move || store.kept_answer(&key)).await {
            Ok(Ok(Some(kept))) => return Some(kept),
            // No fleet, or nothing kept (over an hour ago).
            Ok(Ok(None)) if !app.engine.store.path().starts_with("postgres:") => return None,
            Ok(Ok(None)) => {}
            _ => return None,
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    None
}

/// A kept answer as this turn's: refused when this request is another
/// turn under the same turn id.
fn replay(
    event_id: &str,
    (answer, kept_digest): (String, String),
    digest: [u8; 32],
) -> Result<TurnAnswer, Fail> {
    if kept_digest != hex(&digest) {
        return Err(fail(
            StatusCode::CONFLICT,
            "turn_id_reused",
            "this turn_id was already used for a different turn; use a new turn_id for a new turn",
        ));
    }
    let json = serde_json::from_str(&answer).unwrap_or(JsonValue::Null);
    Ok(TurnAnswer::replayed(event_id, json, digest))
}

fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fields the agent reported that Zendesk holds differently.
fn stale(
    agent: &BTreeMap<String, JsonValue>,
    names: &BTreeMap<String, u64>,
    zendesk: &[CustomFieldValue],
) -> Vec<Stale> {
    let mut out = Vec::new();
    for (name, said) in agent {
        // Unknown names were refused up front; one missing here went
        // with a reload in between and has nothing to compare with.
        let Some(id) = names.get(name) else {
            continue;
        };
        let has = zendesk
            .iter()
            .find(|f| f.id == *id)
            .map_or(JsonValue::Null, |f| f.value.clone());
        if !same_value(said, &has) {
            out.push(Stale {
                field: name.clone(),
                agent: said.clone(),
                zendesk: has,
            });
        }
    }
    out
}

/// Zendesk keeps decimals as text (`"72.0"`) and an agent sends numbers
/// (`72`): both are the same value.
fn same_value(a: &JsonValue, b: &JsonValue) -> bool {
    let num = |v: &JsonValue| match v {
        JsonValue::Number(n) => n.as_f64(),
        JsonValue::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn zendesk_text_decimals_equal_agent_numbers() {
        assert!(same_value(&json!(72), &json!("72.0")));
        assert!(same_value(&json!("premium"), &json!("premium")));
        assert!(!same_value(&json!("premium"), &json!("enterprise")));
        assert!(!same_value(&json!(true), &JsonValue::Null));
    }
}
