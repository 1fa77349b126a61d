//! From an event to a decision: the actions to take, each with the rule
//! that produced it and an idempotency key, and the requests refused.

use super::event::Event;
use super::expr::{equal, eval, holds, resolve, Scope};
use super::mapping::{changed, read, translate, Translated};
use super::status::{decide as decide_status, Transition};
use super::template::render;
use crate::check::Kind;
use crate::ir::{CommentBody, EscAction, FieldRef, Loc, Program, StatusTable, Type, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The record an action writes to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "system", rename_all = "snake_case")]
pub enum Record {
    Ticket { id: u64 },
    Salesforce { object: String, id: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ActionKind {
    SetStatus {
        connection: String,
        from: String,
        to: String,
    },
    SetField {
        field: FieldRef,
        value: Value,
    },
    /// A private Zendesk comment, or an internal Salesforce CaseComment.
    Comment {
        connection: String,
        kind: Kind,
        body: String,
    },
    AssignGroup {
        connection: String,
        group: String,
    },
    /// A product id from a SKU table, written to a field.
    NormalizeSku {
        table: String,
        input: String,
        sku: String,
        field: FieldRef,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    #[serde(flatten)]
    pub kind: ActionKind,
    pub record: Record,
    /// What produced it: `escalation refund_over_threshold`, `transition`.
    pub rule: String,
    pub loc: Loc,
    /// Same event, rule, record and mapping revision: same key. The outbox
    /// applies a key once, so a redelivered event never writes twice.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    pub what: String,
    pub reason: String,
    pub loc: Option<Loc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub event: String,
    pub revision: String,
    pub actions: Vec<Action>,
    pub refused: Vec<Refusal>,
}

fn key(p: &Program, ev: &Event, loc: &Loc, record: &Record, n: usize) -> String {
    let mut h = Sha256::new();
    h.update(p.revision.as_bytes());
    h.update([0]);
    h.update(ev.id.as_bytes());
    h.update([0]);
    h.update(format!("{}:{}:{n}", loc.file, loc.start).as_bytes());
    h.update([0]);
    h.update(serde_json::to_string(record).unwrap_or_default().as_bytes());
    h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn record_of(ev: &Event, object: &str) -> Option<Record> {
    ev.records
        .get(object)
        .and_then(|r| r.get("Id"))
        .and_then(|v| v.as_str())
        .map(|id| Record::Salesforce {
            object: object.into(),
            id: id.into(),
        })
}

fn field_name(f: &FieldRef) -> String {
    match f {
        FieldRef::Zendesk { field, .. } => field.clone(),
        FieldRef::Salesforce { path, .. } => path.clone(),
    }
}

fn zendesk_table(p: &Program) -> Option<&StatusTable> {
    p.status_tables.iter().find(|t| {
        p.connections
            .iter()
            .any(|c| c.name == t.connection && c.kind == Kind::Zendesk)
    })
}

/// The record a status table governs and its current status: the ticket
/// for Zendesk, the Case for Salesforce (whose `Status` holds the picklist
/// value: the status's label, or its name).
fn current_status(p: &Program, table: &StatusTable, ev: &Event) -> Option<(Record, String)> {
    let kind = p
        .connections
        .iter()
        .find(|c| c.name == table.connection)?
        .kind;
    match kind {
        Kind::Zendesk => {
            let t = ev.ticket.as_ref()?;
            Some((Record::Ticket { id: t.id }, t.status.clone()?))
        }
        Kind::Salesforce => {
            let value = ev.records.get("Case")?.get("Status")?.as_str()?;
            let name = table
                .statuses
                .iter()
                .find(|s| s.name == value || s.label.as_deref() == Some(value))
                .map_or(value, |s| s.name.as_str());
            Some((record_of(ev, "Case")?, name.to_string()))
        }
    }
}

/// Decides what one event means under one compiled revision.
pub fn decide(p: &Program, ev: &Event) -> Decision {
    let mut d = Decision {
        event: ev.id.clone(),
        revision: p.revision.clone(),
        actions: vec![],
        refused: vec![],
    };
    let ticket = ev.ticket.as_ref();
    let push = |d: &mut Decision, kind: ActionKind, record: Record, rule: String, loc: Loc| {
        let n = d.actions.iter().filter(|a| a.loc == loc).count();
        let idempotency_key = key(p, ev, &loc, &record, n);
        d.actions.push(Action {
            kind,
            record,
            rule,
            loc,
            idempotency_key,
        });
    };
    // The agent's own request for a status change.
    if let (Some(t), Some(to)) = (
        ticket,
        ev.turn.as_ref().and_then(|t| t.requested_status.as_ref()),
    ) {
        match (zendesk_table(p), t.status.as_ref()) {
            (Some(table), Some(from)) => match decide_status(p, table, from, to, ev) {
                Transition::Allowed { rule } => push(
                    &mut d,
                    ActionKind::SetStatus {
                        connection: table.connection.clone(),
                        from: from.clone(),
                        to: to.clone(),
                    },
                    Record::Ticket { id: t.id },
                    "transition".into(),
                    rule,
                ),
                Transition::Refused { reason, rule } => d.refused.push(Refusal {
                    what: format!("status {from} -> {to}"),
                    reason,
                    loc: rule,
                }),
            },
            _ => d.refused.push(Refusal {
                what: format!("status -> {to}"),
                reason:
                    "the event carries no current status, or no Zendesk status table is declared"
                        .into(),
                loc: None,
            }),
        }
    }
    // Field mappings whose source the event carries (and, for a record
    // change, lists as changed).
    for m in &p.mappings {
        for r in &m.rules {
            let value = read(&r.source, &r.source_type, ev);
            if value == Value::Null || !changed(&r.source, ev) {
                continue;
            }
            let rule = format!("map {} -> {}", m.from, m.to);
            let record = match &r.target {
                FieldRef::Zendesk { .. } => ticket.map(|t| Record::Ticket { id: t.id }),
                FieldRef::Salesforce { object, .. } => record_of(ev, object),
            };
            match (translate(r, value, ev), record) {
                (Translated::Unchanged, _) => {}
                (Translated::NoArm(v), _) => d.refused.push(Refusal {
                    what: format!("{rule}: {}", field_name(&r.source)),
                    reason: format!(
                        "no translation for {} and no default arm `_`",
                        super::template::display(&v)
                    ),
                    loc: Some(r.loc),
                }),
                (Translated::Write(v), Some(record)) => push(
                    &mut d,
                    ActionKind::SetField {
                        field: r.target.clone(),
                        value: v,
                    },
                    record,
                    rule,
                    r.loc,
                ),
                (Translated::Write(_), None) => d.refused.push(Refusal {
                    what: format!("{rule}: {}", field_name(&r.target)),
                    reason: "the event names no record to write to".into(),
                    loc: Some(r.loc),
                }),
            }
        }
    }
    // What the customer called the product, as the catalogue's id.
    for t in &p.sku_tables {
        for a in &t.applies {
            let Value::Str(input) = resolve(&a.source, ev, Scope::default()) else {
                continue;
            };
            if input.trim().is_empty() {
                continue;
            }
            let rule = format!("sku {}", t.name);
            let Some(m) = t.matcher().lookup(&input) else {
                d.refused.push(Refusal {
                    what: format!("{rule}: {input:?}"),
                    reason: format!(
                        "no product matches {input:?}; ask the customer which product they mean"
                    ),
                    loc: Some(a.loc),
                });
                continue;
            };
            if equal(
                &read(&a.target, &Type::String, ev),
                &Value::Str(m.product.clone()),
            ) {
                continue;
            }
            let record = match &a.target {
                FieldRef::Zendesk { .. } => ticket.map(|t| Record::Ticket { id: t.id }),
                FieldRef::Salesforce { object, .. } => record_of(ev, object),
            };
            match record {
                Some(record) => push(
                    &mut d,
                    ActionKind::NormalizeSku {
                        table: t.name.clone(),
                        input,
                        sku: m.product,
                        field: a.target.clone(),
                    },
                    record,
                    rule,
                    a.loc,
                ),
                None => d.refused.push(Refusal {
                    what: format!("{rule}: {}", field_name(&a.target)),
                    reason: "the event names no record to write to".into(),
                    loc: Some(a.loc),
                }),
            }
        }
    }
    // The first escalation whose condition holds hands off, once.
    if let Some(e) = p
        .escalations
        .iter()
        .find(|e| holds(&e.when, ev, Scope::default()))
    {
        let scope = Scope {
            escalation: Some((&e.name, &e.reason)),
        };
        let rule = format!("escalation {}", e.name);
        let case = record_of(ev, "Case");
        for a in &e.actions {
            match a {
                EscAction::Comment {
                    connection,
                    kind,
                    body,
                    loc,
                } => {
                    let text = match body {
                        CommentBody::Template(name) => p
                            .templates
                            .iter()
                            .find(|t| &t.name == name)
                            .map(|t| render(&t.parts, ev, scope))
                            .unwrap_or_default(),
                        CommentBody::Inline(parts) => render(parts, ev, scope),
                    };
                    let record = match kind {
                        Kind::Zendesk => ticket.map(|t| Record::Ticket { id: t.id }),
                        Kind::Salesforce => case.clone(),
                    };
                    match record {
                        Some(record) => push(
                            &mut d,
                            ActionKind::Comment {
                                connection: connection.clone(),
                                kind: *kind,
                                body: text,
                            },
                            record,
                            rule.clone(),
                            *loc,
                        ),
                        None => d.refused.push(Refusal {
                            what: format!("{rule}: comment on {connection}"),
                            reason: "the event names no record to comment on".into(),
                            loc: Some(*loc),
                        }),
                    }
                }
                EscAction::SetField { field, value, loc } => {
                    let record = match field {
                        FieldRef::Zendesk { .. } => ticket.map(|t| Record::Ticket { id: t.id }),
                        FieldRef::Salesforce { object, .. } => record_of(ev, object),
                    };
                    match record {
                        Some(record) => push(
                            &mut d,
                            ActionKind::SetField {
                                field: field.clone(),
                                value: eval(value, ev, scope),
                            },
                            record,
                            rule.clone(),
                            *loc,
                        ),
                        None => d.refused.push(Refusal {
                            what: format!("{rule}: field write"),
                            reason: "the event names no record to write to".into(),
                            loc: Some(*loc),
                        }),
                    }
                }
                EscAction::AssignGroup {
                    connection,
                    group,
                    loc,
                } => {
                    if let Some(t) = ticket {
                        push(
                            &mut d,
                            ActionKind::AssignGroup {
                                connection: connection.clone(),
                                group: group.clone(),
                            },
                            Record::Ticket { id: t.id },
                            rule.clone(),
                            *loc,
                        );
                    }
                }
                EscAction::SetStatus {
                    connection,
                    status,
                    loc,
                } => {
                    let table = p.status_tables.iter().find(|t| &t.connection == connection);
                    let current = table.and_then(|t| current_status(p, t, ev));
                    match (table, current) {
                        (Some(table), Some((record, from))) => {
                            match decide_status(p, table, &from, status, ev) {
                                Transition::Allowed { .. } => push(
                                    &mut d,
                                    ActionKind::SetStatus {
                                        connection: connection.clone(),
                                        from,
                                        to: status.clone(),
                                    },
                                    record,
                                    rule.clone(),
                                    *loc,
                                ),
                                Transition::Refused { reason, .. } => d.refused.push(Refusal {
                                    what: format!("{rule}: status {from} -> {status}"),
                                    reason,
                                    loc: Some(*loc),
                                }),
                            }
                        }
                        _ => d.refused.push(Refusal {
                            what: format!("{rule}: status -> {status}"),
                            reason: format!(
                                "the event carries no current status for `{connection}`"
                            ),
                            loc: Some(*loc),
                        }),
                    }
                }
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check;
    use crate::ir::lower;
    use crate::project::load;
    use std::path::PathBuf;

    fn fintech() -> Program {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings/fintech");
        let p = load(&[dir]).unwrap().remove(0);
        lower(&check(&p.sources), &p.sources).expect("the fintech example compiles")
    }

    const REFUND: &str = r#"{"id":"evt-1","kind":"agent_turn","at":"2026-11-11T10:00:00Z",
        "ticket":{"id":4211,"status":"in_progress","custom_fields":{"360001234":"premium"}},
        "turn":{"intent":"refund","summary":"Wants a refund for order 1182",
                "attempts":["looked up order 1182","offered store credit"],"sentiment":"negative",
                "refund_amount":{"amount":"250.00","currency":"USD"}},
        "records":{"Case":{"Id":"5003k00001AbCdE"}}}"#;

    #[test]
    fn refund_above_threshold_hands_off_with_full_context() {
        let p = fintech();
        let d = decide(&p, &Event::from_json(REFUND).unwrap());
        assert!(d.refused.is_empty(), "{:#?}", d.refused);
        let kinds: Vec<&ActionKind> = d.actions.iter().map(|a| &a.kind).collect();
        let zendesk_comment = kinds.iter().find_map(|k| match k {
            ActionKind::Comment {
                kind: Kind::Zendesk,
                body,
                ..
            } => Some(body),
            _ => None,
        });
        let body = zendesk_comment.expect("a private Zendesk comment");
        for needed in [
            "pre-authorised threshold",
            "Wants a refund for order 1182",
            "looked up order 1182; offered store credit",
            "NEGATIVE",
        ] {
            assert!(body.contains(needed), "{needed:?} missing from:\n{body}");
        }
        assert!(kinds.iter().any(|k| matches!(
            k,
            ActionKind::Comment {
                kind: Kind::Salesforce,
                ..
            }
        )));
        assert!(kinds.iter().any(
            |k| matches!(k, ActionKind::AssignGroup { group, .. } if group == "Payments Tier 2")
        ));
        assert!(kinds
            .iter()
            .any(|k| matches!(k, ActionKind::SetStatus { to, .. } if to == "escalated_tier2")));
        assert!(kinds.iter().any(|k| matches!(k,
            ActionKind::SetField { field: FieldRef::Salesforce { path, .. }, value: Value::Str(v) }
                if path == "Case.AI_Handoff_Reason__c" && v == "refund_threshold")));
        assert!(d
            .actions
            .iter()
            .all(|a| a.rule == "escalation refund_over_threshold"));
    }

    #[test]
    fn idempotency_keys_are_stable_and_distinct() {
        let p = fintech();
        let ev = Event::from_json(REFUND).unwrap();
        let a = decide(&p, &ev);
        let b = decide(&p, &ev);
        assert_eq!(a, b, "a redelivered event decides the same, keys included");
        let keys: std::collections::BTreeSet<_> =
            a.actions.iter().map(|x| &x.idempotency_key).collect();
        assert_eq!(keys.len(), a.actions.len(), "one key per action");
        let mut other_revision = p.clone();
        other_revision.revision = "0000000000000000".into();
        let c = decide(&other_revision, &ev);
        assert!(a
            .actions
            .iter()
            .zip(&c.actions)
            .all(|(x, y)| x.idempotency_key != y.idempotency_key));
    }

    #[test]
    fn a_forbidden_requested_transition_is_refused_with_its_reason() {
        let p = fintech();
        let ev = Event::from_json(
            r#"{"id":"evt-2","kind":"agent_turn","at":"t",
                "ticket":{"id":9,"status":"open"},
                "turn":{"intent":"question","requested_status":"closed"}}"#,
        )
        .unwrap();
        let d = decide(&p, &ev);
        assert!(d.actions.is_empty(), "{:#?}", d.actions);
        assert_eq!(d.refused.len(), 1);
        assert!(
            d.refused[0]
                .reason
                .contains("no transition `open -> closed`"),
            "{}",
            d.refused[0].reason
        );
    }

    #[test]
    fn salesforce_changes_are_translated_onto_the_ticket() {
        let p = fintech();
        let ev = Event::from_json(
            r#"{"id":"evt-4","kind":"record_changed","at":"t",
                "ticket":{"id":77,"status":"open","custom_fields":{"360001235":null}},
                "records":{"Account":{"Id":"001A","SLA_Tier__c":"Legacy","Renewal_Date__c":"2027-01-31"}},
                "changed":["Account.SLA_Tier__c"]}"#,
        )
        .unwrap();
        let d = decide(&p, &ev);
        assert!(d.refused.is_empty(), "{:#?}", d.refused);
        assert_eq!(
            d.actions.len(),
            1,
            "only the changed field is written: {:#?}",
            d.actions
        );
        match &d.actions[0].kind {
            ActionKind::SetField {
                field: FieldRef::Zendesk { field, id, .. },
                value,
            } => {
                assert_eq!((field.as_str(), *id), ("sla_tier", Some(360001234)));
                assert_eq!(
                    value,
                    &Value::Str("standard".into()),
                    "\"Legacy\" translates to standard"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(d.actions[0].record, Record::Ticket { id: 77 });
        assert_eq!(d.actions[0].rule, "map crm -> desk");
    }

    #[test]
    fn unknown_source_values_are_refused_and_equal_values_skipped() {
        let p = fintech();
        let unknown = Event::from_json(
            r#"{"id":"evt-5","kind":"record_changed","at":"t","ticket":{"id":77},
                "records":{"Account":{"Id":"001A","SLA_Tier__c":"Platinum"}},"changed":["Account.SLA_Tier__c"]}"#,
        )
        .unwrap();
        let d = decide(&p, &unknown);
        assert!(d.actions.is_empty());
        assert!(
            d.refused[0].reason.contains("no translation for Platinum"),
            "{:#?}",
            d.refused
        );
        let same = Event::from_json(
            r#"{"id":"evt-6","kind":"record_changed","at":"t",
                "ticket":{"id":77,"custom_fields":{"360001234":"enterprise"}},
                "records":{"Account":{"Id":"001A","SLA_Tier__c":"Ent"}},"changed":["Account.SLA_Tier__c"]}"#,
        )
        .unwrap();
        let d = decide(&p, &same);
        assert!(d.actions.is_empty() && d.refused.is_empty(), "{d:#?}");
    }

    #[test]
    fn nothing_fires_on_a_quiet_event() {
        let p = fintech();
        let ev = Event::from_json(
            r#"{"id":"evt-3","kind":"ticket_updated","at":"t","ticket":{"id":1,"status":"open"}}"#,
        )
        .unwrap();
        let d = decide(&p, &ev);
        assert!(d.actions.is_empty() && d.refused.is_empty(), "{d:#?}");
    }
}
