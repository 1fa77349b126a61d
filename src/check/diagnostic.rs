//! What the front end reports: a syntax error or a checker error or lint,
//! in the file its location names. Rendering it is `crate::diagnostics`'s.

use super::CheckError;
use crate::syntax::{FileId, SyntaxError};
use miette::{LabeledSpan, Severity};

/// A problem in one file, from any layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: FileId,
    pub kind: DiagKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DiagKind {
    Syntax(SyntaxError),
    Check(CheckError),
}

impl Diagnostic {
    /// A syntax error, in the file its location names.
    pub fn syntax(e: SyntaxError) -> Self {
        Diagnostic {
            file: e.span.file,
            kind: DiagKind::Syntax(e),
        }
    }

    /// A checker error or lint, in the file its location names.
    pub fn check(e: CheckError) -> Self {
        Diagnostic {
            file: e.span.file,
            kind: DiagKind::Check(e),
        }
    }

    /// The error itself, as miette reads it: `crate::diagnostics` renders
    /// through this.
    pub(crate) fn inner(&self) -> &(dyn miette::Diagnostic + Send + Sync + 'static) {
        match &self.kind {
            DiagKind::Syntax(e) => e,
            DiagKind::Check(e) => e,
        }
    }

    pub fn severity(&self) -> Severity {
        self.inner().severity().unwrap_or(Severity::Error)
    }

    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }

    pub fn code(&self) -> String {
        self.inner()
            .code()
            .map(|c| c.to_string())
            .unwrap_or_default()
    }

    pub fn message(&self) -> String {
        self.inner().to_string()
    }

    pub fn help(&self) -> Option<String> {
        self.inner().help().map(|h| h.to_string())
    }

    /// Labels in source order of declaration; the first is the primary one.
    pub fn labels(&self) -> Vec<LabeledSpan> {
        self.inner()
            .labels()
            .map(|l| l.collect())
            .unwrap_or_default()
    }

    /// Byte offset of the primary label, for sorting.
    pub fn offset(&self) -> usize {
        self.labels().first().map(|l| l.offset()).unwrap_or(0)
    }
}
