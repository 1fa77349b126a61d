//! From an event to a decision: the actions to take, each with the rule
//! that produced it and an idempotency key, and the requests refused.
//!
//! A decision borrows from the program and the event it was made from:
//! deciding runs on every event, and copying names and field references
//! into each action cost more than deciding.

mod action;
mod escalate;
mod keys;
mod records;
mod requests;

pub use action::{Action, ActionKind, Decision, Record, Refusal, Rule};
pub(crate) use records::current_status;
pub use requests::not_the_agents;

use super::event::Event;
use super::expr::{equal, resolve, truth, Incomparable, Scope, Truth, Val};
use super::mapping::{fit, read, translate, Changes, Translated};
use super::status::{decide as decide_status, Transition};
use crate::ir::{EscAction, Loc, Program, StatusTable, Type};
use escalate::escalate;
use keys::{Keys, Slot};
use records::{field_name, no_record, record_for, requested_table, set_status};

/// Decides what one event means under one compiled revision.
pub fn decide<'a>(p: &'a Program, ev: &'a Event) -> Decision<'a> {
    let mut d = Decision {
        event: &ev.id,
        revision: &p.revision,
        actions: vec![],
        refused: vec![],
    };
    let keys = Keys::new(p, ev);
    let changes = Changes::new(ev);
    let push = |d: &mut Decision<'a>,
                kind: ActionKind<'a>,
                record: Record<'a>,
                rule,
                loc: Loc,
                handoff: Option<(&str, usize)>| {
        let slot = match handoff {
            Some((id, index)) => Slot::Handoff(id, index),
            None => Slot::Rule(loc),
        };
        let n = d.actions.iter().filter(|a| a.loc == loc).count();
        let idempotency_key = keys.key(slot, &record, n);
        d.actions.push(Action {
            kind,
            record,
            rule,
            loc,
            idempotency_key,
        });
    };
    // The escalation that hands off, if any: the first whose condition
    // holds. One whose condition cannot be decided (amounts in two
    // currencies, see `truth`) neither hands off nor is passed over in
    // silence: it is refused below, where the agent sees it.
    let mut undecided: Vec<(&crate::ir::Escalation, Incomparable)> = vec![];
    let escalation = p
        .escalations
        .iter()
        .find(|e| match truth(&e.when, ev, Scope::default()) {
            Truth::Yes => true,
            Truth::No => false,
            Truth::Unknown(why) => {
                undecided.push((e, why));
                false
            }
        });
    for (e, why) in &undecided {
        d.refused.push(Refusal {
            what: format!("escalation {}", e.name),
            reason: format!(
                "cannot decide whether to hand off: {}; a person must decide",
                why.reason
            ),
            loc: Some(why.loc),
        });
    }
    // An undecided escalation that would set a table's status keeps the
    // agent from moving that status meanwhile, as a hand-off would.
    let may_hand_off = |table: &StatusTable| {
        undecided.iter().map(|(e, _)| *e).find(|e| {
            e.actions.iter().any(|a| {
                matches!(a, EscAction::SetStatus { connection, .. } if *connection == table.connection)
            })
        })
    };
    // The agent's own request for a status change.
    if let Some(to) = ev.turn.as_ref().and_then(|t| t.requested_status.as_deref()) {
        // A hand-off that moves the same record decides its status; two
        // moves from one status in one decision would race.
        let handed_off = |table: &StatusTable| {
            escalation.filter(|e| {
                e.actions.iter().any(|a| {
                    matches!(a, EscAction::SetStatus { connection, .. } if *connection == table.connection)
                })
            })
        };
        match requested_table(p, ev) {
            Some((table, _, from)) if handed_off(table).is_some() => {
                let e = handed_off(table).expect("checked just above");
                // Its own move may be refused too (the ticket's form does
                // not offer it): then say so, not that it sets the status.
                let own = e.actions.iter().find_map(|a| match a {
                    EscAction::SetStatus {
                        connection, status, ..
                    } if *connection == table.connection => Some(status.as_str()),
                    _ => None,
                });
                let own_refused = own.filter(|s| {
                    *s != from
                        && matches!(
                            decide_status(p, table, from, s, ev),
                            Transition::Refused { .. }
                        )
                });
                d.refused.push(Refusal {
                    what: format!("status {from} -> {to}"),
                    reason: match own_refused {
                        None => format!(
                            "escalation `{}` hands the conversation off and sets the status itself",
                            e.name
                        ),
                        Some(s) => format!(
                            "escalation `{}` hands the conversation off and decides the status; its own move to `{s}` is refused too (see its refusal), so the status stays `{from}`",
                            e.name
                        ),
                    },
                    loc: Some(e.loc),
                })
            }
            Some((table, _, from)) if may_hand_off(table).is_some() => {
                let e = may_hand_off(table).expect("checked just above");
                d.refused.push(Refusal {
                    what: format!("status {from} -> {to}"),
                    reason: format!(
                        "escalation `{}` may hand the conversation off and set the status itself, and cannot be decided",
                        e.name
                    ),
                    loc: Some(e.loc),
                })
            }
            Some((table, record, from)) => match decide_status(p, table, from, to, ev) {
                Transition::Allowed { rule } => push(
                    &mut d,
                    set_status(p, table, from, to),
                    record,
                    Rule::Transition,
                    rule,
                    None,
                ),
                Transition::Refused { reason, rule } => d.refused.push(Refusal {
                    what: format!("status {from} -> {to}"),
                    reason,
                    loc: rule,
                }),
            },
            None => d.refused.push(Refusal {
                what: format!("status -> {to}"),
                reason: if p.status_tables.is_empty() {
                    "the project declares no status table".into()
                } else {
                    "the event carries no current status (the ticket's `status`, or a Case's `Status`) for any status table".into()
                },
                loc: None,
            }),
        }
    }
    // Field mappings whose source the event carries (and, for a record
    // change, lists as changed).
    for m in &p.mappings {
        let rule = Rule::Map {
            from: &m.from,
            to: &m.to,
        };
        for r in &m.rules {
            if !changes.includes(&r.source) {
                continue;
            }
            let value = read(&r.source, &r.source_type, ev);
            if value.is_null() {
                continue;
            }
            match (translate(r, value, ev), record_for(&r.target, ev)) {
                (Translated::Unchanged, _) => {}
                (Translated::NoArm(v), _) => d.refused.push(Refusal {
                    what: format!("{rule}: {}", field_name(&r.source)),
                    reason: format!(
                        "no translation for {} and no default arm `_`",
                        super::display::display(&v.to_value())
                    ),
                    loc: Some(r.loc),
                }),
                (Translated::Write(v), Some(record)) => match fit(&v, &r.target_type) {
                    Ok(value) => push(
                        &mut d,
                        ActionKind::SetField {
                            field: &r.target,
                            value,
                        },
                        record,
                        rule,
                        r.loc,
                        None,
                    ),
                    Err(why) => d.refused.push(Refusal {
                        what: format!(
                            "{rule}: {} -> {}",
                            field_name(&r.source),
                            field_name(&r.target)
                        ),
                        reason: format!("{why}, so `{}` is not written", field_name(&r.target)),
                        loc: Some(r.loc),
                    }),
                },
                (Translated::Write(_), None) => d.refused.push(Refusal {
                    what: format!("{rule}: {}", field_name(&r.target)),
                    reason: no_record(&r.target),
                    loc: Some(r.loc),
                }),
            }
        }
    }
    // What the customer called the product, as the catalogue's id.
    for t in &p.sku_tables {
        let rule = Rule::Sku(&t.name);
        for a in &t.applies {
            let Val::Str(input) = resolve(&a.source, ev, Scope::default()) else {
                continue;
            };
            if input.trim().is_empty() {
                continue;
            }
            let Some(m) = t.matcher().lookup(input) else {
                d.refused.push(Refusal {
                    what: format!("{rule}: \"{input}\""),
                    reason: format!(
                        "no product matches \"{input}\"; ask the customer which product they mean"
                    ),
                    loc: Some(a.loc),
                });
                continue;
            };
            if equal(&read(&a.target, &Type::String, ev), &Val::Str(&m.product)) {
                continue;
            }
            match record_for(&a.target, ev) {
                Some(record) => push(
                    &mut d,
                    ActionKind::NormalizeSku {
                        table: &t.name,
                        input,
                        sku: m.product,
                        field: &a.target,
                    },
                    record,
                    rule,
                    a.loc,
                    None,
                ),
                None => d.refused.push(Refusal {
                    what: format!("{rule}: {}", field_name(&a.target)),
                    reason: no_record(&a.target),
                    loc: Some(a.loc),
                }),
            }
        }
    }
    requests::fields(p, ev, &mut d, &push);
    requests::escalation(p, ev, escalation, &mut d);
    if let Some(e) = escalation {
        escalate(p, ev, e, &mut d, &push);
    }
    d
}

#[cfg(test)]
mod tests;
