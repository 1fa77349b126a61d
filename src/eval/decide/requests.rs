//! What the agent asks for by name beyond a status: ticket fields to write
//! (`turn.requested_fields`) and the escalation it wants
//! (`turn.requested_escalation`). Both are checked against the mappings,
//! never taken on trust: a field must be declared, of its type, and not fed
//! by a `map` (the mapping owns it); an escalation hands off only when it is
//! the one the table of escalations picks.

use super::action::{ActionKind, Decision, Record, Refusal, Rule};
use super::escalate::Push;
use super::records::field_name;
use crate::eval::event::Event;
use crate::eval::expr::{from_json, Val};
use crate::eval::mapping::fit;
use crate::ir::{Escalation, FieldRef, Program, TicketField, Type};
use serde_json::Value as Json;

/// The agent's field writes: one action per field that passes, a refusal
/// naming the reason for each that does not.
pub(super) fn fields<'a>(p: &'a Program, ev: &'a Event, d: &mut Decision<'a>, push: &Push<'_, 'a>) {
    let Some(turn) = ev.turn.as_ref() else {
        return;
    };
    for (alias, value) in &turn.requested_fields {
        let what = format!("field {alias}");
        let refuse = |d: &mut Decision<'a>, reason: String, loc| {
            d.refused.push(Refusal {
                what: what.clone(),
                reason,
                loc,
            })
        };
        let Some(f) = p.ticket_fields.iter().find(|f| f.alias() == alias) else {
            let names = p.ticket_fields.iter().map(|f| f.alias());
            let hint = crate::model::did_you_mean(alias, names)
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            refuse(
                d,
                format!("`{alias}` is not a ticket field the mappings declare{hint}"),
                None,
            );
            continue;
        };
        if let Some((reason, loc)) = not_the_agents(p, f) {
            refuse(d, reason, Some(loc));
            continue;
        }
        let Some(ticket) = ev.ticket.as_ref() else {
            refuse(
                d,
                "the request names no ticket to write to".into(),
                Some(f.loc),
            );
            continue;
        };
        // An object (or a list) fits no field but an amount: refused as
        // what it is, never written as text or read as "no value".
        let shaped = match value {
            Json::Object(_) => !matches!(f.ty, Type::Money(_)),
            Json::Array(_) => !matches!(f.ty, Type::List(_) | Type::Any),
            _ => false,
        };
        if shaped {
            refuse(
                d,
                format!("an object or a list is not a value of `{alias}`, so it is not written"),
                Some(f.loc),
            );
            continue;
        }
        let val = as_val(value, &f.ty);
        match fit(&val, &f.ty) {
            Ok(v) if read_same(ev, f, value) => {
                let _ = v;
                refuse(
                    d,
                    format!(
                        "the ticket's `{}` already holds that value",
                        field_name(&f.field)
                    ),
                    Some(f.loc),
                );
            }
            Ok(v) => push(
                d,
                ActionKind::SetField {
                    field: &f.field,
                    value: v,
                },
                Record::Ticket { id: ticket.id },
                Rule::Request,
                f.loc,
                None,
            ),
            Err(why) => refuse(
                d,
                format!("{why}, so `{alias}` is not written"),
                Some(f.loc),
            ),
        }
    }
}

/// Why an agent may not write the declared field `f`, and the rule that
/// owns it: a `map` feeds it, or a rule decides on or writes it
/// ([`guarded`]). The one answer the eval, the MCP tool's schema and the
/// outbox's last look (`runtime::screen`) all use.
pub fn not_the_agents(p: &Program, f: &TicketField) -> Option<(String, crate::ir::Loc)> {
    let alias = f.alias();
    if let Some((rule, loc)) = guarded(p, f) {
        return Some((
            format!(
                "`{alias}` is what {rule} decides on or writes; a person sets it, not the agent"
            ),
            loc,
        ));
    }
    fed_by_map(p, f).map(|(from, to, loc)| {
        (
            format!("`{alias}` is written by `map {from} -> {to}`; change its source there, not the ticket"),
            loc,
        )
    })
}

/// The rule that reads `f` to decide (a transition's or an escalation's
/// condition) or that an escalation writes, if any: an agent that could
/// set it could unlock the transition it guards, or forge a hand-off's
/// record.
pub fn guarded(p: &Program, f: &TicketField) -> Option<(String, crate::ir::Loc)> {
    let alias = f.alias();
    for t in &p.status_tables {
        for tr in &t.transitions {
            if tr.when.as_ref().is_some_and(|w| reads(w, alias)) {
                return Some((
                    format!(
                        "the transition `{} -> {}`",
                        tr.from.join(", "),
                        tr.to.join(", ")
                    ),
                    tr.loc,
                ));
            }
        }
    }
    for e in &p.escalations {
        let sets = e.actions.iter().any(|a| {
            matches!(a, crate::ir::EscAction::SetField { field: FieldRef::Zendesk { field, .. }, .. } if field == alias)
        });
        if reads(&e.when, alias) || sets {
            return Some((format!("escalation `{}`", e.name), e.loc));
        }
    }
    None
}

