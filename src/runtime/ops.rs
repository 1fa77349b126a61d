//! From a decision to outbox rows: each action becomes an [`Op`], the
//! owned, serialisable form of the request it needs, with the rule,
//! source location and revision that produced it (the audit trail).

use crate::eval::decide::{Action, ActionKind, Decision, Record};
use crate::ir::{FieldRef, Program, Value};
use crate::model::Kind;
use crate::runtime::store::NewAction;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// One write, as the connectors take it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `status` is the l3map name, for logs; the API takes the category
    /// and the custom status.
    ZendeskStatus {
        status: String,
        category: String,
        #[serde(default)]
        custom_status_id: Option<u64>,
    },
    /// A custom field by id, or a standard one (`priority`, `subject`) by
    /// name when `id` is absent.
    ZendeskField {
        field: String,
        #[serde(default)]
        id: Option<u64>,
        value: Json,
    },
    ZendeskComment {
        body: String,
    },
    ZendeskGroup {
        group: String,
    },
    SalesforceStatus {
        object: String,
        value: String,
    },
    SalesforceField {
        object: String,
        field: String,
        value: Json,
    },
    SalesforceComment {
        body: String,
    },
}

impl Op {
    /// Whether sending it twice does something twice.
    pub fn repeats(&self) -> bool {
        matches!(
            self,
            Op::ZendeskComment { .. } | Op::SalesforceComment { .. }
        )
    }
}

/// The value as the APIs take it. Money goes as a decimal number (both
/// APIs' currency and decimal fields take numbers).
pub fn json_value(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Num(n) => number(*n),
        Value::Str(s) => Json::String(s.clone()),
        Value::Money(units, _) => number(*units as f64 / 10_000.0),
        Value::List(items) => Json::Array(items.iter().map(json_value).collect()),
    }
}

fn number(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Json::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

/// The outbox row's record: a ticket id, or `Object/Id`.
pub fn record_key(r: &Record<'_>) -> String {
    match r {
        Record::Ticket { id } => id.to_string(),
        Record::Salesforce { object, id } => format!("{object}/{id}"),
    }
}

/// `Case/500...` -> (`Case`, `500...`); a ticket id -> its number.
pub fn split_record(record: &str) -> Option<(&str, &str)> {
    record.split_once('/')
}

fn op_of(kind: &ActionKind<'_>, record: &Record<'_>) -> Op {
    match kind {
        ActionKind::SetStatus {
            to,
            value,
            custom_status_id,
            ..
        } => match record {
            Record::Ticket { .. } => Op::ZendeskStatus {
                status: to.to_string(),
                category: value.to_string(),
                custom_status_id: *custom_status_id,
            },
            Record::Salesforce { object, .. } => Op::SalesforceStatus {
                object: object.to_string(),
                value: value.to_string(),
            },
        },
        ActionKind::SetField { field, value } => field_op(field, json_value(value)),
        ActionKind::NormalizeSku { field, sku, .. } => field_op(field, Json::String(sku.clone())),
        ActionKind::Comment { kind, body, .. } => match kind {
            Kind::Salesforce => Op::SalesforceComment { body: body.clone() },
            _ => Op::ZendeskComment { body: body.clone() },
        },
        ActionKind::AssignGroup { group, .. } => Op::ZendeskGroup {
            group: group.to_string(),
        },
    }
}

fn field_op(field: &FieldRef, value: Json) -> Op {
    match field {
        FieldRef::Zendesk { field, id, .. } => Op::ZendeskField {
            field: field.clone(),
            id: *id,
            value,
        },
        FieldRef::Salesforce { object, path, .. } => Op::SalesforceField {
            object: object.clone(),
            // `Case.AI_Handoff_Reason__c` -> `AI_Handoff_Reason__c`.
            field: path
                .strip_prefix(object.as_str())
                .and_then(|p| p.strip_prefix('.'))
                .unwrap_or(path)
                .to_string(),
            value,
        },
    }
}

fn connection_of<'a>(a: &Action<'a>) -> &'a str {
    match &a.kind {
        ActionKind::SetStatus { connection, .. }
        | ActionKind::Comment { connection, .. }
        | ActionKind::AssignGroup { connection, .. } => connection,
        ActionKind::SetField { field, .. } | ActionKind::NormalizeSku { field, .. } => {
            match field {
                FieldRef::Zendesk { connection, .. } | FieldRef::Salesforce { connection, .. } => {
                    connection
                }
            }
        }
    }
}

pub fn kind_name(kind: &ActionKind<'_>) -> &'static str {
    match kind {
        ActionKind::SetStatus { .. } => "set_status",
        ActionKind::SetField { .. } => "set_field",
        ActionKind::Comment { .. } => "comment",
        ActionKind::AssignGroup { .. } => "assign_group",
        ActionKind::NormalizeSku { .. } => "normalize_sku",
    }
}

/// `statuses.l3map:12:3`.
pub fn source_loc(p: &Program, loc: &crate::ir::Loc) -> String {
    let file = p.files.get(loc.file as usize).map_or("?", String::as_str);
    format!("{file}:{}:{}", loc.line, loc.col)
}

/// The outbox rows of a decision, in the order decided.
pub fn outbox_actions(p: &Program, d: &Decision<'_>) -> Vec<NewAction> {
    d.actions
        .iter()
        .map(|a| NewAction {
            key: a.idempotency_key.clone(),
            connection: connection_of(a).to_string(),
            record: record_key(&a.record),
            kind: kind_name(&a.kind).to_string(),
            op: serde_json::to_string(&op_of(&a.kind, &a.record)).unwrap_or_default(),
            rule: a.rule.to_string(),
            source_loc: source_loc(p, &a.loc),
            revision: d.revision.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_go_as_the_apis_take_them() {
        assert_eq!(json_value(&Value::Num(70.0)), Json::from(70));
        assert_eq!(json_value(&Value::Num(0.5)), serde_json::json!(0.5));
        assert_eq!(
            json_value(&Value::Money(2_500_000, "USD".into())),
            Json::from(250)
        );
        assert_eq!(
            json_value(&Value::Money(2_505_000, "USD".into())),
            serde_json::json!(250.5)
        );
        assert_eq!(json_value(&Value::Num(f64::NAN)), Json::Null);
        assert_eq!(
            json_value(&Value::List(vec![
                Value::Str("a".into()),
                Value::Bool(true)
            ])),
            serde_json::json!(["a", true])
        );
    }

    #[test]
    fn ops_round_trip_and_know_what_repeats() {
        let ops = [
            Op::ZendeskStatus {
                status: "escalated_tier2".into(),
                category: "open".into(),
                custom_status_id: Some(9),
            },
            Op::ZendeskComment { body: "x".into() },
            Op::SalesforceField {
                object: "Case".into(),
                field: "AI_Handoff_Reason__c".into(),
                value: Json::from("refund_threshold"),
            },
        ];
        for op in &ops {
            let text = serde_json::to_string(op).unwrap();
            assert_eq!(&serde_json::from_str::<Op>(&text).unwrap(), op);
        }
        assert!(!ops[0].repeats() && ops[1].repeats() && !ops[2].repeats());
        assert_eq!(split_record("Case/500A"), Some(("Case", "500A")));
        assert_eq!(split_record("4211"), None);
    }
}
