//! Errors and lints of the checker. One kind per distinct problem; the
//! code (`l3map::...`) is stable and documented in docs/LANGUAGE.md.
//!
//! - `kind.rs`: the kinds, with their message, code, help and the labels of
//!   the other places they point at;
//! - `labels.rs`: what the underline at the error's own place says.

mod form;
mod kind;
mod labels;
mod link;

pub use form::FormErrorKind;
pub use kind::CheckErrorKind;
pub use link::LinkErrorKind;

use crate::syntax::{Located, Span};

/// A checker error: its kind at its place ([`Located`]).
pub type CheckError = Located<CheckErrorKind>;

impl CheckErrorKind {
    /// This error at `span`.
    pub fn at(self, span: Span) -> CheckError {
        Located::new(self, span)
    }
}
