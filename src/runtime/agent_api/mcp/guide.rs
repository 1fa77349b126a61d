//! What an agent may read besides the tools: each status table as a
//! resource (its statuses, its transitions and a Mermaid graph of them),
//! and the escalation policy in plain language as a prompt. Built from the
//! live program, like the tools.

use crate::ir::{EscAction, Program, StatusTable};
use serde_json::{json, Value};

const SCHEME: &str = "l3map://statuses/";

/// `resources/list`'s answer.
pub(super) fn resources(p: &Program) -> Value {
    let list: Vec<Value> = p
        .status_tables
        .iter()
        .map(|t| {
            json!({
                "uri": format!("{SCHEME}{}", t.connection),
                "name": format!("statuses-{}", t.connection),
                "title": format!("The status table of {}", t.connection),
                "description": "Every status, the transitions an agent may request and their conditions, and a Mermaid graph of them.",
                "mimeType": "text/markdown"
            })
        })
        .collect();
    json!({ "resources": list })
}

/// `resources/read`'s answer, or `None` for a URI that names no table.
pub(super) fn read(p: &Program, uri: &str) -> Option<Value> {
    let conn = uri.strip_prefix(SCHEME)?;
    let t = p.status_tables.iter().find(|t| t.connection == conn)?;
    Some(json!({
        "contents": [{"uri": uri, "mimeType": "text/markdown", "text": table_text(t)}]
    }))
}

fn table_text(t: &StatusTable) -> String {
    let mut s = format!(
        "# Statuses of `{}`\n\n| status | category | label |\n|---|---|---|\n",
        t.connection
    );
    for st in &t.statuses {
        let terminal = if st.terminal { " (terminal)" } else { "" };
        s.push_str(&format!(
            "| {} | {}{terminal} | {} |\n",
            st.name,
            st.category.as_str(),
            st.label.as_deref().unwrap_or("")
        ));
    }
    s.push_str("\n## Transitions an agent may request\n\n");
    s.push_str(&super::catalog::transitions(t));
    s.push_str("\n\n## Graph\n\n```mermaid\nflowchart LR\n");
    for tr in &t.transitions {
        let label = tr
            .condition
            .as_deref()
            .map(|c| {
                let flat = c.split_whitespace().collect::<Vec<_>>().join(" ");
                format!("|\"{}\"|", flat.replace('"', "#quot;"))
            })
            .unwrap_or_default();
        for f in &tr.from {
            for to in &tr.to {
                s.push_str(&format!("  s_{f}[{f}] -->{label} s_{to}[{to}]\n"));
            }
        }
    }
    s.push_str("```\n");
    s
}

/// `prompts/list`'s answer.
pub(super) fn prompts() -> Value {
    json!({"prompts": [{
        "name": "escalation_policy",
        "title": "When to hand off to a person",
        "description": "The org's escalation policy in plain language, from the mappings: when the AI hands a conversation to a person, and what it leaves behind."
    }]})
}

/// `prompts/get`'s answer for `escalation_policy`.
pub(super) fn policy(p: &Program) -> Value {
    let mut s = String::from(
        "These are the org's escalations, tried in this order; only the first whose condition holds hands off. Use the `escalate` tool with the escalation's name and the facts its condition reads; never promise what an escalation would decide.\n",
    );
    for (i, e) in p.escalations.iter().enumerate() {
        let when = e
            .condition
            .as_deref()
            .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        s.push_str(&format!(
            "\n{}. `{}`: {}\n   When: {when}\n   It leaves:",
            i + 1,
            e.name,
            e.reason
        ));
        for a in &e.actions {
            s.push_str(&format!("\n   - {}", action(a)));
        }
        s.push('\n');
    }
    if p.escalations.is_empty() {
        s.push_str("\nThe mappings declare no escalation: keep the conversation.\n");
    }
    json!({
        "description": "The escalation policy",
        "messages": [{"role": "user", "content": {"type": "text", "text": s}}]
    })
}

fn action(a: &EscAction) -> String {
    match serde_json::to_value(a) {
        Ok(v) => {
            let what = v.get("action").and_then(Value::as_str).unwrap_or("action");
            let on = v.get("connection").and_then(Value::as_str).unwrap_or("");
            match what {
                "comment" => format!("a private hand-off comment on {on}"),
                "assign_group" => format!(
                    "the ticket assigned to the group {}",
                    v.get("group").and_then(Value::as_str).unwrap_or("?")
                ),
                "set_status" => format!(
                    "the status {}",
                    v.get("status").and_then(Value::as_str).unwrap_or("?")
                ),
                "set_field" => "a field set (see the mappings)".into(),
                other => other.replace('_', " "),
            }
        }
        Err(_) => "an action".into(),
    }
}
