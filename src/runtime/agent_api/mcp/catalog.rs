//! The MCP tools as the running mappings define them: each input schema
//! enumerates what the mappings declare (statuses, fields and their types,
//! escalations, SKU tables), and each description says what the rules
//! allow, so an agent picks a legal call before it makes one. Rebuilt from
//! the live program on every `tools/list`, so a hot reload changes them.

use crate::ir::{Program, StatusTable, Type};
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{json, Value};
use std::sync::Arc;

/// The tools an agent may see: all of them, or its `tools = [...]`.
pub(super) fn tools(p: &Program, allowed: Option<&[String]>) -> Vec<Tool> {
    // A tool the mappings give nothing to work with is not offered: no
    // status table, no status change; no SKU table, no normalising.
    let all = [
        Some(get_ticket_context()),
        desk_table(p).map(|_| request_status_change(p)),
        (!writable(p).is_empty()).then(|| set_ticket_field(p)),
        (!p.sku_tables.is_empty()).then(|| normalise_sku(p)),
        (!p.escalations.is_empty()).then(|| escalate(p)),
        Some(explain_decision()),
        Some(submit_turn(p)),
    ];
    all.into_iter()
        .flatten()
        .filter(|t| allowed.is_none_or(|a| a.iter().any(|n| n == t.name.as_ref())))
        .collect()
}

fn object(v: Value) -> Arc<JsonObject> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => Arc::new(JsonObject::new()),
    }
}

fn tool(name: &'static str, title: &str, description: String, input: Value) -> Tool {
    Tool::new(name, description, object(input)).with_title(title)
}

fn reads(title: &str) -> ToolAnnotations {
    ToolAnnotations::with_title(title)
        .read_only(true)
        .destructive(false)
        .idempotent(true)
        .open_world(true)
}

/// A write: it changes a ticket, never deletes; the same call with the
/// same `idempotency_key` (or on an unchanged ticket) is applied once.
fn writes(title: &str) -> ToolAnnotations {
    ToolAnnotations::with_title(title)
        .read_only(false)
        .destructive(false)
        .idempotent(true)
        .open_world(true)
}

const TICKET: &str = "The Zendesk ticket id (digits).";
const KEY: &str = "Optional: a key of yours for this call. The same key with the same arguments is applied once and answered the same, however often it is sent; without one, a call repeated on a ticket nothing changed since is recognised too.";

fn ticket() -> Value {
    json!({"type": ["integer", "string"], "pattern": "^[0-9]+$", "description": TICKET})
}

fn key() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 100, "description": KEY})
}

/// A string of `options` (any string when there are none: an empty
/// `enum` would allow nothing).
fn one_of<S: serde::Serialize>(options: &[S], description: &str) -> Value {
    if options.is_empty() {
        json!({"type": "string", "description": description})
    } else {
        json!({"type": "string", "enum": options, "description": description})
    }
}

fn sentiment() -> Value {
    json!({"type": "string", "enum": ["positive", "neutral", "negative", "angry"]})
}

fn money() -> Value {
    json!({
        "type": "object",
        "properties": {
            "amount": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$", "description": "Decimal text, such as \"250.00\"."},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217, such as \"USD\"."}
        },
        "required": ["amount", "currency"],
        "additionalProperties": false
    })
}

/// What a write tool answers (its `structuredContent`).
pub(super) fn outcome_schema() -> Arc<JsonObject> {
    object(json!({
        "type": "object",
        "properties": {
            "call_id": {"type": "string", "description": "Give it to explain_decision."},
            "outcome": {"type": "string", "enum": ["accepted", "refused", "partly_refused", "nothing_to_do", "duplicate"], "description": "duplicate: this call was made before and its first answer is not at hand (see message); nothing was queued again."},
            "duplicate": {"type": "boolean", "description": "This call was made before: nothing was queued again."},
            "ticket": {"type": ["object", "null"]},
            "accepted": {"type": "array", "items": {"type": "object"}},
            "refused": {"type": "array", "items": {"type": "object"}},
            "allowed_targets": {"type": "array", "items": {"type": "object"}},
            "handoff_comment": {"type": ["string", "null"]},
            "message": {"type": "string"}
        },
        "required": ["call_id", "outcome", "duplicate", "accepted", "refused"]
    }))
}

