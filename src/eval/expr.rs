//! Conditions over an event. Evaluation is total: a value the event does
//! not carry is `Null`, and a comparison with `Null` is false (except
//! `== none`), so a missing field can never make a rule fire by accident.
//!
//! Values are borrowed ([`Val`]) from the event and the program while a
//! condition is evaluated: conditions run on every event, and copying each
//! string they look at cost more than the comparisons themselves.

use super::event::Event;
use crate::ir::{Expr, ExprKind, Loc, Op, Ref, Type, Value};
use crate::syntax::decimal_units;
use serde_json::Value as Json;

/// What an expression can see besides the event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    /// `escalation.name` and `escalation.reason`, inside templates.
    pub escalation: Option<(&'a str, &'a str)>,
}

/// A value during evaluation, borrowed from the event or the program.
/// [`Val::to_value`] makes an owned [`Value`] for what is kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    /// Amount × 10⁴ and ISO currency.
    Money(i64, &'a str),
    /// A list literal of the program.
    Items(&'a [Value]),
    /// A list of text in the event (tags, attempts).
    Strs(&'a [String]),
    /// Any other list: a JSON array, a list expression.
    List(Vec<Val<'a>>),
}

impl<'a> Val<'a> {
    pub fn of(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Num(n) => Val::Num(*n),
            Value::Str(s) => Val::Str(s),
            Value::Money(u, c) => Val::Money(*u, c),
            Value::List(items) => Val::Items(items),
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(*b),
            Val::Num(n) => Value::Num(*n),
            Val::Str(s) => Value::Str(s.to_string()),
            Val::Money(u, c) => Value::Money(*u, c.to_string()),
            Val::Items(items) => Value::List(items.to_vec()),
            Val::Strs(items) => Value::List(items.iter().map(|s| Value::Str(s.clone())).collect()),
            Val::List(items) => Value::List(items.iter().map(Val::to_value).collect()),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    /// The members of a list, as borrowed values; `None` for a non-list.
    fn members(&self) -> Option<Vec<Val<'a>>> {
        Some(match self {
            Val::Items(items) => items.iter().map(Val::of).collect(),
            Val::Strs(items) => items.iter().map(|s| Val::Str(s)).collect(),
            Val::List(items) => items.clone(),
            _ => return None,
        })
    }
}

fn text(s: &Option<String>) -> Val<'_> {
    s.as_deref().map_or(Val::Null, Val::Str)
}

/// A JSON value from a payload as an l3map value.
pub fn from_json(j: &Json) -> Val<'_> {
    match j {
        Json::Null | Json::Object(_) => Val::Null,
        Json::Bool(b) => Val::Bool(*b),
        Json::Number(n) => n.as_f64().map_or(Val::Null, Val::Num),
        Json::String(s) => Val::Str(s),
        Json::Array(a) => Val::List(a.iter().map(from_json).collect()),
    }
}

/// Looks up what a reference points at in the event.
pub fn resolve<'a>(r: &'a Ref, ev: &'a Event, scope: Scope<'a>) -> Val<'a> {
    match r {
        Ref::Event { root, field } => event_field(root, field, ev, scope),
        Ref::TicketField { id, ty, .. } => custom_field(*id, ty.as_ref(), ev),
        Ref::Salesforce { path, ty, .. } => salesforce_field(path, ty.as_ref(), ev),
    }
}