/// Whether `e` reads the ticket field `alias`.
fn reads(e: &crate::ir::Expr, alias: &str) -> bool {
    use crate::ir::{ExprKind, Ref};
    match &e.kind {
        ExprKind::Ref(Ref::TicketField { alias: a, .. }) => a == alias,
        ExprKind::Ref(Ref::Event { root, field }) => root == "ticket" && field == alias,
        ExprKind::Ref(_) | ExprKind::Lit(_) => false,
        ExprKind::List(xs) | ExprKind::And(xs) | ExprKind::Or(xs) => {
            xs.iter().any(|x| reads(x, alias))
        }
        ExprKind::Not(x) => reads(x, alias),
        ExprKind::Cmp(_, a, b) => reads(a, alias) || reads(b, alias),
    }
}

/// The `map` rule that writes `f`, if any: its two connections and place.
fn fed_by_map<'a>(p: &'a Program, f: &TicketField) -> Option<(&'a str, &'a str, crate::ir::Loc)> {
    p.mappings.iter().find_map(|m| {
        m.rules
            .iter()
            .find(|r| match (&r.target, &f.field) {
                (
                    FieldRef::Zendesk {
                        connection: a,
                        field: x,
                        ..
                    },
                    FieldRef::Zendesk {
                        connection: b,
                        field: y,
                        ..
                    },
                ) => a == b && x == y,
                _ => false,
            })
            .map(|r| (m.from.as_str(), m.to.as_str(), r.loc))
    })
}

/// Whether the ticket as read already holds `value` in `f`.
fn read_same(ev: &Event, f: &TicketField, value: &Json) -> bool {
    let Some(t) = ev.ticket.as_ref() else {
        return false;
    };
    let FieldRef::Zendesk { id: Some(id), .. } = &f.field else {
        return false;
    };
    let Some(has) = t.custom_fields.get(&id.to_string()) else {
        return value.is_null();
    };
    crate::eval::expr::equal(&as_val(has, &f.ty), &as_val(value, &f.ty))
}

/// An agent's JSON as a value of the field's type: an amount as
/// `{"amount": "72.00", "currency": "USD"}`, or as a number or decimal text
/// in the field's currency.
fn as_val<'j>(value: &'j Json, ty: &'j Type) -> Val<'j> {
    match (ty, value) {
        (Type::Money(_), Json::Object(m)) => match (m.get("amount"), m.get("currency")) {
            (Some(Json::String(a)), Some(Json::String(c))) => {
                crate::syntax::decimal_units(a).map_or(Val::Null, |u| Val::Money(u, c))
            }
            _ => Val::Str("an object that is not {\"amount\", \"currency\"}"),
        },
        (Type::Money(Some(cur)), Json::String(a)) => {
            crate::syntax::decimal_units(a).map_or(Val::Str(a), |u| Val::Money(u, cur))
        }
        (Type::Money(Some(cur)), Json::Number(n)) => {
            crate::syntax::decimal_units(&n.to_string()).map_or(Val::Null, |u| Val::Money(u, cur))
        }
        // Zendesk keeps numbers of a decimal field as text.
        (Type::Number, Json::String(s)) => s.trim().parse::<f64>().map_or(Val::Str(s), Val::Num),
        (_, Json::Object(_)) => Val::Null,
        _ => from_json(value),
    }
}

/// The escalation the agent asked for, against the one that hands off
/// (`chosen`): a refusal when they differ, naming why.
pub(super) fn escalation(
    p: &Program,
    ev: &Event,
    chosen: Option<&Escalation>,
    d: &mut Decision<'_>,
) {
    let Some(name) = ev
        .turn
        .as_ref()
        .and_then(|t| t.requested_escalation.as_deref())
    else {
        return;
    };
    let what = format!("escalation {name}");
    let Some(wanted) = p.escalation(name) else {
        let hint = crate::model::did_you_mean(name, p.escalations.iter().map(|e| e.name.as_str()))
            .map(|h| format!("; {h}"))
            .unwrap_or_default();
        d.refused.push(Refusal {
            what,
            reason: format!("the mappings declare no escalation `{name}`{hint}"),
            loc: None,
        });
        return;
    };
    match chosen {
        Some(e) if e.name == wanted.name => {}
        Some(e) => d.refused.push(Refusal {
            what,
            reason: format!(
                "escalation `{}` comes first and its condition holds, so it hands the conversation off instead (only the first escalation whose condition holds hands off)",
                e.name
            ),
            loc: Some(e.loc),
        }),
        None => d.refused.push(Refusal {
            what,
            reason: format!(
                "its condition does not hold for this conversation: {}",
                wanted.condition.as_deref().unwrap_or("see its `when`")
            ),
            loc: Some(wanted.loc),
        }),
    }
}
