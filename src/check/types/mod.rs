//! Value types and the event schema; `infer.rs` resolves paths and types
//! expressions against them.

mod infer;

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
    fn ordered(&self) -> bool {
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

/// A standard field of an event root.
pub struct StdField {
    pub name: &'static str,
    pub ty: fn() -> Ty,
    pub doc: &'static str,
}

fn enum_of(v: &[&str]) -> Ty {
    Ty::Enum(v.iter().map(|s| s.to_string()).collect())
}

macro_rules! fields {
    ($( $name:literal : $ty:expr , $doc:literal ;)*) => {
        &[ $( StdField { name: $name, ty: { fn t() -> Ty { $ty } t }, doc: $doc } ),* ]
    };
}

pub static TICKET: &[StdField] = fields! {
    "id": Ty::Num, "the ticket id";
    "subject": Ty::Str, "the subject line";
    "description": Ty::Str, "the first comment";
    "status": Ty::Status(None), "the current status";
    "priority": enum_of(&["low", "normal", "high", "urgent"]), "the priority";
    "type": enum_of(&["problem", "incident", "question", "task"]), "the ticket type";
    "tags": Ty::List(Box::new(Ty::Str)), "the tags";
    "group": Ty::Str, "the assigned group's name";
    "assignee": Ty::Str, "the assignee's email";
    "requester_email": Ty::Str, "the requester's email";
    "requester_name": Ty::Str, "the requester's name";
    "channel": Ty::Str, "how the ticket arrived (email, web, chat, api)";
    "created_at": Ty::Date, "when it was created";
    "updated_at": Ty::Date, "when it last changed";
};

/// Standard ticket fields a mapping may write.
pub const TICKET_WRITABLE: &[&str] = &["priority", "type", "subject", "group", "tags"];

pub static COMMENT: &[StdField] = fields! {
    "body": Ty::Str, "the comment text";
    "author": enum_of(&["end_user", "agent", "system"]), "who wrote it";
    "public": Ty::Bool, "whether the requester can see it";
};

pub static TURN: &[StdField] = fields! {
    "intent": Ty::Str, "what the customer wants, as classified by the agent";
    "summary": Ty::Str, "a plain-language summary of the conversation";
    "attempts": Ty::List(Box::new(Ty::Str)), "what the agent tried";
    "sentiment": enum_of(&["positive", "neutral", "negative", "angry"]), "the customer's sentiment";
    "refund_amount": Ty::Money(None), "the refund asked for";
    "requested_status": Ty::Status(None), "the status the agent wants to set";
    "confidence": Ty::Num, "the agent's confidence, 0 to 1";
    "language": Ty::Str, "the conversation language (BCP 47)";
    "order_id": Ty::Str, "the order the customer refers to";
    "product": Ty::Str, "the product as the customer wrote it";
};

pub static ESCALATION: &[StdField] = fields! {
    "name": Ty::Str, "the escalation's name";
    "reason": Ty::Str, "the escalation's reason";
};

pub const ROOTS: &[&str] = &["ticket", "comment", "turn", "escalation"];

/// What a path in an expression refers to, once resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Std {
        root: &'static str,
        field: String,
    },
    Custom {
        conn: String,
        alias: String,
        id: u64,
    },
    Salesforce {
        conn: String,
        path: String,
    },
}

/// Where an expression is checked: decides what `ticket` and statuses mean.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The Zendesk connection `ticket.*` and bare status names refer to.
    pub ticket_conn: Option<String>,
    /// Whether `escalation.*` exists (templates).
    pub in_template: bool,
}

pub fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}