fn get_ticket_context() -> Tool {
    tool(
        "get_ticket_context",
        "Ticket context",
        "The ticket as Zendesk has it now: its status (the desk's own status names), its custom fields by their names, its tags; and the linked Salesforce Account (tier, SLA) as the mappings translate it, from a 15-minute cache. Read-only.".into(),
        json!({
            "type": "object",
            "properties": {"ticket": ticket()},
            "required": ["ticket"],
            "additionalProperties": false
        }),
    )
    .annotate(reads("Ticket context"))
}

/// The first Zendesk table: the one an agent's status request is decided by.
fn desk_table(p: &Program) -> Option<&StatusTable> {
    p.status_tables_zendesk_first().next()
}

/// The transitions as `from -> to (when …)` lines.
pub(super) fn transitions(t: &StatusTable) -> String {
    t.transitions
        .iter()
        .map(|tr| {
            let when = tr
                .condition
                .as_deref()
                .map(|c| {
                    format!(
                        " (when {})",
                        c.split_whitespace().collect::<Vec<_>>().join(" ")
                    )
                })
                .unwrap_or_default();
            format!("- {} -> {}{when}", tr.from.join(", "), tr.to.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn request_status_change(p: &Program) -> Tool {
    let (names, rules) = match desk_table(p) {
        Some(t) => (
            t.statuses
                .iter()
                // Zendesk never lets a ticket return to a status of category new.
                .filter(|s| s.category != crate::model::Category::New)
                .map(|s| s.name.clone())
                .collect::<Vec<_>>(),
            transitions(t),
        ),
        None => (vec![], "(the mappings declare no status table)".into()),
    };
    tool(
        "request_status_change",
        "Request a status change",
        format!(
            "Ask to move the ticket to another status. l3map decides it against the desk's transition table and applies it only if a transition allows it from the ticket's current status; a refusal says why and lists the statuses the ticket may move to. The legal transitions:\n{rules}"
        ),
        json!({
            "type": "object",
            "properties": {
                "ticket": ticket(),
                "status": {"type": "string", "enum": names, "description": "The status wanted, by its name in the table."},
                "intent": {"type": "string", "maxLength": 200, "description": "What the customer wants (\"refund\", \"fraud_report\"); some transitions depend on it. Default: \"status_change\"."},
                "summary": {"type": "string", "maxLength": 4000},
                "idempotency_key": key()
            },
            "required": ["ticket", "status"],
            "additionalProperties": false
        }),
    )
    .annotate(writes("Request a status change"))
    .with_raw_output_schema(outcome_schema())
}

/// A field's type as JSON Schema, enums enumerated.
fn field_schema(ty: &Type, label: Option<&str>) -> Value {
    let mut s = match ty {
        Type::String => json!({"type": "string", "maxLength": 10000}),
        Type::Number => json!({"type": "number"}),
        Type::Bool => json!({"type": "boolean"}),
        Type::Date => json!({"type": "string", "format": "date"}),
        Type::Money(Some(c)) => {
            json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$", "description": format!("An amount in {c}, as decimal text.")})
        }
        Type::Money(None) => money(),
        Type::Enum(options) => json!({"type": "string", "enum": options}),
        _ => json!({}),
    };
    if let (Some(l), Some(o)) = (label, s.as_object_mut()) {
        let d = match o.get("description").and_then(Value::as_str) {
            Some(d) => format!("{l}. {d}"),
            None => l.to_string(),
        };
        o.insert("description".into(), Value::String(d));
    }
    s
}

/// The declared ticket fields an agent may write
/// ([`crate::eval::decide::not_the_agents`]).
pub(super) fn writable(p: &Program) -> Vec<&crate::ir::TicketField> {
    p.ticket_fields
        .iter()
        .filter(|f| crate::eval::decide::not_the_agents(p, f).is_none())
        .collect()
}

fn set_ticket_field(p: &Program) -> Tool {
    let fields = writable(p);
    let properties: serde_json::Map<String, Value> = fields
        .iter()
        .map(|f| {
            (
                f.alias().to_string(),
                field_schema(&f.ty, f.label.as_deref()),
            )
        })
        .collect();
    let names: Vec<&str> = fields.iter().map(|f| f.alias()).collect();
    tool(
        "set_ticket_field",
        "Set ticket fields",
        format!(
            "Write one or more of the ticket's custom fields, by the names the mappings declare: {}. Each value must be of the field's type (enums are listed). Fields fed from Salesforce by a mapping, and fields a transition or an escalation decides on or writes, are not offered: a person or Salesforce sets those. A value the ticket already holds is no write.",
            if names.is_empty() { "(none)".to_string() } else { names.join(", ") }
        ),
        json!({
            "type": "object",
            "properties": {
                "ticket": ticket(),
                "fields": {
                    "type": "object",
                    "properties": properties,
                    "additionalProperties": false,
                    "minProperties": 1
                },
                "idempotency_key": key()
            },
            "required": ["ticket", "fields"],
            "additionalProperties": false
        }),
    )
    .annotate(writes("Set ticket fields"))
    .with_raw_output_schema(outcome_schema())
}

fn normalise_sku(p: &Program) -> Tool {
    let tables: Vec<&str> = p.sku_tables.iter().map(|t| t.name.as_str()).collect();
    tool(
        "normalise_sku",
        "Normalise a product name",
        format!(
            "The catalogue's product id for what the customer called a product, by the mappings' SKU tables ({}). No match: ask the customer which product they mean. Read-only.",
            if tables.is_empty() { "none declared".to_string() } else { tables.join(", ") }
        ),
        json!({
            "type": "object",
            "properties": {
                "product": {"type": "string", "minLength": 1, "maxLength": 500, "description": "The product as the customer wrote it."},
                "table": one_of(&tables, "Which SKU table (default: the first).")
            },
            "required": ["product"],
            "additionalProperties": false
        }),
    )
    .annotate(reads("Normalise a product name"))
    .with_raw_output_schema(object(json!({
        "type": "object",
        "properties": {
            "table": {"type": "string"},
            "input": {"type": "string"},
            "sku": {"type": ["string", "null"]},
            "source": {"type": ["string", "null"]},
            "message": {"type": "string"}
        },
        "required": ["table", "input", "sku"]
    })))
}

fn escalate(p: &Program) -> Tool {
    let names: Vec<&str> = p.escalations.iter().map(|e| e.name.as_str()).collect();
    let list = p
        .escalations
        .iter()
        .map(|e| {
            format!(
                "- {}: {} (when {})",
                e.name,
                e.reason,
                e.condition
                    .as_deref()
                    .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    tool(
        "escalate",
        "Hand off to a person",
        format!(
            "Hand the conversation to a person through one of the escalations the mappings declare. It hands off only if its condition holds for this conversation and no earlier escalation's does (they are tried in order); then the hand-off comment is written from the escalation's template with your summary, attempts and sentiment, and its fields, group and status are set. Give the facts its condition reads (intent, refund_amount, sentiment). The escalations, in order:\n{list}"
        ),
        json!({
            "type": "object",
            "properties": {
                "ticket": ticket(),
                "escalation": {"type": "string", "enum": names},
                "summary": {"type": "string", "minLength": 1, "maxLength": 4000, "description": "What the customer asked, for the person taking over."},
                "attempts": {"type": "array", "items": {"type": "string", "maxLength": 1000}, "maxItems": 50, "description": "What you tried."},
                "sentiment": sentiment(),
                "intent": {"type": "string", "maxLength": 200},
                "refund_amount": money(),
                "case": {"type": "string", "pattern": "^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$", "description": "The Salesforce Case of this conversation, when the ticket's links do not find it: its comment and fields go there."},
                "idempotency_key": key()
            },
            "required": ["ticket", "escalation", "summary"],
            "additionalProperties": false
        }),
    )
    .annotate(writes("Hand off to a person"))
    .with_raw_output_schema(outcome_schema())
}

fn explain_decision() -> Tool {
    tool(
        "explain_decision",
        "Explain a decision",
        "Why a call of yours was decided as it was: each refusal with its reason, the rule that decided it (file:line) and that rule's text; each accepted action with its rule. Give the call_id a tool answered. Read-only.".into(),
        json!({
            "type": "object",
            "properties": {"call_id": {"type": "string", "minLength": 1, "maxLength": 600}},
            "required": ["call_id"],
            "additionalProperties": false
        }),
    )
    .annotate(reads("Explain a decision"))
}

fn submit_turn(p: &Program) -> Tool {
    let statuses: Vec<String> = desk_table(p)
        .map(|t| t.statuses.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default();
    let escalations: Vec<&str> = p.escalations.iter().map(|e| e.name.as_str()).collect();
    tool(
        "submit_turn",
        "Submit a conversation turn",
        "The whole turn in one call, as the agent API's POST /v1/turns takes it (docs/AGENT_API.md): l3map decides it against every rule at once (status table, escalations, field writes, SKU tables) and answers what it accepted and refused.".into(),
        json!({
            "type": "object",
            "properties": {
                "turn_id": {"type": "string", "minLength": 1, "maxLength": 100, "description": "Your id for this turn: a retry with it is answered the same and applied once."},
                "ticket": ticket(),
                "case": {"type": "string", "description": "A Salesforce Case Id, for a conversation on a Case."},
                "intent": {"type": "string", "minLength": 1, "maxLength": 200},
                "summary": {"type": "string", "maxLength": 4000},
                "attempts": {"type": "array", "items": {"type": "string", "maxLength": 1000}, "maxItems": 50},
                "sentiment": sentiment(),
                "requested_status": one_of(&statuses, "The status wanted."),
                "requested_escalation": one_of(&escalations, "The escalation wanted."),
                "requested_fields": {"type": "object"},
                "refund_amount": money(),
                "fields": {"type": "object", "description": "Fields as you saw them: compared with Zendesk's."},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "language": {"type": "string", "maxLength": 35},
                "order_id": {"type": "string", "maxLength": 200},
                "product": {"type": "string", "maxLength": 500}
            },
            "required": ["intent"],
            "additionalProperties": false
        }),
    )
    .annotate(writes("Submit a conversation turn"))
    .with_raw_output_schema(outcome_schema())
}

/// The tools as docs/MCP.md lists them: name, what it does, its inputs
/// (enumerations spelled out) and whether it writes. Generated from a
/// program, so the page shows what a project's agents see.
pub fn reference(p: &Program) -> String {
    let mut s = String::new();
    for t in tools(p, None) {
        let a = t.annotations.clone().unwrap_or_default();
        let kind = if a.read_only_hint == Some(true) {
            "read-only"
        } else {
            "writes through the mappings; idempotent"
        };
        s.push_str(&format!("### `{}` ({kind})\n\n", t.name));
        if let Some(d) = &t.description {
            s.push_str(d);
            s.push_str("\n\n");
        }
        let props = t.input_schema.get("properties").and_then(Value::as_object);
        let required: Vec<&str> = t
            .input_schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(props) = props {
            s.push_str("| input | type | |\n|---|---|---|\n");
            for (name, schema) in props {
                let ty = schema_type(schema);
                let need = if required.contains(&name.as_str()) {
                    "required"
                } else {
                    ""
                };
                s.push_str(&format!("| `{name}` | {ty} | {need} |\n"));
            }
            s.push('\n');
        }
    }
    s
}

fn schema_type(schema: &Value) -> String {
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = e
            .iter()
            .filter_map(Value::as_str)
            .map(|v| format!("`{v}`"))
            .collect();
        return format!("one of {}", names.join(", "));
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        if !props.is_empty() && schema.get("required").is_none() {
            let fields: Vec<String> = props
                .iter()
                .map(|(k, v)| format!("`{k}`: {}", schema_type(v)))
                .collect();
            return format!("object of {}", fields.join("; "));
        }
    }
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str =
        "<!-- tools: generated from mappings/fintech by `cargo test`; do not edit -->\n";
    const END: &str = "<!-- tools: end -->";

    /// docs/MCP.md's tool list is what the fintech example's agents see:
    /// an edit to the tools or to the example fails here until the page
    /// is regenerated (the failure prints the new text; `L3MAP_BLESS=1`
    /// writes it).
    #[test]
    fn docs_list_the_tools_of_the_fintech_example() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let project = crate::project::load(&[dir.join("mappings/fintech")])
            .unwrap()
            .remove(0);
        let p = crate::compile::compile(&project.sources).expect("fintech compiles");
        let want = reference(&p);
        let path = dir.join("docs/MCP.md");
        let page = std::fs::read_to_string(&path).expect("docs/MCP.md");
        let (head, rest) = page.split_once(BEGIN).expect("the begin marker");
        let (have, tail) = rest.split_once(END).expect("the end marker");
        if have != want {
            if std::env::var_os("L3MAP_BLESS").is_some() {
                std::fs::write(&path, format!("{head}{BEGIN}{want}{END}{tail}")).unwrap();
            }
            panic!("docs/MCP.md's tool list is stale; it should read:\n{want}");
        }
    }
}
