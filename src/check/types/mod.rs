//! The types expressions are checked against; `infer.rs` resolves paths
//! and types expressions. The value types and the event schema live in
//! [`crate::model`], shared with lowering.

mod infer;

pub use crate::model::event::{
    StdField, COMMENT, ESCALATION, ROOTS, TICKET, TICKET_WRITABLE, TURN,
};
pub use crate::model::{looks_like_date, Ty};

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
