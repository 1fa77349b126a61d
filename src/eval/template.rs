//! Rendering hand-off comments. A variable the event lacks renders as
//! nothing, unless a `default` filter says otherwise; rendering never fails.

use super::event::Event;
use super::expr::{resolve, Scope};
use crate::ir::{Filter, TemplatePart, Value};

/// Renders a template's parts for one event.
pub fn render(parts: &[TemplatePart], ev: &Event, scope: Scope) -> String {
    let mut out = String::new();
    for p in parts {
        match p {
            TemplatePart::Text(t) => out.push_str(t),
            TemplatePart::Var { var, filters, .. } => {
                let v = filters
                    .iter()
                    .fold(resolve(var, ev, scope).to_value(), |v, f| apply(f, v));
                out.push_str(&display(&v));
            }
        }
    }
    out
}

fn arg_text(f: &Filter, i: usize) -> String {
    f.args.get(i).map(display).unwrap_or_default()
}

fn apply(f: &Filter, v: Value) -> Value {
    let map_text = |v: Value, g: &dyn Fn(&str) -> String| match v {
        Value::Null => Value::Null,
        other => Value::Str(g(&display(&other))),
    };
    match f.name.as_str() {
        "upper" => map_text(v, &|s| s.to_uppercase()),
        "lower" => map_text(v, &|s| s.to_lowercase()),
        "trim" => map_text(v, &|s| s.trim().to_string()),
        "join" => match v {
            Value::List(items) => Value::Str(
                items
                    .iter()
                    .map(display)
                    .collect::<Vec<_>>()
                    .join(&arg_text(f, 0)),
            ),
            other => other,
        },
        "default" => match v {
            Value::Null => f.args.first().cloned().unwrap_or(Value::Null),
            Value::Str(s) if s.is_empty() => f.args.first().cloned().unwrap_or(Value::Null),
            Value::List(l) if l.is_empty() => f.args.first().cloned().unwrap_or(Value::Null),
            other => other,
        },
        "truncate" => {
            let n = match f.args.first() {
                Some(Value::Num(n)) if *n >= 0.0 => *n as usize,
                _ => return v,
            };
            map_text(v, &|s| {
                if s.chars().count() <= n {
                    s.to_string()
                } else {
                    let mut t: String = s.chars().take(n).collect();
                    t.push('…');
                    t
                }
            })
        }
        "money" => match v {
            Value::Money(units, cur) => Value::Str(format_money(units, &cur)),
            other => other,
        },
        _ => v,
    }
}

/// `1234.5 USD` -> `1,234.50 USD` (amounts are ×10⁴, see `Value::Money`).
pub fn format_money(units: i64, currency: &str) -> String {
    let neg = units < 0;
    let cents = (units.unsigned_abs() + 50) / 100;
    let (whole, frac) = (cents / 100, cents % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!(
        "{}{grouped}.{frac:02} {currency}",
        if neg { "-" } else { "" }
    )
}

/// How a value reads in a comment.
pub fn display(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
        Value::Num(n) => n.to_string(),
        Value::Str(s) => s.clone(),
        Value::Money(u, c) => format_money(*u, c),
        Value::List(items) => items.iter().map(display).collect::<Vec<_>>().join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check;
    use crate::ir::lower;
    use crate::syntax::SourceMap;

    fn render_template(body: &str, event: &str) -> String {
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
template t """{body}"""
escalation e {{
  when    turn.intent == "refund"
  reason  "Refund above the $200 pre-authorised threshold"
  comment desk t
}}
"#
            ),
        );
        let c = check(&s);
        assert!(
            !c.has_errors(),
            "{:?}",
            c.diagnostics
                .iter()
                .map(|d| d.message())
                .collect::<Vec<_>>()
        );
        let p = lower(&c, &s).unwrap();
        let ev = Event::from_json(event).unwrap();
        let e = &p.escalations[0];
        let scope = Scope {
            escalation: Some((&e.name, &e.reason)),
        };
        render(&p.templates[0].parts, &ev, scope)
    }

    const TURN: &str = r#"{"id":"e","kind":"agent_turn","at":"2026-11-11T10:00:00Z",
        "turn":{"intent":"refund","summary":"Wants 250 € back for a broken kettle — «urgent»",
                "attempts":["checked order","offered credit"],"sentiment":"angry",
                "refund_amount":{"amount":"1234.5","currency":"EUR"}}}"#;

    #[test]
    fn hand_off_context_is_complete() {
        let out = render_template(
            "Why: {{ escalation.reason }}\nAsked: {{ turn.summary }}\nTried: {{ turn.attempts | join(\"; \") }}\nSentiment: {{ turn.sentiment | upper }}\nAmount: {{ turn.refund_amount | money }}",
            TURN,
        );
        assert_eq!(
            out,
            "Why: Refund above the $200 pre-authorised threshold\nAsked: Wants 250 € back for a broken kettle — «urgent»\nTried: checked order; offered credit\nSentiment: ANGRY\nAmount: 1,234.50 EUR"
        );
    }

    #[test]
    fn missing_variables_and_defaults() {
        let bare = r#"{"id":"e","kind":"agent_turn","at":"2026-11-11T10:00:00Z","turn":{"intent":"refund"}}"#;
        assert_eq!(render_template("[{{ turn.summary }}]", bare), "[]");
        assert_eq!(
            render_template("{{ turn.summary | default(\"n/a\") }}", bare),
            "n/a"
        );
        assert_eq!(
            render_template(
                "{{ turn.attempts | join(\", \") | default(\"nothing yet\") }}",
                bare
            ),
            "nothing yet"
        );
        assert_eq!(
            render_template("{{ turn.sentiment | upper | default(\"unknown\") }}", bare),
            "unknown"
        );
    }

    #[test]
    fn unicode_is_cut_on_characters() {
        assert_eq!(
            render_template("{{ turn.summary | truncate(10) }}", TURN),
            "Wants 250 …"
        );
        let jp = r#"{"id":"e","kind":"agent_turn","at":"2026-11-11T10:00:00Z","turn":{"intent":"refund","summary":"アイフォンの返金をお願いします"}}"#;
        assert_eq!(
            render_template("{{ turn.summary | truncate(5) | upper }}", jp),
            "アイフォン…"
        );
    }

    #[test]
    fn money_formatting() {
        assert_eq!(format_money(2_000_000, "USD"), "200.00 USD");
        assert_eq!(format_money(12_345_678_900, "JPY"), "1,234,567.89 JPY");
        assert_eq!(format_money(-5_000, "EUR"), "-0.50 EUR");
        assert_eq!(format_money(0, "USD"), "0.00 USD");
    }
}
