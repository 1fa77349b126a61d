//! Errors of the syntax layer.

use super::span::Span;
use miette::Diagnostic;
use thiserror::Error;

/// Everything that can go wrong turning text into a syntax tree.
#[derive(Debug, Clone, Error, Diagnostic, PartialEq)]
pub enum SyntaxError {
    /// Returned when the text does not match the grammar.
    #[error("unexpected {found}; expected {expected}")]
    #[diagnostic(code(l3map::syntax))]
    Unexpected {
        found: String,
        expected: String,
        #[label("{found} here")]
        span: Span,
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
        #[label("this block is never closed")]
        span: Span,
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
        #[label("{label}")]
        span: Span,
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
    BadEscape {
        escape: String,
        #[label("not an escape")]
        span: Span,
    },
    /// Returned when a number does not fit (ids, amounts, rates).
    #[error("number `{text}` is out of range")]
    #[diagnostic(code(l3map::syntax::number), help("{help}"))]
    BadNumber {
        text: String,
        help: String,
        #[label("out of range")]
        span: Span,
    },
    /// Returned when something is named with a keyword.
    #[error("`{name}` is a reserved word and cannot name a {what}")]
    #[diagnostic(
        code(l3map::syntax::reserved),
        help("choose another name, e.g. `{name}_{what}`")
    )]
    Reserved {
        name: String,
        what: &'static str,
        #[label("reserved word")]
        span: Span,
    },
    /// Returned when brackets or `not`s nest deeper than anyone writes by hand.
    #[error("nesting deeper than {limit} levels")]
    #[diagnostic(
        code(l3map::syntax::too_deep),
        help(
            "split the condition up; l3map refuses deeper nesting to keep checking fast and safe"
        )
    )]
    TooDeep {
        limit: usize,
        #[label("too deep")]
        span: Span,
    },
    /// Returned when comparisons are chained (`a < b < c`).
    #[error("comparisons cannot be chained")]
    #[diagnostic(
        code(l3map::syntax::chained_comparison),
        help("compare twice and join with `and`, e.g. `a < b and b < c`")
    )]
    ChainedComparison {
        op: &'static str,
        #[label("second `{op}`")]
        span: Span,
    },
    /// Returned when a `{{ ... }}` interpolation in a template is malformed.
    #[error("malformed template interpolation; expected {expected}")]
    #[diagnostic(
        code(l3map::syntax::template),
        help("interpolations look like {{{{ turn.summary }}}} or {{{{ turn.attempts | join(\", \") }}}}")
    )]
    BadTemplate {
        expected: String,
        #[label("here")]
        span: Span,
    },
}

impl SyntaxError {
    pub fn span(&self) -> Span {
        match self {
            SyntaxError::Unexpected { span, .. }
            | SyntaxError::Unclosed { span, .. }
            | SyntaxError::FieldRef { span, .. }
            | SyntaxError::BadEscape { span, .. }
            | SyntaxError::BadNumber { span, .. }
            | SyntaxError::BadTemplate { span, .. }
            | SyntaxError::TooDeep { span, .. }
            | SyntaxError::Reserved { span, .. }
            | SyntaxError::ChainedComparison { span, .. } => *span,
        }
    }
}