/// A standard field of the event: `ticket.status`, `turn.summary`, ...
pub fn event_field<'a>(root: &str, field: &str, ev: &'a Event, scope: Scope<'a>) -> Val<'a> {
    match root {
        "ticket" => {
            let Some(t) = &ev.ticket else {
                return Val::Null;
            };
            match field {
                "id" => Val::Num(t.id as f64),
                "subject" => text(&t.subject),
                "description" => text(&t.description),
                "status" => text(&t.status),
                "priority" => text(&t.priority),
                "type" => text(&t.kind),
                "tags" => Val::Strs(&t.tags),
                "group" => text(&t.group),
                "assignee" => text(&t.assignee),
                "requester_email" => text(&t.requester_email),
                "requester_name" => text(&t.requester_name),
                "channel" => text(&t.channel),
                "created_at" => text(&t.created_at),
                "updated_at" => text(&t.updated_at),
                _ => Val::Null,
            }
        }
        "comment" => {
            let Some(c) = &ev.comment else {
                return Val::Null;
            };
            match field {
                "body" => text(&c.body),
                "author" => text(&c.author),
                "public" => c.public.map_or(Val::Null, Val::Bool),
                _ => Val::Null,
            }
        }
        "turn" => {
            let Some(t) = &ev.turn else {
                return Val::Null;
            };
            match field {
                "intent" => text(&t.intent),
                "summary" => text(&t.summary),
                "attempts" => Val::Strs(&t.attempts),
                "sentiment" => text(&t.sentiment),
                "refund_amount" => t.refund_amount.as_ref().map_or(Val::Null, |m| {
                    decimal_units(&m.amount).map_or(Val::Null, |u| Val::Money(u, &m.currency))
                }),
                "requested_status" => text(&t.requested_status),
                "confidence" => t.confidence.map_or(Val::Null, Val::Num),
                "language" => text(&t.language),
                "order_id" => text(&t.order_id),
                "product" => text(&t.product),
                _ => Val::Null,
            }
        }
        "escalation" => match (scope.escalation, field) {
            (Some((name, _)), "name") => Val::Str(name),
            (Some((_, reason)), "reason") => Val::Str(reason),
            _ => Val::Null,
        },
        _ => Val::Null,
    }
}

/// A Zendesk custom field by id, read as its declared type.
pub fn custom_field<'a>(id: u64, ty: Option<&'a Type>, ev: &'a Event) -> Val<'a> {
    let v = ev
        .ticket
        .as_ref()
        .and_then(|t| t.custom_fields.get(decimal(id, &mut [0; 20])))
        .map_or(Val::Null, from_json);
    typed(v, ty)
}

/// A Salesforce field by `Object.Field` path (or a relation path), read as
/// its declared type.
pub fn salesforce_field<'a>(path: &str, ty: Option<&'a Type>, ev: &'a Event) -> Val<'a> {
    // A byte scan: paths are short, and this runs for every mapped field.
    let dot = |s: &str| s.bytes().position(|b| b == b'.');
    let Some(at) = dot(path) else {
        return Val::Null;
    };
    let Some(record) = ev.records.get(&path[..at]) else {
        return Val::Null;
    };
    let mut rest = &path[at + 1..];
    let mut cur = match dot(rest) {
        None => return typed(record.get(rest).map_or(Val::Null, from_json), ty),
        Some(at) => {
            let v = record.get(&rest[..at]);
            rest = &rest[at + 1..];
            v
        }
    };
    // Relation paths: `Case.Account.Name`.
    loop {
        match dot(rest) {
            None => {
                cur = cur.and_then(|c| c.get(rest));
                break;
            }
            Some(at) => {
                cur = cur.and_then(|c| c.get(&rest[..at]));
                rest = &rest[at + 1..];
            }
        }
    }
    typed(cur.map_or(Val::Null, from_json), ty)
}

/// `id` in decimal, without allocating: this runs for every field read.
pub(crate) fn decimal(mut id: u64, buf: &mut [u8; 20]) -> &str {
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
pub fn typed<'a>(v: Val<'a>, ty: Option<&'a Type>) -> Val<'a> {
    match (ty, v) {
        (Some(Type::Money(Some(cur))), Val::Num(n)) if n.is_finite() && n.abs() < 9e14 => {
            Val::Money((n * 10_000.0).round() as i64, cur)
        }
        (Some(Type::Money(Some(cur))), Val::Str(s)) => match decimal_units(s.trim()) {
            Some(u) => Val::Money(u, cur),
            None => Val::Str(s),
        },
        (Some(Type::Number), Val::Str(s)) => match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Val::Num(n),
            _ => Val::Str(s),
        },
        (Some(Type::Bool), Val::Str(s)) => match s {
            "true" => Val::Bool(true),
            "false" => Val::Bool(false),
            _ => Val::Str(s),
        },
        (_, v) => v,
    }
}

