//! An error is a kind plus a location (Cedar's `parser/err.rs` shape): the
//! kind says what went wrong, in words and with its code and help; the
//! location says where, once, beside it. Finding a diagnostic's file is
//! one field read, not a match over every kind.

use super::span::Span;
use miette::{Diagnostic, LabeledSpan, Severity};
use std::fmt;

/// What the underline at an error's location says. Each kind words it; the
/// labels of other places the kind points at (`first declared here`) stay
/// on the kind's own span fields.
pub trait PrimaryLabel {
    fn primary_label(&self) -> String;
}

/// An error of kind `K` at `span`. Its miette [`Diagnostic`] is the kind's,
/// with the location's label drawn first: the first label is the primary
/// one (`Diagnostic::labels` in `crate::diagnostics`).
#[derive(Debug, Clone, PartialEq)]
pub struct Located<K> {
    pub kind: K,
    pub span: Span,
}

impl<K> Located<K> {
    pub fn new(kind: K, span: Span) -> Self {
        Located { kind, span }
    }

    /// Where the error is.
    pub fn span(&self) -> Span {
        self.span
    }
}

impl<K: fmt::Display> fmt::Display for Located<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl<K: std::error::Error> std::error::Error for Located<K> {}

impl<K: Diagnostic + PrimaryLabel> Diagnostic for Located<K> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.kind.code()
    }

    fn severity(&self) -> Option<Severity> {
        self.kind.severity()
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.kind.help()
    }

    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.kind.url()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary = LabeledSpan::new_with_span(Some(self.kind.primary_label()), self.span);
        let others = self.kind.labels().into_iter().flatten();
        Some(Box::new(std::iter::once(primary).chain(others)))
    }
}
