//! The hand-off: an escalation's actions, once its condition holds.

use super::action::{ActionKind, Decision, Record, Refusal, Rule};
use super::records::{current_status, field_name, no_record, record_for, record_of, set_status};
use crate::eval::event::Event;
use crate::eval::expr::{eval, Scope};
use crate::eval::status::{decide as decide_status, Transition};
use crate::eval::template::render;
use crate::ir::{CommentBody, EscAction, ExprKind, Loc, Program, Value};
use crate::model::Kind;

pub(super) type Push<'p, 'a> = dyn Fn(&mut Decision<'a>, ActionKind<'a>, Record<'a>, Rule<'a>, Loc, Option<(&str, usize)>)
    + 'p;

/// The hand-off: each of the escalation's statements, in order (so the
/// comment a person reads is written before the ticket changes hands).
pub(super) fn escalate<'a>(
    p: &'a Program,
    ev: &'a Event,
    e: &'a crate::ir::Escalation,
    d: &mut Decision<'a>,
    push: &Push<'_, 'a>,
) {
    let scope = Scope {
        escalation: Some((&e.name, &e.reason)),
    };
    let rule = Rule::Escalation(&e.name);
    let ticket = ev.ticket.as_ref();
    let id = e.handoff_id(&p.templates);
    for (index, a) in e.actions.iter().enumerate() {
        let handoff = Some((id, index));
        match a {
            EscAction::Comment {
                connection,
                kind,
                body,
                loc,
            } => {
                let text = match body {
                    CommentBody::Template(name) => p
                        .template(name)
                        .map(|t| render(&t.parts, ev, scope))
                        .unwrap_or_default(),
                    CommentBody::Inline(parts) => render(parts, ev, scope),
                };
                let record = match kind {
                    Kind::Zendesk => ticket.map(|t| Record::Ticket { id: t.id }),
                    Kind::Salesforce => record_of(ev, "Case"),
                };
                match record {
                    Some(record) => push(
                        d,
                        ActionKind::Comment {
                            connection,
                            kind: *kind,
                            body: text,
                        },
                        record,
                        rule,
                        *loc,
                        handoff,
                    ),
                    None => d.refused.push(Refusal {
                        what: format!("{rule}: comment on {connection}"),
                        reason: "the event names no record to comment on".into(),
                        loc: Some(*loc),
                    }),
                }
            }
            EscAction::SetField { field, value, loc } => {
                let v = eval(value, ev, scope);
                // A value the event does not carry is not written: `set
                // desk order_id = turn.order_id` must not erase an order id
                // the ticket already has. Only a literal `none` clears.
                let literal_none = matches!(&value.kind, ExprKind::Lit(Value::Null));
                if v.is_null() && !literal_none {
                    continue;
                }
                match record_for(field, ev) {
                    Some(record) => push(
                        d,
                        ActionKind::SetField {
                            field,
                            value: v.to_value(),
                        },
                        record,
                        rule,
                        *loc,
                        handoff,
                    ),
                    None => d.refused.push(Refusal {
                        what: format!("{rule}: {}", field_name(field)),
                        reason: no_record(field),
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
                        d,
                        ActionKind::AssignGroup { connection, group },
                        Record::Ticket { id: t.id },
                        rule,
                        *loc,
                        handoff,
                    );
                }
            }
            EscAction::SetStatus {
                connection,
                status,
                loc,
            } => {
                let table = p.status_table(connection);
                match table.and_then(|t| current_status(p, t, ev).map(|c| (t, c))) {
                    // Already there: the hand-off needs no move.
                    Some((_, (_, from))) if from == status => {}
                    Some((table, (record, from))) => {
                        match decide_status(p, table, from, status, ev) {
                            Transition::Allowed { .. } => push(
                                d,
                                set_status(p, table, from, status),
                                record,
                                rule,
                                *loc,
                                handoff,
                            ),
                            Transition::Refused { reason, .. } => d.refused.push(Refusal {
                                what: format!("{rule}: status {from} -> {status}"),
                                reason,
                                loc: Some(*loc),
                            }),
                        }
                    }
                    None => d.refused.push(Refusal {
                        what: format!("{rule}: status -> {status}"),
                        reason: format!("the event carries no current status for `{connection}`"),
                        loc: Some(*loc),
                    }),
                }
            }
        }
    }
}
