//! A tool call, carried out: the write tools become an agent turn decided
//! and recorded like any other (decide -> outbox -> connector, the event
//! keyed by agent, tool and call), the read tools answer from Zendesk, the
//! cache and the program. Answers are compact: what an agent acts on, not
//! the vendors' JSON.

use super::super::answer::TurnAnswer;
use super::super::context::{context, ContextQuery};
use super::super::fail::{bad, Fail};
use super::super::request::{known_fields, parse_turn, turn_key};
use super::super::{run_turn, AgentApi};
use super::outcome::{file_name, Outcome};
use crate::eval::status::{decide as decide_status, Transition};
use axum::extract::{Path, Query};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

fn args<T: for<'de> Deserialize<'de>>(args: Map<String, Value>) -> Result<T, Fail> {
    serde_path_to_error::deserialize(Value::Object(args)).map_err(|e| {
        let path = e.path().to_string();
        match path.as_str() {
            "." | "" | "?" => bad(e.inner().to_string()),
            _ => bad(format!("{path}: {}", e.inner())),
        }
    })
}

pub(super) async fn call(
    api: &Arc<AgentApi>,
    agent: &str,
    tool: &str,
    arguments: Map<String, Value>,
) -> Result<Outcome, Fail> {
    match tool {
        "get_ticket_context" => ticket_context(api, args(arguments)?).await,
        "normalise_sku" => normalise_sku(api, args(arguments)?),
        "explain_decision" => super::explain::explain(api, agent, args(arguments)?).await,
        "request_status_change" => {
            let a: StatusArgs = args(arguments)?;
            let turn = json!({
                "ticket": a.ticket,
                "intent": a.intent.unwrap_or_else(|| "status_change".into()),
                "summary": a.summary,
                "requested_status": a.status,
            });
            write(api, agent, tool, turn, a.idempotency_key).await
        }
        "set_ticket_field" => {
            let a: FieldArgs = args(arguments)?;
            if a.fields.is_empty() {
                return Err(bad("fields: name at least one field to write"));
            }
            let turn =
                json!({"ticket": a.ticket, "intent": "set_field", "requested_fields": a.fields});
            write(api, agent, tool, turn, a.idempotency_key).await
        }
        "escalate" => {
            let a: EscalateArgs = args(arguments)?;
            if a.summary.trim().is_empty() {
                return Err(bad("summary: must not be empty"));
            }
            let turn = json!({
                "ticket": a.ticket,
                "intent": a.intent.unwrap_or_else(|| "escalation".into()),
                "summary": a.summary,
                "attempts": a.attempts,
                "sentiment": a.sentiment,
                "refund_amount": a.refund_amount,
                "case": a.case,
                "requested_escalation": a.escalation,
            });
            write(api, agent, tool, turn, a.idempotency_key).await
        }
        "submit_turn" => {
            let body = serde_json::to_vec(&Value::Object(arguments)).unwrap_or_default();
            let checked = checked(api, &body)?;
            let event_id = match &checked.req.turn_id {
                Some(t) => turn_key(agent, &format!("mcp.{tool}.{t}")),
                None => turn_key(agent, &format!("mcp.{tool}.{:032x}", fastrand::u128(..))),
            };
            let memoized = checked.req.turn_id.is_some();
            let answer = run_turn(api, event_id, checked, memoized, false).await?;
            Ok(outcome(api, &answer, false))
        }
        _ => Err(bad(format!("no tool {tool:?}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TicketArgs {
    ticket: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusArgs {
    ticket: Value,
    status: String,
    #[serde(default)]
    intent: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldArgs {
    ticket: Value,
    fields: BTreeMap<String, Value>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EscalateArgs {
    ticket: Value,
    escalation: String,
    summary: String,
    #[serde(default)]
    attempts: Vec<String>,
    #[serde(default)]
    sentiment: Option<String>,
    #[serde(default)]
    intent: Option<String>,
    #[serde(default)]
    refund_amount: Option<Value>,
    #[serde(default)]
    case: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SkuArgs {
    product: String,
    #[serde(default)]
    table: Option<String>,
}

fn checked(api: &AgentApi, body: &[u8]) -> Result<super::super::request::Checked, Fail> {
    let c = parse_turn(body)?;
    known_fields(
        &c.req.fields,
        api.app.engine.live().program.index().ticket_field_ids(),
    )?;
    Ok(c)
}

/// A write tool's turn, keyed: by the agent's key for it, else by what it
/// says and the ticket's version as read (a retry on an unchanged ticket
/// is the same call; one after the ticket changed is decided again).
async fn write(
    api: &Arc<AgentApi>,
    agent: &str,
    tool: &str,
    mut turn: Value,
    key: Option<String>,
) -> Result<Outcome, Fail> {
    let (turn_id, memoized, versioned) = match key {
        Some(k) => {
            if k.is_empty()
                || k.len() > 100
                || k.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                return Err(bad(
                    "idempotency_key: 1 to 100 bytes, without spaces or control characters",
                ));
            }
            (format!("mcp.{tool}.{k}"), true, false)
        }
        None => {
            let said = Sha256::digest(turn.to_string().as_bytes());
            let hex: String = said[..12].iter().map(|b| format!("{b:02x}")).collect();
            (format!("mcp.{tool}.{hex}"), false, true)
        }
    };
    if let Some(o) = turn.as_object_mut() {
        o.retain(|_, v| !v.is_null());
        o.insert("turn_id".into(), Value::String(turn_id.clone()));
    }
    let body = serde_json::to_vec(&turn).unwrap_or_default();
    let checked = checked(api, &body)?;
    let event_id = turn_key(agent, &turn_id);
    let answer = run_turn(api, event_id, checked, memoized, versioned).await?;
    Ok(outcome(api, &answer, tool == "request_status_change"))
}

/// A turn's answer as a tool's: compact, with the statuses the ticket may
/// move to when a status change was refused.
fn outcome(api: &AgentApi, a: &TurnAnswer, targets: bool) -> Outcome {
    if let Some(kept) = &a.replay {
        // Decided by another replica of the fleet: its answer, as it is.
        return Outcome {
            value: json!({"call_id": a.turn, "outcome": "duplicate", "duplicate": true,
                "accepted": [], "refused": [], "answer": kept}),
            is_error: false,
            result: "duplicate",
            structured: true,
        };
    }
    let accepted: Vec<Value> = a.accepted.iter().map(compact).collect();
    let refused: Vec<Value> = a
        .refused
        .iter()
        .map(|r| json!({"what": r.what, "reason": r.reason, "source": r.source.as_deref().map(file_name)}))
        .collect();
    // A retry is answered as the first call was: its lists tell. A retry
    // that found only the stored event (no first answer to replay) says
    // so, never "accepted".
    let label = match (accepted.is_empty(), refused.is_empty()) {
        (true, true) if a.duplicate => "duplicate",
        (false, true) => "accepted",
        (false, false) => "partly_refused",
        (true, false) => "refused",
        (true, true) => "nothing_to_do",
    };
    let result = if a.duplicate { "duplicate" } else { label };
    let mut value = json!({
        "call_id": a.turn,
        "outcome": label,
        "duplicate": a.duplicate,
        "ticket": a.ticket,
        "accepted": accepted,
        "refused": refused,
    });
    if let Some(c) = &a.handoff_comment {
        value["handoff_comment"] = json!(c);
    }
    if let Some(m) = &a.message {
        value["message"] = json!(m);
    }
    if targets && label == "refused" {
        value["allowed_targets"] = json!(allowed_targets(api, a));
    }
    Outcome {
        value,
        is_error: label == "refused",
        result,
        structured: true,
    }
}

/// An accepted action without what only l3map needs (keys, byte spans).
fn compact(plan: &Value) -> Value {
    let mut out = Map::new();
    for k in ["action", "to", "group", "sku", "input", "rule"] {
        if let Some(v) = plan.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    if let Some(v) = plan.get("value") {
        // The IR's tagged value (`{"t": "str", "v": ...}`) as plain JSON.
        out.insert("value".into(), v.get("v").unwrap_or(v).clone());
    }
    if let Some(s) = plan.get("source").and_then(Value::as_str) {
        out.insert("source".into(), json!(file_name(s)));
    }
    if let Some(f) = plan.get("field") {
        let name = f.get("field").or_else(|| f.get("path")).cloned();
        out.insert("field".into(), name.unwrap_or(Value::Null));
    }
    if let Some(system) = plan.pointer("/record/system") {
        out.insert("on".into(), system.clone());
    }
    Value::Object(out)
}

/// The statuses the ticket may move to now, each with the transition that
/// allows it, decided on the same event the refused request was.
fn allowed_targets(api: &AgentApi, a: &TurnAnswer) -> Vec<Value> {
    let live = api.app.engine.live();
    let p = &live.program;
    let (Some(ev), Some(table)) = (&a.event, p.status_tables_zendesk_first().next()) else {
        return vec![];
    };
    let Some(from) = ev.ticket.as_ref().and_then(|t| t.status.as_deref()) else {
        return vec![];
    };
    table
        .statuses
        .iter()
        .filter(|s| s.name != from)
        .filter_map(|s| match decide_status(p, table, from, &s.name, ev) {
            Transition::Allowed { rule } => Some(json!({
                "status": s.name,
                "label": s.label,
                "source": p.files.get(rule.file as usize).map(|f| format!("{}:{}", file_name(f), rule.line)),
            })),
            Transition::Refused { .. } => None,
        })
        .collect()
}

async fn ticket_context(api: &AgentApi, a: TicketArgs) -> Result<Outcome, Fail> {
    let ticket = match &a.ticket {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(bad("ticket: a Zendesk ticket id (digits)")),
    };
    let c = context(
        &api.app,
        Ok(Path(ticket)),
        Ok(Query(ContextQuery::default())),
    )
    .await?;
    let account = c.account.as_ref().map(|acc| {
        let keep: Map<String, Value> = acc
            .iter()
            .filter(|(k, v)| ["Id", "Name"].contains(&k.as_str()) && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        json!({
            "record": keep,
            "as_ticket_fields": c.account_as_ticket_fields,
            "from_cache": c.cached.account,
        })
    });
    Ok(Outcome::read(json!({
        "ticket": c.ticket,
        "account": account,
        "revision": c.revision,
    })))
}

fn normalise_sku(api: &AgentApi, a: SkuArgs) -> Result<Outcome, Fail> {
    let live = api.app.engine.live();
    let p = &live.program;
    if a.product.trim().is_empty() || a.product.len() > 500 {
        return Err(bad("product: 1 to 500 bytes of text"));
    }
    let table = match &a.table {
        Some(name) => p
            .sku_tables
            .iter()
            .find(|t| &t.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = p.sku_tables.iter().map(|t| t.name.as_str()).collect();
                bad(format!(
                    "table: no SKU table {name:?} (the tables: {})",
                    names.join(", ")
                ))
            })?,
        None => p
            .sku_tables
            .first()
            .ok_or_else(|| bad("the mappings declare no SKU table"))?,
    };
    let out = match table.matcher().lookup(&a.product) {
        Some(m) => {
            let source = table.rules.get(m.rule).and_then(|r| {
                p.files
                    .get(r.loc.file as usize)
                    .map(|f| format!("{}:{}", file_name(f), r.loc.line))
            });
            json!({"table": table.name, "input": a.product, "sku": m.product, "source": source})
        }
        None => json!({
            "table": table.name, "input": a.product, "sku": null,
            "message": format!("no product matches {:?}; ask the customer which product they mean", a.product),
        }),
    };
    Ok(Outcome::read(out))
}
