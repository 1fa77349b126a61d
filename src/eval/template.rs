//! Rendering hand-off comments. A variable the event lacks renders as
//! nothing, unless a `default` filter says otherwise; rendering never fails.
//!
//! A rendered comment is capped at [`MAX_RENDER`] bytes: a template's own
//! text is bounded by its file, but every placeholder repeats what the
//! event holds and `join` repeats its separator once per list item, so a
//! large template over a large event could otherwise ask for gigabytes.

use super::display::{display, format_money, join_capped};
use super::event::Event;
use super::expr::{resolve, Scope};
use crate::ir::{Filter, TemplatePart, Value};

pub use super::display::MAX_RENDER;

/// What a comment cut at [`MAX_RENDER`] ends with.
const CUT: &str = "…";

/// Renders a template's parts for one event, at most [`MAX_RENDER`] bytes;
/// a longer comment is cut on a character boundary and ends with `…`.
pub fn render(parts: &[TemplatePart], ev: &Event, scope: Scope) -> String {
    let mut out = String::new();
    for p in parts {
        let whole = match p {
            TemplatePart::Text(t) => push_capped(&mut out, t),
            TemplatePart::Var { var, filters, .. } => {
                let v = filters
                    .iter()
                    .fold(resolve(var, ev, scope).to_value(), |v, f| apply(f, v));
                push_capped(&mut out, &display(&v))
            }
        };
        if !whole {
            break;
        }
    }
    out
}

/// Appends `s` if the result stays within [`MAX_RENDER`]; otherwise
/// appends what fits before the closing `…` and says it did not all fit.
fn push_capped(out: &mut String, s: &str) -> bool {
    if out.len() + s.len() <= MAX_RENDER {
        out.push_str(s);
        return true;
    }
    let mut end = MAX_RENDER
        .saturating_sub(out.len() + CUT.len())
        .min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.push_str(&s[..end]);
    out.push_str(CUT);
    false
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
            Value::List(items) => Value::Str(join_capped(&items, &arg_text(f, 0))),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::program_of;

    fn render_template(body: &str, event: &str) -> String {
        let p = program_of(&format!(
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
        ));
        let ev = Event::from_json(event).unwrap();
        let e = &p.escalations[0];
        let scope = Scope {
            escalation: Some((&e.name, &e.reason)),
        };
        render(&p.templates[0].parts, &ev, scope)
    }

    /// Placeholders repeat the event and `join` repeats its separator:
    /// both stop at the cap instead of building the whole text.
    #[test]
    fn a_render_is_capped() {
        let summary = "é".repeat(300_000);
        let big = format!(
            r#"{{"id":"e","kind":"agent_turn","at":"2026-11-11T10:00:00Z","turn":{{"intent":"refund","summary":"{summary}","attempts":{}}}}}"#,
            serde_json::to_string(&vec![""; 100_000]).unwrap()
        );
        let many = "{{ turn.summary }}".repeat(1_000);
        let out = render_template(&many, &big);
        assert_eq!(out.len(), MAX_RENDER - MAX_RENDER % 2 - 1, "{}", out.len());
        assert!(out.ends_with("é…"));
        let sep = "x".repeat(10_000);
        let out = render_template(
            &format!("{{{{ turn.attempts | join(\"{sep}\") | upper }}}}"),
            &big,
        );
        assert!(
            out.len() <= MAX_RENDER && out.ends_with("X…"),
            "{}",
            out.len()
        );
        // Under the cap nothing changes.
        assert_eq!(render_template("[{{ turn.intent }}]", &big), "[refund]");
    }

    #[test]
    fn money_formatting() {
        assert_eq!(format_money(2_000_000, "USD"), "200.00 USD");
        assert_eq!(format_money(12_345_678_900, "JPY"), "1,234,567.89 JPY");
        assert_eq!(format_money(-5_000, "EUR"), "-0.50 EUR");
        assert_eq!(format_money(0, "USD"), "0.00 USD");
    }
}
