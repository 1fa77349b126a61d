//! Conditions over an event. Evaluation is total: a value the event does
//! not carry is `Null`, and a comparison with `Null` is false (except
//! `== none`), so a missing field can never make a rule fire by accident.

use super::event::Event;
use crate::ir::{Expr, ExprKind, Op, Ref, Type, Value};
use crate::syntax::decimal_units;
use serde_json::Value as Json;

/// What an expression can see besides the event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    /// `escalation.name` and `escalation.reason`, inside templates.
    pub escalation: Option<(&'a str, &'a str)>,
}

fn text(s: &Option<String>) -> Value {
    s.as_ref().map_or(Value::Null, |s| Value::Str(s.clone()))
}

fn strings(v: &[String]) -> Value {
    Value::List(v.iter().map(|s| Value::Str(s.clone())).collect())
}

/// A JSON value from a payload as an l3map value.
pub fn from_json(j: &Json) -> Value {
    match j {
        Json::Null | Json::Object(_) => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n.as_f64().map_or(Value::Null, Value::Num),
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(a) => Value::List(a.iter().map(from_json).collect()),
    }
}

/// Looks up what a reference points at in the event.
pub fn resolve(r: &Ref, ev: &Event, scope: Scope) -> Value {
    match r {
        Ref::Event { root, field } => match root.as_str() {
            "ticket" => {
                let Some(t) = &ev.ticket else {
                    return Value::Null;
                };
                match field.as_str() {
                    "id" => Value::Num(t.id as f64),
                    "subject" => text(&t.subject),
                    "description" => text(&t.description),
                    "status" => text(&t.status),
                    "priority" => text(&t.priority),
                    "type" => text(&t.kind),
                    "tags" => strings(&t.tags),
                    "group" => text(&t.group),
                    "assignee" => text(&t.assignee),
                    "requester_email" => text(&t.requester_email),
                    "requester_name" => text(&t.requester_name),
                    "channel" => text(&t.channel),
                    "created_at" => text(&t.created_at),
                    "updated_at" => text(&t.updated_at),
                    _ => Value::Null,
                }
            }
            "comment" => {
                let Some(c) = &ev.comment else {
                    return Value::Null;
                };
                match field.as_str() {
                    "body" => text(&c.body),
                    "author" => text(&c.author),
                    "public" => c.public.map_or(Value::Null, Value::Bool),
                    _ => Value::Null,
                }
            }
            "turn" => {
                let Some(t) = &ev.turn else {
                    return Value::Null;
                };
                match field.as_str() {
                    "intent" => text(&t.intent),
                    "summary" => text(&t.summary),
                    "attempts" => strings(&t.attempts),
                    "sentiment" => text(&t.sentiment),
                    "refund_amount" => t.refund_amount.as_ref().map_or(Value::Null, |m| {
                        decimal_units(&m.amount)
                            .map_or(Value::Null, |u| Value::Money(u, m.currency.clone()))
                    }),
                    "requested_status" => text(&t.requested_status),
                    "confidence" => t.confidence.map_or(Value::Null, Value::Num),
                    "language" => text(&t.language),
                    "order_id" => text(&t.order_id),
                    "product" => text(&t.product),
                    _ => Value::Null,
                }
            }
            "escalation" => match (scope.escalation, field.as_str()) {
                (Some((name, _)), "name") => Value::Str(name.into()),
                (Some((_, reason)), "reason") => Value::Str(reason.into()),
                _ => Value::Null,
            },
            _ => Value::Null,
        },
        Ref::TicketField { id, ty, .. } => {
            let v = ev
                .ticket
                .as_ref()
                .and_then(|t| t.custom_fields.get(decimal(*id, &mut [0; 20])))
                .map_or(Value::Null, from_json);
            typed(v, ty.as_ref())
        }
        Ref::Salesforce { path, ty } => {
            let mut segs = path.split('.');
            let Some(record) = segs.next().and_then(|o| ev.records.get(o)) else {
                return Value::Null;
            };
            let mut cur: Option<&Json> = None;
            for (i, seg) in segs.enumerate() {
                cur = if i == 0 {
                    record.get(seg)
                } else {
                    cur.and_then(|c| c.get(seg))
                };
            }
            typed(cur.map_or(Value::Null, from_json), ty.as_ref())
        }
    }
}

/// `id` in decimal, without allocating: this runs for every field read.
fn decimal(mut id: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (id % 10) as u8;
        id /= 10;
        if id == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("")
}

/// A payload value read as its field's declared type: Zendesk sends
/// decimal fields as text, Salesforce sends currency fields as numbers.
/// A value that does not fit the type is left as it is (and so compares
/// unequal to anything typed).
pub fn typed(v: Value, ty: Option<&Type>) -> Value {
    match (ty, v) {
        (Some(Type::Money(Some(cur))), Value::Num(n)) if n.is_finite() && n.abs() < 9e14 => {
            Value::Money((n * 10_000.0).round() as i64, cur.clone())
        }
        (Some(Type::Money(Some(cur))), Value::Str(s)) => match decimal_units(s.trim()) {
            Some(u) => Value::Money(u, cur.clone()),
            None => Value::Str(s),
        },
        (Some(Type::Number), Value::Str(s)) => match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Value::Num(n),
            _ => Value::Str(s),
        },
        (Some(Type::Bool), Value::Str(s)) => match s.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::Str(s),
        },
        (_, v) => v,
    }
}