/// Equality as conditions see it: amounts compare exactly, only within
/// one currency; whole numbers equal their decimal form.
pub fn equal(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Num(x), Val::Num(y)) => x == y,
        (Val::Money(x, c), Val::Money(y, d)) => x == y && c == d,
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Null, Val::Null) => true,
        (x, y) => match (x.members(), y.members()) {
            (Some(xs), Some(ys)) => {
                xs.len() == ys.len() && xs.iter().zip(&ys).all(|(a, b)| equal(a, b))
            }
            _ => false,
        },
    }
}

/// [`equal`] for owned values.
pub fn equal_values(a: &Value, b: &Value) -> bool {
    equal(&Val::of(a), &Val::of(b))
}

fn order(a: &Val, b: &Val) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
        (Val::Money(x, c), Val::Money(y, d)) if c == d => Some(x.cmp(y)),
        // ISO dates and RFC 3339 times in one zone order as text.
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Whether `list` holds `item`, without building a list of either.
fn contains(list: &Val, item: &Val) -> bool {
    match list {
        Val::Items(items) => items.iter().any(|i| equal(&Val::of(i), item)),
        Val::Strs(items) => match item {
            Val::Str(s) => items.iter().any(|i| i == s),
            _ => false,
        },
        Val::List(items) => items.iter().any(|i| equal(i, item)),
        _ => false,
    }
}

/// `a OP b` as conditions see it: an order between values of different
/// kinds, or amounts in different currencies, is not there (false); see
/// [`truth`] for the conditions that must not read that as "no".
fn compare(op: Op, a: &Val, b: &Val) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Op::Eq => equal(a, b),
        // A missing left side never fires: `turn.language != "en"`
        // must not hand off every event that carries no turn.
        Op::Ne => !a.is_null() && !equal(a, b),
        Op::Lt => order(a, b) == Some(Less),
        Op::Le => matches!(order(a, b), Some(Less | Equal)),
        Op::Gt => order(a, b) == Some(Greater),
        Op::Ge => matches!(order(a, b), Some(Greater | Equal)),
        Op::In => contains(b, a),
        Op::NotIn => !a.is_null() && !contains(b, a),
        Op::Has => contains(a, b),
    }
}

/// What a condition decides.
#[derive(Debug, Clone, PartialEq)]
pub enum Truth {
    Yes,
    No,
    /// The answer hinges on a comparison l3map cannot make.
    Unknown(Incomparable),
}

/// A comparison of amounts l3map cannot make: two currencies (it never
/// converts, and has no exchange rate to guess with), or an amount and a
/// bare number whose currency nothing declares.
#[derive(Debug, Clone, PartialEq)]
pub struct Incomparable {
    /// The comparison, in the `.l3map` file.
    pub loc: Loc,
    /// Why, naming both sides and their currencies, for the agent to relay.
    pub reason: String,
}

/// Whether a condition holds, in three-valued logic: an order between
/// amounts in two currencies (`turn.refund_amount > $200` for a refund of
/// 25,000 EUR) is neither true nor false, and so is every condition whose
/// answer depends on it. `false and ?` is still false and `true or ?`
/// still true, so a rule that does not need the comparison is decided.
///
/// A condition that compares the same amount with thresholds in several
/// currencies (`turn.refund_amount > $200 or turn.refund_amount > 180 EUR`)
/// has one threshold per currency: an amount is held against the threshold
/// in its own currency, and the others are simply not its threshold (false).
/// Only an amount in a currency the condition has no threshold for is
/// unknown. Pure: no rates, no clock, no I/O.
pub fn truth(e: &Expr, ev: &Event, scope: Scope) -> Truth {
    truth_in(e, e, ev, scope)
}

