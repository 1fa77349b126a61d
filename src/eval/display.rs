//! How a value reads in text: a hand-off comment, a Zendesk text field, a
//! test's diff. One place, so a value written to a ticket and the same
//! value shown by `l3map test` cannot read differently.

use crate::ir::Value;

/// The longest comment a template renders, in bytes, the closing `…`
/// included: far beyond any hand-off a person reads, small enough that no
/// template and event can make one turn hold much memory. A joined list
/// stops growing here too.
pub const MAX_RENDER: usize = 64 * 1024;

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

/// `items` joined by `sep`, stopping once past [`MAX_RENDER`]: the render
/// cuts there anyway, and a long separator times a long list must not be
/// built first.
pub fn join_capped(items: &[Value], sep: &str) -> String {
    let mut s = String::new();
    for (i, item) in items.iter().enumerate() {
        if s.len() > MAX_RENDER {
            break;
        }
        if i > 0 {
            s.push_str(sep);
        }
        s.push_str(&display(item));
    }
    s
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
        Value::List(items) => join_capped(items, ", "),
    }
}
