//! `explain_decision`: why a call was decided as it was. The call's event
//! is read back from the store (only the asking agent's own calls) and
//! decided again by the revision now live, which is pure and sends
//! nothing; each refusal and action comes with its rule's place and the
//! rule as written, so the agent can quote the org's own policy.

use super::super::fail::{bad, fail, Fail};
use super::super::request::turn_key;
use super::super::AgentApi;
use super::outcome::{file_name, Outcome};
use crate::eval::decide::decide;
use crate::eval::event::Event;
use crate::ir::{Loc, Program};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExplainArgs {
    call_id: String,
}

pub(super) async fn explain(api: &AgentApi, agent: &str, a: ExplainArgs) -> Result<Outcome, Fail> {
    // Another agent's calls are not this one's to read: not found, as an
    // id that never existed.
    let mine = turn_key(agent, "");
    let not_found = || {
        fail(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no call {:?} of yours is recorded (events are kept 30 days by default)",
                a.call_id
            ),
        )
    };
    if !a.call_id.starts_with(&mine) || a.call_id.len() > 600 {
        return Err(not_found());
    }
    let (store, key) = (api.app.engine.store.clone(), a.call_id.clone());
    let stored = tokio::task::spawn_blocking(move || store.event(&key))
        .await
        .map_err(|_| {
            fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the store read failed",
            )
        })?
        .map_err(|e| {
            fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("the store could not be read: {e}"),
            )
        })?
        .ok_or_else(not_found)?;
    let ev = Event::from_json(&stored).map_err(|e| bad(format!("the recorded call: {e}")))?;
    let live = api.app.engine.live();
    let p = &live.program;
    let d = decide(p, &ev);
    let refused: Vec<Value> = d
        .refused
        .iter()
        .map(|r| {
            json!({
                "what": r.what,
                "reason": r.reason,
                "source": r.loc.and_then(|l| place(p, &l)),
                "rule": r.loc.and_then(|l| text(p, &l)),
            })
        })
        .collect();
    let accepted: Vec<Value> = d
        .actions
        .iter()
        .map(|x| {
            json!({
                "action": serde_json::to_value(&x.kind).ok().and_then(|k| k.get("action").cloned()),
                "rule": x.rule.to_string(),
                "source": place(p, &x.loc),
                "text": text(p, &x.loc),
            })
        })
        .collect();
    Ok(Outcome {
        value: json!({
            "call_id": a.call_id,
            "revision": p.revision,
            "note": "decided again by the mapping revision now live; nothing was sent",
            "refused": refused,
            "accepted": accepted,
        }),
        is_error: false,
        result: "accepted",
        structured: true,
    })
}

fn place(p: &Program, l: &Loc) -> Option<String> {
    p.files
        .get(l.file as usize)
        .map(|f| format!("{}:{}:{}", file_name(f), l.line, l.col))
}

/// The rule at `l`, as the program keeps it: a transition with its
/// condition as written, an escalation with its condition and reason, a
/// field's declaration, a status.
fn text(p: &Program, l: &Loc) -> Option<String> {
    let flat = |c: &str| c.split_whitespace().collect::<Vec<_>>().join(" ");
    for t in &p.status_tables {
        if let Some(tr) = t.transitions.iter().find(|tr| tr.loc == *l) {
            let when = tr
                .condition
                .as_deref()
                .map(|c| format!("  when {}", flat(c)));
            return Some(format!(
                "{} -> {}{}",
                tr.from.join(", "),
                tr.to.join(", "),
                when.unwrap_or_default()
            ));
        }
        if let Some(s) = t.statuses.iter().find(|s| s.loc == *l) {
            let terminal = if s.terminal { " terminal" } else { "" };
            return Some(format!("{} {}{terminal}", s.name, s.category.as_str()));
        }
    }
    let statement = |e: &crate::ir::Escalation| {
        e.actions.iter().any(|a| {
            serde_json::to_value(a)
                .ok()
                .and_then(|v| v.get("loc").cloned())
                .and_then(|v| serde_json::from_value::<Loc>(v).ok())
                == Some(*l)
        })
    };
    if let Some(e) = p.escalations.iter().find(|e| e.loc == *l || statement(e)) {
        return Some(format!(
            "escalation {} {{ when {}  reason {:?} }}",
            e.name,
            flat(e.condition.as_deref().unwrap_or("")),
            e.reason
        ));
    }
    if let Some(f) = p.ticket_fields.iter().find(|f| f.loc == *l) {
        return Some(format!(
            "{} {}",
            f.alias(),
            serde_json::to_string(&f.ty).unwrap_or_default()
        ));
    }
    None
}
