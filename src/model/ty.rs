//! The value types a declaration, a field or an expression has, as the
//! checker reasons about them (the IR's [`crate::ir::Type`] is what lowering
//! makes of them).

use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    Str,
    Num,
    Bool,
    Date,
    Money(Option<String>),
    Enum(Arc<[String]>),
    /// A status of the table of this connection (if known).
    Status(Option<String>),
    List(Box<Ty>),
    Any,
    Null,
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Str => write!(f, "text"),
            Ty::Num => write!(f, "a number"),
            Ty::Bool => write!(f, "true/false"),
            Ty::Date => write!(f, "a date"),
            Ty::Money(Some(c)) => write!(f, "money in {c}"),
            Ty::Money(None) => write!(f, "money"),
            Ty::Enum(v) => {
                let shown: Vec<_> = v.iter().take(6).map(|s| s.as_str()).collect();
                write!(f, "one of {}", shown.join(", "))?;
                if v.len() > 6 {
                    write!(f, ", ...")?;
                }
                Ok(())
            }
            Ty::Status(Some(c)) => write!(f, "a status of `{c}`"),
            Ty::Status(None) => write!(f, "a status"),
            Ty::List(t) => write!(f, "a list of {t}"),
            Ty::Any => write!(f, "any value"),
            Ty::Null => write!(f, "none"),
        }
    }
}

impl Ty {
    /// Whether `<`, `>`, ... compare values of this type.
    pub fn ordered(&self) -> bool {
        matches!(self, Ty::Num | Ty::Money(_) | Ty::Date | Ty::Any)
    }

    /// Whether values of `self` can be compared with / stored as `other`.
    pub fn compatible(&self, other: &Ty) -> bool {
        use Ty::*;
        match (self, other) {
            (Any, _) | (_, Any) | (Null, _) | (_, Null) => true,
            (Money(Some(a)), Money(Some(b))) => a == b,
            (Money(_), Money(_)) => true,
            (Enum(_), Enum(_)) | (Enum(_), Str) | (Str, Enum(_)) => true,
            (Status(a), Status(b)) => a.is_none() || b.is_none() || a == b,
            (Status(_), Str) | (Str, Status(_)) => true,
            (List(a), List(b)) => a.compatible(b),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl Ty {
    /// A literal of this type, for "write it like this" hints.
    pub fn example(&self) -> Option<String> {
        Some(match self {
            Ty::Str => "\"some text\"".into(),
            Ty::Num => "42".into(),
            Ty::Bool => "true".into(),
            Ty::Date => "\"2025-01-31\"".into(),
            Ty::Money(c) => format!("50000 {}", c.as_deref().unwrap_or("USD")),
            Ty::Enum(v) => v.first()?.clone(),
            Ty::List(t) => format!("[{}]", t.example()?),
            _ => return None,
        })
    }
}

/// Whether text is a date as the language writes one: `YYYY-MM-DD`.
pub fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        // A day the calendar has: Zendesk refuses 2027-02-30.
        && s.parse::<jiff::civil::Date>().is_ok()
}

#[cfg(test)]
mod date_tests {
    #[test]
    fn a_date_is_a_day_the_calendar_has() {
        assert!(super::looks_like_date("2028-02-29"));
        for no in [
            "2027-02-30",
            "2027-13-45",
            "0000-00-00",
            "2027-1-1",
            "2027-01-01T00",
        ] {
            assert!(!super::looks_like_date(no), "{no}");
        }
    }
}