fn truth_in(root: &Expr, e: &Expr, ev: &Event, scope: Scope) -> Truth {
    match &e.kind {
        ExprKind::Not(x) => match truth_in(root, x, ev, scope) {
            Truth::Yes => Truth::No,
            Truth::No => Truth::Yes,
            unknown => unknown,
        },
        ExprKind::And(terms) => {
            let mut unknown = None;
            for t in terms {
                match truth_in(root, t, ev, scope) {
                    Truth::No => return Truth::No,
                    Truth::Yes => {}
                    Truth::Unknown(u) => {
                        unknown.get_or_insert(u);
                    }
                }
            }
            unknown.map_or(Truth::Yes, Truth::Unknown)
        }
        ExprKind::Or(terms) => {
            let mut unknown = None;
            for t in terms {
                match truth_in(root, t, ev, scope) {
                    Truth::Yes => return Truth::Yes,
                    Truth::No => {}
                    Truth::Unknown(u) => {
                        unknown.get_or_insert(u);
                    }
                }
            }
            unknown.map_or(Truth::No, Truth::Unknown)
        }
        ExprKind::Cmp(op @ (Op::Lt | Op::Le | Op::Gt | Op::Ge), l, r) => {
            let (a, b) = (eval(l, ev, scope), eval(r, ev, scope));
            if let Some(reason) = incomparable(root, l, r, &a, &b) {
                return Truth::Unknown(Incomparable { loc: e.loc, reason });
            }
            if compare(*op, &a, &b) {
                Truth::Yes
            } else {
                Truth::No
            }
        }
        _ => {
            if holds(e, ev, scope) {
                Truth::Yes
            } else {
                Truth::No
            }
        }
    }
}

/// Why `l` (worth `a`) and `r` (worth `b`) cannot be ordered, if they
/// cannot: see [`truth`].
fn incomparable(root: &Expr, l: &Expr, r: &Expr, a: &Val, b: &Val) -> Option<String> {
    let side = |e: &Expr, v: &Val| match (&e.kind, v) {
        (ExprKind::Lit(_), Val::Money(u, c)) => super::display::format_money(*u, c),
        (_, Val::Money(u, c)) => {
            format!("`{}` ({})", path_of(e), super::display::format_money(*u, c))
        }
        (_, v) => format!(
            "`{}` ({})",
            path_of(e),
            super::display::display(&v.to_value())
        ),
    };
    match (a, b) {
        (Val::Money(_, c), Val::Money(_, d)) if c != d => {
            // The event's amount, and the threshold it is held against.
            let (amount, currency) = match (&l.kind, &r.kind) {
                (ExprKind::Lit(_), _) => (r, *d),
                _ => (l, *c),
            };
            if has_threshold_in(root, amount, currency) {
                return None;
            }
            Some(format!(
                "cannot compare {} with {}: l3map does not convert currencies, and the condition has no threshold in {currency}",
                side(l, a),
                side(r, b)
            ))
        }
        (Val::Money(..), Val::Num(_)) | (Val::Num(_), Val::Money(..)) => Some(format!(
            "cannot compare {} with {}: a plain number has no currency (declare the field as `money(CUR)` in `fields`)",
            side(l, a),
            side(r, b)
        )),
        _ => None,
    }
}

/// Whether `root` orders `amount` against a literal amount in `currency`.
fn has_threshold_in(root: &Expr, amount: &Expr, currency: &str) -> bool {
    match &root.kind {
        ExprKind::Not(x) => has_threshold_in(x, amount, currency),
        ExprKind::And(terms) | ExprKind::Or(terms) => {
            terms.iter().any(|t| has_threshold_in(t, amount, currency))
        }
        ExprKind::Cmp(Op::Lt | Op::Le | Op::Gt | Op::Ge, l, r) => {
            let threshold = |x: &Expr, y: &Expr| {
                x.kind == amount.kind
                    && matches!(&y.kind, ExprKind::Lit(Value::Money(_, c)) if c == currency)
            };
            threshold(l, r) || threshold(r, l)
        }
        _ => false,
    }
}

/// How a reference reads in a message: `turn.refund_amount`.
fn path_of(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Ref(Ref::Event { root, field }) => format!("{root}.{field}"),
        ExprKind::Ref(Ref::TicketField { alias, .. }) => format!("ticket.{alias}"),
        ExprKind::Ref(Ref::Salesforce { path, .. }) => path.clone(),
        _ => "the value".into(),
    }
}

