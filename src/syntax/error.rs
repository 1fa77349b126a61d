//! Errors of the syntax layer.

use super::located::{Located, PrimaryLabel};
use super::span::Span;
use miette::Diagnostic;
use thiserror::Error;

/// Everything that can go wrong turning text into a syntax tree; where it
/// went wrong is beside it, in [`SyntaxError`].
#[derive(Debug, Clone, Error, Diagnostic, PartialEq)]
pub enum SyntaxErrorKind {
    /// Returned when the text does not match the grammar.
    #[error("unexpected {found}; expected {expected}")]
    #[diagnostic(code(l3map::syntax))]
    Unexpected {
        found: String,
        expected: String,
        #[label("this block starts here")]
        block: Option<Span>,
        #[help]
        help: Option<String>,
    },
    /// Returned when a block's `}` is missing: the parse ran on into the
    /// next block.
    #[error("`{head} {{` is never closed")]
    #[diagnostic(code(l3map::syntax::unclosed), help("{help}"))]
    Unclosed {
        head: String,
        help: String,
        #[label("the next block starts here")]
        next: Span,
    },
    /// Returned when a field is named as another place names it: by its
    /// Zendesk id (`24100001`, `#24100001`) where its alias belongs, or as a
    /// condition reads it (`ticket.device_class`) where it is named alone
    /// (`set`, `expect field`, `map`). The checker, which knows the declared
    /// fields, fills in `help` with the alias to write.
    #[error("{message}")]
    #[diagnostic(code(l3map::syntax::field_ref), help("{help}"))]
    FieldRef {
        message: String,
        help: String,
        label: String,
        /// The id written, when it is one.
        id: Option<u64>,
        /// The alias written after `ticket.`, when it is that.
        alias: Option<String>,
        /// The connection named before the field (`set desk ...`), if any.
        conn: Option<String>,
    },
    /// Returned when a string contains an escape l3map does not know.
    #[error("unknown escape `{escape}` in a string")]
    #[diagnostic(
        code(l3map::syntax::escape),
        help("known escapes are \\\" \\\\ \\n \\t \\r and \\u{{XXXX}}; write \"\"\"...\"\"\" for text taken literally")
    )]
    BadEscape { escape: String },
    /// Returned when a number does not fit (ids, amounts, rates).
    #[error("number `{text}` is out of range")]
    #[diagnostic(code(l3map::syntax::number), help("{help}"))]
    BadNumber { text: String, help: String },
    /// Returned when something is named with a keyword.
    #[error("`{name}` is a reserved word and cannot name a {what}")]
    #[diagnostic(
        code(l3map::syntax::reserved),
        help("choose another name, e.g. `{name}_{what}`")
    )]
    Reserved { name: String, what: &'static str },
    /// Returned when brackets or `not`s nest deeper than anyone writes by hand.
    #[error("nesting deeper than {limit} levels")]
    #[diagnostic(
        code(l3map::syntax::too_deep),
        help(
            "split the condition up; l3map refuses deeper nesting to keep checking fast and safe"
        )
    )]
    TooDeep { limit: usize },
    /// Returned when comparisons are chained (`a < b < c`).
    #[error("comparisons cannot be chained")]
    #[diagnostic(
        code(l3map::syntax::chained_comparison),
        help("compare twice and join with `and`, e.g. `a < b and b < c`")
    )]
    ChainedComparison { op: &'static str },
    /// Returned when a `{{ ... }}` interpolation in a template is malformed.
    #[error("malformed template interpolation; expected {expected}")]
    #[diagnostic(
        code(l3map::syntax::template),
        help("interpolations look like {{{{ turn.summary }}}} or {{{{ turn.attempts | join(\", \") }}}}")
    )]
    BadTemplate { expected: String },
}

/// A syntax error: its kind at its place.
pub type SyntaxError = Located<SyntaxErrorKind>;

impl SyntaxErrorKind {
    /// This error at `span`.
    pub fn at(self, span: Span) -> SyntaxError {
        Located::new(self, span)
    }
}

impl PrimaryLabel for SyntaxErrorKind {
    fn primary_label(&self) -> String {
        use SyntaxErrorKind::*;
        match self {
            Unexpected { found, .. } => format!("{found} here"),
            Unclosed { .. } => "this block is never closed".into(),
            FieldRef { label, .. } => label.to_string(),
            BadEscape { .. } => "not an escape".into(),
            BadNumber { .. } => "out of range".into(),
            Reserved { .. } => "reserved word".into(),
            TooDeep { .. } => "too deep".into(),
            ChainedComparison { op, .. } => format!("second `{op}`"),
            BadTemplate { .. } => "here".into(),
        }
    }
}