/// Equality as conditions see it: amounts compare exactly, only within
/// one currency; whole numbers equal their decimal form.
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => x == y,
        (Value::Money(x, c), Value::Money(y, d)) => x == y && c == d,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        (a, b) => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => x.partial_cmp(y),
        (Value::Money(x, c), Value::Money(y, d)) if c == d => Some(x.cmp(y)),
        // ISO dates and RFC 3339 times in one zone order as text.
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn contains(list: &Value, item: &Value) -> bool {
    matches!(list, Value::List(items) if items.iter().any(|i| equal(i, item)))
}

/// Evaluates an expression to a value.
pub fn eval(e: &Expr, ev: &Event, scope: Scope) -> Value {
    match &e.kind {
        ExprKind::Lit(v) => v.clone(),
        ExprKind::Ref(r) => resolve(r, ev, scope),
        ExprKind::List(items) => Value::List(items.iter().map(|i| eval(i, ev, scope)).collect()),
        ExprKind::Not(x) => Value::Bool(!holds(x, ev, scope)),
        ExprKind::And(terms) => Value::Bool(terms.iter().all(|t| holds(t, ev, scope))),
        ExprKind::Or(terms) => Value::Bool(terms.iter().any(|t| holds(t, ev, scope))),
        ExprKind::Cmp(op, l, r) => {
            let (a, b) = (eval(l, ev, scope), eval(r, ev, scope));
            use std::cmp::Ordering::*;
            Value::Bool(match op {
                Op::Eq => equal(&a, &b),
                // A missing left side never fires: `turn.language != "en"`
                // must not hand off every event that carries no turn.
                Op::Ne => a != Value::Null && !equal(&a, &b),
                Op::Lt => order(&a, &b) == Some(Less),
                Op::Le => matches!(order(&a, &b), Some(Less | Equal)),
                Op::Gt => order(&a, &b) == Some(Greater),
                Op::Ge => matches!(order(&a, &b), Some(Greater | Equal)),
                Op::In => contains(&b, &a),
                Op::NotIn => a != Value::Null && !contains(&b, &a),
                Op::Has => contains(&a, &b),
            })
        }
    }
}

/// Whether a condition holds: only `true` is true.
pub fn holds(e: &Expr, ev: &Event, scope: Scope) -> bool {
    eval(e, ev, scope) == Value::Bool(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check;
    use crate::ir::{lower, Program};
    use crate::syntax::SourceMap;

    /// Compiles a project whose one escalation has condition `cond`.
    fn program(cond: &str) -> Program {
        let mut s = SourceMap::new();
        s.add(
            "t.l3map",
            format!(
                r#"
connection desk: zendesk {{
  subdomain "acme"
  token     env("ZENDESK_OAUTH_TOKEN")
  scopes    read, write
}}
connection crm: salesforce {{
  instance      "https://acme.my.salesforce.com"
  client_id     env("SF_CLIENT_ID")
  client_secret env("SF_CLIENT_SECRET")
  refresh_token env("SF_REFRESH_TOKEN")
  scopes        api, refresh_token, offline_access
  objects       Case, Account
}}
fields desk {{ tier #360001234 enum(enterprise, standard) }}
escalation e {{
  when   {cond}
  reason "r"
  assign desk "Tier 2"
  set    crm Case.Note__c = "x"
}}
"#
            ),
        );
        let c = check(&s);
        assert!(
            !c.has_errors(),
            "{cond}: {:?}",
            c.diagnostics
                .iter()
                .map(|d| d.message())
                .collect::<Vec<_>>()
        );
        lower(&c, &s).unwrap()
    }

    fn event() -> Event {
        Event::from_json(
            r#"{"id":"e1","kind":"agent_turn","at":"2026-11-11T10:00:00Z",
                "ticket":{"id":7,"status":"open","priority":"high","tags":["vip","refund"],
                          "custom_fields":{"360001234":"enterprise"}},
                "turn":{"intent":"refund","refund_amount":{"amount":"250.00","currency":"USD"},
                        "sentiment":"angry","confidence":0.4},
                "records":{"Account":{"SLA_Tier__c":"Ent","Contract_Value__c":120000}}}"#,
        )
        .unwrap()
    }

    fn holds_for(cond: &str) -> bool {
        let p = program(cond);
        holds(&p.escalations[0].when, &event(), Scope::default())
    }

    #[test]
    fn conditions_over_every_root() {
        for (cond, want) in [
            (
                "turn.intent == \"refund\" and turn.refund_amount > $200",
                true,
            ),
            ("turn.refund_amount > 250 USD", false),
            ("turn.refund_amount >= 250.00 USD", true),
            ("turn.refund_amount > 200 EUR", false),
            ("ticket.tags has \"vip\"", true),
            ("ticket.priority in [high, urgent]", true),
            ("ticket.priority not in [high, urgent]", false),
            ("ticket.tier == enterprise", true),
            ("Account.SLA_Tier__c == \"Ent\"", true),
            ("Account.Contract_Value__c > 100000", true),
            ("turn.sentiment == angry or turn.confidence < 0.5", true),
            ("not (turn.confidence < 0.5)", false),
            ("comment.author == end_user", false),
            ("turn.order_id == none", true),
            ("Account.Missing__c != none", false),
            ("Account.SLA_Tier__c != none", true),
            ("turn.language != \"en\"", false),
            ("turn.language not in [\"en\", \"th\"]", false),
            ("turn.sentiment != neutral", true),
            ("turn.sentiment not in [neutral, positive]", true),
        ] {
            assert_eq!(holds_for(cond), want, "{cond}");
        }
    }

    #[test]
    fn missing_data_never_fires_a_rule() {
        let p = program("turn.refund_amount > $200");
        let bare = Event::from_json(r#"{"id":"e2","kind":"ticket_updated","at":"t"}"#).unwrap();
        assert!(!holds(&p.escalations[0].when, &bare, Scope::default()));
    }
}