/// Evaluates an expression to a value.
pub fn eval<'a>(e: &'a Expr, ev: &'a Event, scope: Scope<'a>) -> Val<'a> {
    match &e.kind {
        ExprKind::Lit(v) => Val::of(v),
        ExprKind::Ref(r) => resolve(r, ev, scope),
        ExprKind::List(items) => Val::List(items.iter().map(|i| eval(i, ev, scope)).collect()),
        ExprKind::Not(x) => Val::Bool(!holds(x, ev, scope)),
        ExprKind::And(terms) => Val::Bool(terms.iter().all(|t| holds(t, ev, scope))),
        ExprKind::Or(terms) => Val::Bool(terms.iter().any(|t| holds(t, ev, scope))),
        ExprKind::Cmp(op, l, r) => {
            let (a, b) = (eval(l, ev, scope), eval(r, ev, scope));
            Val::Bool(compare(*op, &a, &b))
        }
    }
}

/// Whether a condition holds: only `true` is true.
pub fn holds(e: &Expr, ev: &Event, scope: Scope) -> bool {
    eval(e, ev, scope) == Val::Bool(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::program_of;
    use crate::ir::Program;

    /// Compiles a project whose one escalation has condition `cond`.
    fn program(cond: &str) -> Program {
        program_of(&format!(
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
        ))
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

    /// `event()` with a refund of `amount` `currency`.
    fn refund(amount: &str, currency: &str) -> Event {
        Event::from_json(&format!(
            r#"{{"id":"e3","kind":"agent_turn","at":"2026-11-11T10:00:00Z",
                "ticket":{{"id":7,"status":"open","tags":["vip"]}},
                "turn":{{"intent":"refund","refund_amount":{{"amount":"{amount}","currency":"{currency}"}}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn amounts_in_two_currencies_are_never_silently_compared() {
        let truth_of = |cond: &str, ev: &Event| {
            let p = program(cond);
            truth(&p.escalations[0].when, ev, Scope::default())
        };
        let eur = refund("25000.00", "EUR");
        match truth_of("turn.refund_amount > $200", &eur) {
            Truth::Unknown(why) => {
                assert!(why.reason.contains("25,000.00 EUR"), "{}", why.reason);
                assert!(why.reason.contains("200.00 USD"), "{}", why.reason);
                assert_eq!(why.loc.line, 17, "the `when` line");
            }
            other => panic!("{other:?}"),
        }
        // Kleene: a rule that does not need the comparison is decided.
        assert_eq!(
            truth_of(
                "turn.intent == \"question\" and turn.refund_amount > $200",
                &eur
            ),
            Truth::No
        );
        assert_eq!(
            truth_of("ticket.tags has \"vip\" or turn.refund_amount > $200", &eur),
            Truth::Yes
        );
        assert!(matches!(
            truth_of("not (turn.refund_amount > $200)", &eur),
            Truth::Unknown(_)
        ));
        // One threshold per currency: each amount meets its own.
        let per_currency = "turn.refund_amount > $200 or turn.refund_amount > 180 EUR";
        assert_eq!(truth_of(per_currency, &eur), Truth::Yes);
        assert_eq!(truth_of(per_currency, &refund("100", "USD")), Truth::No);
        assert_eq!(truth_of(per_currency, &refund("100", "EUR")), Truth::No);
        assert!(matches!(
            truth_of(per_currency, &refund("90000", "JPY")),
            Truth::Unknown(_)
        ));
        // A bare number has no currency: an undeclared Salesforce amount.
        match truth_of("Account.Contract_Value__c > $1000", &event()) {
            Truth::Unknown(why) => assert!(
                why.reason.contains("`Account.Contract_Value__c` (120000)")
                    && why.reason.contains("money(CUR)"),
                "{}",
                why.reason
            ),
            other => panic!("{other:?}"),
        }
        // Equality stays exact: 200 EUR is not $200.
        assert_eq!(
            truth_of("turn.refund_amount == $200", &refund("200", "EUR")),
            Truth::No
        );
    }

    #[test]
    fn missing_data_never_fires_a_rule() {
        let p = program("turn.refund_amount > $200");
        let bare =
            Event::from_json(r#"{"id":"e2","kind":"ticket_updated","at":"2026-11-11T10:00:00Z"}"#)
                .unwrap();
        assert!(!holds(&p.escalations[0].when, &bare, Scope::default()));
    }
}
